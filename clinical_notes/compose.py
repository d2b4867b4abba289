"""The facts of each note kind, composed from the timeline by code: complete, prioritized, each cited.

One statement per fact or tight group, in the order a clinician reads. Long lists keep the facts a note
must mention (active problems, active medications, allergies, abnormal results) by naming and citing the
rest in an "and N more" statement; the other lists end in a count of what the record holds beyond them.
Where the record holds nothing for a section, a statement about the record says so (which is not "no
known allergies" unless the record says exactly that). The connecting words, dates and decimals are the
draft language's (clinical_notes.record_phrases); the record's own words stay as recorded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from clinical_notes.discharge import compose_discharge
from clinical_notes.draft import Section, Statement
from clinical_notes.guidelines import gap_statements
from clinical_notes.kinds import NoteKind
from clinical_notes.language import ENGLISH, Wording
from clinical_notes.screen import SCALES, screen, statement
from clinical_notes.statements import day, plain, record
from clinical_notes.timeline import ClinicalTimeline, Measurement, Problem, Series, when
from clinical_notes.triage import as_of
from clinical_notes.triage_context import ScaleName

RECENT_ONSET = timedelta(days=90)
ONE_SET = timedelta(hours=24)
TRIAGE_WINDOW = timedelta(days=30)
CAP_PROBLEMS = 15
CAP_MEDICATIONS = 15
CAP_ABNORMAL = 25
CAP_NORMAL = 6
CAP_ENCOUNTERS = 5
CAP_PROCEDURES = 5
CAP_NOTES = 2
NO_KNOWN_ALLERGY = re.compile(r"^\s*(no known (drug )?allerg|nkda?\b)", re.IGNORECASE)
LATER_TAGS = ("(finding)", "(situation)", "(person)", "(event)", "(observable entity)")
SHOWN_UNITS = {"mm[Hg]": "mmHg", "Cel": "°C", "[degF]": "°F"}
ANNOTATION = re.compile(r"\{[^}]*\}")
BP_SYSTOLIC, BP_DIASTOLIC = "8480-6", "8462-4"


def unit(value: str | None) -> str:
    """A unit as a clinician reads it (mmHg, °C, none for UCUM annotations such as {score}), still one
    the verifier folds to the recorded unit."""
    if not value or ANNOTATION.fullmatch(value):
        return ""
    return SHOWN_UNITS.get(value, value)


def number(value: float, words: Wording = ENGLISH) -> str:
    """A value to four significant digits (instruments report noise beyond that: 56.27173 U/L), whole
    numbers from 1,000 up, never in exponent form (13062 /uL, not 1.306e+04); a decimal comma in French."""
    if abs(value) >= 1000:
        return str(round(value))
    return words.decimal(f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:f}".rstrip("0"))


def shown(m: Measurement, words: Wording = ENGLISH) -> str:
    """A measurement's value with its unit."""
    if m.value is None:
        return m.text or words.phrases.no_value
    return f"{number(m.value, words)} {unit(m.unit)}".strip()


def _direction(m: Measurement, words: Wording) -> str:
    """High, low, or abnormal when the record says so without a range to tell which."""
    if m.value is not None and m.high is not None and m.value > m.high:
        return words.phrases.directions["high"]
    if m.value is not None and m.low is not None and m.value < m.low:
        return words.phrases.directions["low"]
    return words.phrases.directions["abnormal"]


def _state(m: Measurement, words: Wording) -> str:
    """High or low, with the range it was judged against (numbers without a unit: the verifier reads
    a number with a unit as a claim the cited resource must hold, and a default range is in none)."""
    said = words.phrases
    parts = [_direction(m, words)] if m.abnormal else []
    if m.low is not None or m.high is not None:
        low = "" if m.low is None else words.decimal(f"{m.low:g}")
        high = "" if m.high is None else words.decimal(f"{m.high:g}")
        bounds = (
            said.between.format(low=low, high=high) if low and high else f">= {low}" if low else f"<= {high}"
        )
        parts.append(
            (said.default_range if m.range_source == "default" else said.range).format(bounds=bounds)
        )
    return f" ({said.detail.join(parts)})" if parts else ""


def _names(items: Sequence[tuple[str, str]]) -> Statement:
    """One statement naming and citing (name, ref) pairs."""
    return record(", ".join(name for name, _ in items), (ref for _, ref in items))


def _capped(
    statements: list[Statement], cap: int, more: str, names: list[tuple[str, str]], words: Wording
) -> list[Statement]:
    """The first `cap` statements, then one naming and citing the rest (never silently cut); `more` is
    the template of its opening words ("And {n} more active problems")."""
    if len(statements) <= cap:
        return statements
    rest = names[cap:]
    tail = _names(rest)
    opening = more.format(n=len(rest))
    return [*statements[:cap], record(f"{opening}{words.phrases.separator}{tail.text}.", tail.citations)]


