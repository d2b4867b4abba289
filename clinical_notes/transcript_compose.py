"""The SOAP note's facts from a visit transcript, composed by code, each statement cited to its turns.

Subjective: symptoms reported (with onset or duration as said), how severe the patient rates the pain
(quoted with its question), symptoms denied (by statement or by answer), those whose reading depends on
speaker tags that do not fit (stated as possible, with why, never inverted), medications taken or stopped,
allergies as said, readings the patient gives ("my a1c is six point seven"). Objective: measurements said
aloud, the clinician's examination findings and studies read out, quoted. Plan: medications the clinician
prescribes, changes or continues, as said. What reading the transcript left out (a cap, no speaker tags,
no turns) is said in the draft.
"""

from __future__ import annotations

from collections.abc import Iterable

from clinical_notes.draft import Statement
from clinical_notes.transcript import Transcript
from clinical_notes.transcript_facts import MedicationFact, SymptomFact, TranscriptFacts

MAX_TURNS_CITED = 4
MAX_DENIED_PER_STATEMENT = 6
NO_TRANSCRIPT = "No visit transcript for this encounter was found in the record."


def _said(transcript: Transcript, text: str, turns: Iterable[int]) -> Statement:
    refs = [transcript.turn_ref(n) for n in dict.fromkeys(turns)][:MAX_TURNS_CITED]
    return Statement(text=text, citations=refs, author="record")


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _merged(facts: TranscriptFacts) -> list[SymptomFact]:
    """One fact per symptom and status (and uncertainty), its turns joined; a turn that says the symptom
    both ways is not cited for either, and "pain" that names no place is left to the located pains."""
    merged: dict[tuple[str, str, str | None], SymptomFact] = {}
    for f in facts.symptoms:
        if f.name == "pain":
            continue
        said = [facts.polarity.get(n, {}).get(f.name, set()) for n in f.turns]
        turns = tuple(n for n, ways in zip(f.turns, said, strict=True) if len(ways) < 2)
        if f.uncertain is None and not any(ways == {f.status} for ways in said):
            continue  # no turn says it only this way
        f = SymptomFact(f.name, f.status, turns, f.said, f.uncertain)
        key = (f.name, f.status, f.uncertain)
        held = merged.get(key)
        if held is None:
            merged[key] = f
        else:
            turns = tuple(dict.fromkeys((*held.turns, *f.turns)))[:MAX_TURNS_CITED]
            merged[key] = SymptomFact(f.name, f.status, turns, held.said or f.said, f.uncertain)
    return list(merged.values())


def symptom_statements(transcript: Transcript, facts: TranscriptFacts) -> list[Statement]:
    """Reported symptoms one by one, denied ones grouped by the turns that deny them, uncertain ones apart."""
    merged = _merged(facts)
    out = []
    reported = [f for f in merged if f.status == "reported" and f.uncertain is None]
    denied_names = {f.name for f in merged if f.status == "denied" and f.uncertain is None}
    for f in reported:
        said = f' ("{f.said}")' if f.said else ""
        also = " (elsewhere in the visit it is denied)" if f.name in denied_names else ""
        out.append(_said(transcript, f"Reports {f.name}{said}{also}.", f.turns))
    groups: dict[tuple[int, ...], list[str]] = {}
    for f in merged:
        if f.status == "denied" and f.uncertain is None:
            groups.setdefault(f.turns, []).append(f.name)
    for turns, names in groups.items():
        for i in range(0, len(names), MAX_DENIED_PER_STATEMENT):
            out.append(
                _said(transcript, f"Denies {_listed(names[i : i + MAX_DENIED_PER_STATEMENT])}.", turns)
            )
    for f in (f for f in merged if f.uncertain is not None):
        what = "report" if f.status == "reported" else "denial"
        out.append(_said(transcript, f"Possible {what} of {f.name}, uncertain: {f.uncertain}.", f.turns))
    return out


PLANNED = ("planned", "continuing", "stopping")


def _medication(f: MedicationFact) -> str:
    parts = [f.name, *(p for p in (f.dose, f.frequency) if p)]
    said = " ".join(parts)
    if f.status == "planned":
        return f"Medication plan said in the visit: {said}."
    if f.status == "continuing":
        return f"Medication plan said in the visit: continue {said}."
    if f.status == "stopping":
        return f"Medication plan said in the visit: stop {f.name}."
    if f.status == "stopped":
        return f"Says {f.name} was stopped or is not taken."
    if f.status == "named":
        return f"Named by the clinician, not said whether taken now or planned: {said}."
    dose = "" if f.dose else " (dose not said)"
    return f"Takes {said}{dose}, as said in the visit."


FINDING_LABELS = {"finding": "Examination", "study": "Study read out"}


def transcript_statements(
    transcript: Transcript | None, facts: TranscriptFacts
) -> dict[str, list[Statement]]:
    """The transcript's statements by SOAP section title; without a transcript, Subjective says so."""
    if transcript is None:
        return {"Subjective": [Statement(text=NO_TRANSCRIPT, citations=[], author="record")]}
    subjective = [
        _said(transcript, f"Reason for the visit, as said: {r.text}", r.turns) for r in facts.reason
    ]
    subjective += symptom_statements(transcript, facts)
    subjective += [_said(transcript, f"Severity rated, as said: {f.text}", f.turns) for f in facts.severity]
    subjective += [
        _said(transcript, _medication(m), m.turns) for m in facts.medications if m.status not in PLANNED
    ]
    subjective += [_said(transcript, f'Allergies as said: "{a.text}"', a.turns) for a in facts.allergies]
    subjective += [
        _said(transcript, f'Reading the patient gave: "{r.text}"', r.turns) for r in facts.own_readings
    ]
    objective = [_said(transcript, f'Said aloud: "{m.text}"', m.turns) for m in facts.measurements]
    objective += [
        _said(transcript, f'{FINDING_LABELS[f.name]}, as the clinician said: "{f.text}"', f.turns)
        for f in facts.findings
    ]
    plan = [_said(transcript, _medication(m), m.turns) for m in facts.medications if m.status in PLANNED]
    notices = [f"The visit transcript: {problem}." for problem in transcript.problems]
    subjective += [Statement(text=text, citations=[], author="record") for text in notices]
    return {"Subjective": subjective, "Objective": objective, "Plan": plan}


def with_statements(
    composed: dict[str, list[Statement]], extra: dict[str, list[Statement]]
) -> dict[str, list[Statement]]:
    """The composed statements with more appended, section by section."""
    out = {title: list(statements) for title, statements in composed.items()}
    for title, statements in extra.items():
        out.setdefault(title, []).extend(statements)
    return out