# ------------------------------------------------------------------------------------------- problems


def _problem_text(p: Problem, now: datetime | None, words: Wording) -> str:
    said = words.phrases
    onset = p.first_onset or p.onset
    started = when(onset)
    if started is None:
        return said.onset_unknown.format(name=plain(p.name))
    recent = now is not None and now - started <= RECENT_ONSET
    age = said.recent if recent else said.long_standing
    return said.onset.format(name=plain(p.name), day=day(onset, words), age=age)


def problems(t: ClinicalTimeline, words: Wording = ENGLISH) -> list[Statement]:
    """Active problems, newest onset first: disorders, then findings and situations."""
    now = as_of(t)
    active = sorted((p for p in t.problems if p.active), key=lambda p: p.onset or "", reverse=True)
    if not active:
        return [record(words.phrases.no_problems)]
    ordered = sorted(active, key=lambda p: p.name.lower().endswith(LATER_TAGS))
    statements = [record(_problem_text(p, now, words), [p.ref, p.first_ref or p.ref]) for p in ordered]
    names = [(plain(p.name), p.ref) for p in ordered]
    return _capped(statements, CAP_PROBLEMS, words.phrases.more_problems, names, words)


# ---------------------------------------------------------------------------------------- medications


def medications(t: ClinicalTimeline, words: Wording = ENGLISH) -> list[Statement]:
    """Active medications with dose, route and frequency as recorded, newest first."""
    said = words.phrases
    active = [m for m in t.medications if m.active]
    if not active:
        return [record(said.no_medications)]
    active.sort(key=lambda m: m.date or "", reverse=True)
    statements = [
        record(
            said.medication.format(
                name=m.name, dosage=m.dosage or said.dosage_unknown, day=day(m.date, words)
            ),
            m.refs,
        )
        for m in active
    ]
    names = [(m.name, m.ref) for m in active]
    return _capped(statements, CAP_MEDICATIONS, said.more_medications, names, words)


def allergies(t: ClinicalTimeline, words: Wording = ENGLISH) -> list[Statement]:
    """Allergies with reactions and criticality; inactive ones named together."""
    said = words.phrases
    if not t.allergies:
        return [record(said.no_allergies)]
    out = []
    stated = [a for a in t.allergies if NO_KNOWN_ALLERGY.match(a.substance)]
    if stated:
        # The record's own "no known allergies" entry: said as the record says it, whatever its status.
        what = plain(stated[0].substance).lower()
        out.append(record(said.record_states.format(what=what), [a.ref for a in stated]))
    for a in (a for a in t.allergies if a.active and a not in stated):
        reactions = said.reactions.format(reactions=", ".join(a.reactions))
        details = [reactions if a.reactions else said.reaction_unknown]
        if a.criticality:
            details.append(said.criticality.format(criticality=a.criticality))
        out.append(
            record(said.allergy.format(name=plain(a.substance), details=said.detail.join(details)), [a.ref])
        )
    inactive = [(plain(a.substance), a.ref) for a in t.allergies if not a.active and a not in stated]
    if inactive:
        group = _names(inactive)
        out.append(record(said.inactive_allergies.format(names=group.text), group.citations))
    return out


# ------------------------------------------------------------------------------------------- results


def _previous(series: Series, m: Measurement) -> Measurement | None:
    older = [x for x in series.trend if x.value is not None and x.date != m.date]
    return older[0] if older else None


def _result(series: Series, words: Wording) -> Statement:
    """The latest value, its range, the change from the previous value, and an older abnormal value."""
    said = words.phrases
    m = series.latest
    value = f"{shown(m, words)}{_state(m, words)}"
    text = said.result.format(name=plain(series.name), value=value, day=day(m.date, words))
    refs = [m.ref]
    previous = _previous(series, m)
    old = series.latest_abnormal
    if previous is not None and m.value is not None and previous.value is not None:
        change = m.value - previous.value
        direction = "up" if change > 0 else "down" if change < 0 else "unchanged"
        moved = said.changes[direction].format(amount=number(abs(change), words))
        before = number(previous.value, words) + (_state(previous, words) if old is previous else "")
        text += said.change.format(change=moved, value=before, day=day(previous.date, words))
        refs.append(previous.ref)
    if old is not None and old is not previous:
        text += said.last_abnormal.format(
            value=f"{shown(old, words)}{_state(old, words)}", day=day(old.date, words)
        )
        refs.append(old.ref)
    return record(text, refs)


def _must_mention(series: Series) -> bool:
    return bool(series.latest.abnormal) or series.latest_abnormal is not None


def results(
    t: ClinicalTimeline, *, normal_cap: int = CAP_NORMAL, words: Wording = ENGLISH
) -> list[Statement]:
    """Abnormal results first (newest first), then the newest results within range; the rest counted."""
    said = words.phrases
    labs = sorted(t.labs, key=lambda s: s.latest.date or "", reverse=True)
    flagged = sorted((s for s in labs if _must_mention(s)), key=lambda s: not s.latest.abnormal)
    normal = [s for s in labs if not _must_mention(s) and s.latest.value is not None]
    out = _capped(
        [_result(s, words) for s in flagged],
        CAP_ABNORMAL,
        said.more_abnormal,
        [(plain(s.name), s.latest.ref) for s in flagged],
        words,
    )
    out += [_result(s, words) for s in normal[:normal_cap]]
    rest = len(labs) - len(flagged) - min(len(normal), normal_cap)
    if rest > 0:
        out.append(record(said.rest_of_results.format(n=rest)))
    if not labs:
        out.append(record(said.no_results))
    return out


def latest_vitals(t: ClinicalTimeline) -> list[Series]:
    """The vital signs of the newest set: those taken within 24 hours of the newest one."""
    dated = [(when(s.latest.date), s) for s in t.vitals if s.latest.value is not None]
    newest = max((w for w, _ in dated if w is not None), default=None)
    if newest is None:
        return []
    return [s for w, s in dated if w is not None and newest - w <= ONE_SET]


def vitals_statement(series: list[Series], words: Wording = ENGLISH) -> Statement | None:
    """One statement for a set of vital signs, blood pressure as systolic/diastolic."""
    if not series:
        return None
    by_code = {s.code: s for s in series}
    parts, refs = [], []
    systolic, diastolic = by_code.pop(BP_SYSTOLIC, None), by_code.pop(BP_DIASTOLIC, None)
    if systolic and diastolic:
        high, low = systolic.latest, diastolic.latest
        flags = sorted({_direction(m, words) for m in (high, low) if m.abnormal})
        shown_flags = f" ({', '.join(flags)})" if flags else ""
        value = f"{shown(high, words).split()[0]}/{shown(low, words)}{shown_flags}"
        parts.append(words.phrases.blood_pressure.format(value=value))
        refs += [high.ref, low.ref]
    else:
        by_code.update({x.code: x for x in (systolic, diastolic) if x is not None and x.code})
    for one in by_code.values():
        m = one.latest
        parts.append(f"{plain(one.name)} {shown(m, words)}{_state(m, words) if m.abnormal else ''}")
        refs.append(m.ref)
    newest = max((x.latest.date or "" for x in series), default="")
    return record(words.phrases.vital_signs.format(day=day(newest, words), parts=", ".join(parts)), refs)


def _abnormal_vitals(series: list[Series], words: Wording) -> list[Statement]:
    out = []
    for s in series:
        if s.latest.abnormal:
            value = f"{shown(s.latest, words)}{_state(s.latest, words)}"
            text = words.phrases.result.format(name=plain(s.name), value=value, day=day(s.latest.date, words))
            out.append(record(text, [s.latest.ref]))
    return out


# ---------------------------------------------------------------------------------------------- care


def care(t: ClinicalTimeline, words: Wording = ENGLISH) -> list[Statement]:
    """The latest encounters, procedures and notes; what lies beyond them counted."""
    said = words.phrases
    out = []
    for e in t.encounters[:CAP_ENCOUNTERS]:
        setting = f" ({said.settings.get(e.encounter_class, e.encounter_class)})" if e.encounter_class else ""
        reasons = said.reason.format(reasons=", ".join(plain(r) for r in e.reasons)) if e.reasons else ""
        text = f"{day(e.start, words)}{said.separator}{plain(e.type or said.encounter)}{setting}{reasons}"
        out.append(record(text, [e.ref]))
    for p in t.procedures[:CAP_PROCEDURES]:
        out.append(record(f"{day(p.date, words)}{said.separator}{plain(p.name)}", [p.ref]))
    for n in t.notes[:CAP_NOTES]:
        out.append(record(f"{day(n.date, words)}{said.separator}{plain(n.title)}", [n.ref]))
    counts = [
        (len(t.encounters) - CAP_ENCOUNTERS, "encounters"),
        (len(t.procedures) - CAP_PROCEDURES, "procedures"),
        (len(t.notes) - CAP_NOTES, "notes"),
        (len(t.immunizations), "immunizations"),
    ]
    listed = [f"{n} {said.earlier[what]}" for n, what in counts if n > 0]
    if listed:
        out.append(record(said.not_listed.format(counts=", ".join(listed))))
    if not out:
        out.append(record(said.no_care))
    return out


def presentation(t: ClinicalTimeline, words: Wording = ENGLISH) -> list[Statement]:
    """The latest encounter and why it happened, as the record states it."""
    said = words.phrases
    if not t.encounters:
        return [record(said.no_encounters)]
    e = t.encounters[0]
    reasons = (
        said.latest_reasons.format(reasons=", ".join(plain(r) for r in e.reasons))
        if e.reasons
        else said.no_reason
    )
    text = said.latest_encounter.format(
        day=day(e.start, words), type=plain(e.type or said.encounter), reasons=reasons
    )
    return [record(text, [e.ref])]


def patient(t: ClinicalTimeline, words: Wording = ENGLISH) -> Statement:
    """Age and sex."""
    said = words.phrases
    p = t.patient
    age = said.age.format(n=p.age_years) if p.age_years is not None else said.no_age
    sex = said.sexes.get(p.sex, p.sex) if p.sex else said.no_sex
    return record(
        said.patient.format(age=age, sex=sex, deceased=said.deceased if p.deceased else ""), [p.ref]
    )


def _within(m: Measurement, now: datetime | None, window: timedelta) -> bool:
    taken = when(m.date)
    return now is None or (taken is not None and now - taken <= window)


def screen_statement(
    t: ClinicalTimeline, words: Wording = ENGLISH, scale: ScaleName = "esi"
) -> list[Statement]:
    """Which criteria of the hospital's triage scale the current encounter meets, citing the encounter and
    the findings behind them."""
    said = words.phrases
    found = screen(t, scale=scale)
    if found.encounter is None:
        return [record(said.no_triage_encounter)]
    setting = said.settings.get(found.encounter_class or "", found.encounter_class or said.encounter)
    text, refs = statement(found.flags, SCALES[scale], said)
    text = said.screen.format(setting=setting, day=day(found.start, words), statement=text)
    return [record(text, [found.encounter, *refs])]


def triage_findings(
    t: ClinicalTimeline, words: Wording = ENGLISH, scale: ScaleName = "esi"
) -> list[Statement]:
    """The encounter's screen, then abnormal vital signs and results of the 30 days before the record's end
    (a vital sign from last year says nothing about the patient being triaged)."""
    now = as_of(t)
    vitals = [s for s in latest_vitals(t) if _within(s.latest, now, TRIAGE_WINDOW)]
    out = screen_statement(t, words, scale) + _abnormal_vitals(vitals, words)
    recent = [s for s in t.labs if s.latest.abnormal and _within(s.latest, now, TRIAGE_WINDOW)]
    out += [_result(s, words) for s in sorted(recent, key=lambda s: s.latest.date or "", reverse=True)]
    if len(out) == 1:
        out.append(record(words.phrases.no_recent_findings))
    return out


def compose(
    kind: NoteKind, t: ClinicalTimeline, words: Wording = ENGLISH, scale: ScaleName = "esi"
) -> dict[str, list[Statement]]:
    """The record's statements of each section of a kind, by section title, in the draft's language (the
    triage screen in the hospital's scale)."""
    if kind.for_patient:
        return compose_discharge(t, words)
    vitals = vitals_statement(latest_vitals(t), words)
    vitals_list = [vitals] if vitals else [record(words.phrases.no_vitals)]
    builders: dict[str, Callable[[], list[Statement]]] = {
        "Active problems": lambda: problems(t, words),
        "Medications": lambda: medications(t, words),
        "Allergies": lambda: allergies(t, words),
        "Recent results": lambda: vitals_list + results(t, words=words),
        "Recent care": lambda: care(t, words),
        "Objective": lambda: vitals_list + results(t, normal_cap=0, words=words),
        "Findings": lambda: triage_findings(t, words, scale),
    }
    out: dict[str, list[Statement]] = {}
    for spec in kind.sections:
        if spec.title in builders:
            out[spec.title] = builders[spec.title]()
    if t.guidelines_checked:
        for title in ("Plan considerations", "Plan"):
            if title in kind.titles():
                out[title] = gap_statements(t, words)
    if kind.name in ("progress", "triage"):
        out["Summary"] = [patient(t, words)]
    if kind.name == "soap":
        out["Subjective"] = presentation(t, words)
    return out


def sections(
    kind: NoteKind, composed: dict[str, list[Statement]], model: dict[str, list[Statement]]
) -> list[Section]:
    """The kind's sections in order: the record's statements first, then the model's."""
    out = []
    for spec in kind.sections:
        statements = composed.get(spec.title, []) + model.get(spec.title, [])
        if statements:
            out.append(Section(title=spec.title, statements=statements))
    return out
