"""The facts of each note kind, composed from the timeline by code: complete, prioritized, each cited.

One statement per fact or tight group, in the order a clinician reads. Long lists keep the facts a note
must mention (active problems, active medications, allergies, abnormal results) by naming and citing the
rest in an "and N more" statement; the other lists end in a count of what the record holds beyond them.
Where the record holds nothing for a section, a statement about the record says so (which is not "no
known allergies" unless the record says exactly that).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta

from clinical_notes.draft import Section, Statement
from clinical_notes.esi import screen
from clinical_notes.kinds import NoteKind
from clinical_notes.timeline import ClinicalTimeline, Measurement, Problem, Series, when
from clinical_notes.triage import as_of

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
SEMANTIC_TAG = re.compile(
    r"\s*\((disorder|finding|situation|procedure|person|regime/therapy|morphologic abnormality|"
    r"observable entity|event|substance|organism|qualifier value|product|medicinal product)\)\s*$",
    re.IGNORECASE,
)
NO_KNOWN_ALLERGY = re.compile(r"^\s*(no known (drug )?allerg|nkda?\b)", re.IGNORECASE)
LATER_TAGS = ("(finding)", "(situation)", "(person)", "(event)", "(observable entity)")
SHOWN_UNITS = {"mm[Hg]": "mmHg", "Cel": "°C", "[degF]": "°F"}
ANNOTATION = re.compile(r"\{[^}]*\}")
SETTINGS = {
    "AMB": "outpatient",
    "EMER": "emergency",
    "IMP": "inpatient",
    "ACUTE": "inpatient",
    "NONAC": "inpatient",
    "OBSENC": "observation stay",
    "PRENC": "pre-admission",
    "SS": "short stay",
    "VR": "virtual",
    "HH": "home health",
}
BP_SYSTOLIC, BP_DIASTOLIC = "8480-6", "8462-4"


def plain(name: str) -> str:
    """A display without its SNOMED semantic tag ("Asthma (disorder)" → "Asthma")."""
    return SEMANTIC_TAG.sub("", name).strip() or name


def day(value: str | None) -> str:
    """The date part of an ISO date or date-time."""
    return value[:10] if value else "date unknown"


def unit(value: str | None) -> str:
    """A unit as a clinician reads it (mmHg, °C, none for UCUM annotations such as {score}), still one
    the verifier folds to the recorded unit."""
    if not value or ANNOTATION.fullmatch(value):
        return ""
    return SHOWN_UNITS.get(value, value)


def number(value: float) -> str:
    """A value to four significant digits (instruments report noise beyond that: 56.27173 U/L), whole
    numbers from 1,000 up, never in exponent form (13062 /uL, not 1.306e+04)."""
    if abs(value) >= 1000:
        return str(round(value))
    return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:f}".rstrip("0")


def shown(m: Measurement) -> str:
    """A measurement's value with its unit."""
    if m.value is None:
        return m.text or "no value"
    return f"{number(m.value)} {unit(m.unit)}".strip()


def _direction(m: Measurement) -> str:
    """High, low, or abnormal when the record says so without a range to tell which."""
    if m.value is not None and m.high is not None and m.value > m.high:
        return "high"
    if m.value is not None and m.low is not None and m.value < m.low:
        return "low"
    return "abnormal"


def _state(m: Measurement) -> str:
    """High or low, with the range it was judged against (numbers without a unit: the verifier reads
    a number with a unit as a claim the cited resource must hold, and a default range is in none)."""
    parts = [_direction(m)] if m.abnormal else []
    if m.low is not None or m.high is not None:
        low = "" if m.low is None else f"{m.low:g}"
        high = "" if m.high is None else f"{m.high:g}"
        bounds = f"{low} to {high}" if low and high else f">= {low}" if low else f"<= {high}"
        parts.append(("default adult range " if m.range_source == "default" else "range ") + bounds)
    return f" ({'; '.join(parts)})" if parts else ""


def record(text: str, citations: Iterable[str] = ()) -> Statement:
    """A statement composed from the record."""
    return Statement(text=text, citations=list(dict.fromkeys(citations)), author="record")


def _names(items: Sequence[tuple[str, str]]) -> Statement:
    """One statement naming and citing (name, ref) pairs."""
    return record(", ".join(name for name, _ in items), (ref for _, ref in items))


def _capped(
    statements: list[Statement], cap: int, more: Callable[[int], str], names: list[tuple[str, str]]
) -> list[Statement]:
    """The first `cap` statements, then one naming and citing the rest (never silently cut)."""
    if len(statements) <= cap:
        return statements
    rest = names[cap:]
    tail = _names(rest)
    return [*statements[:cap], record(f"{more(len(rest))}: {tail.text}.", tail.citations)]


# ------------------------------------------------------------------------------------------- problems


def _problem_text(p: Problem, now: datetime | None) -> str:
    onset = p.first_onset or p.onset
    started = when(onset)
    if started is None:
        return f"{plain(p.name)}, onset not recorded"
    recent = now is not None and now - started <= RECENT_ONSET
    return f"{plain(p.name)}, onset {day(onset)} ({'recent, under 3 months' if recent else 'long-standing'})"


def problems(t: ClinicalTimeline) -> list[Statement]:
    """Active problems, newest onset first: disorders, then findings and situations."""
    now = as_of(t)
    active = sorted((p for p in t.problems if p.active), key=lambda p: p.onset or "", reverse=True)
    if not active:
        return [record("No active problems found in the record.")]
    ordered = sorted(active, key=lambda p: p.name.lower().endswith(LATER_TAGS))
    statements = [record(_problem_text(p, now), [p.ref, p.first_ref or p.ref]) for p in ordered]
    names = [(plain(p.name), p.ref) for p in ordered]
    return _capped(statements, CAP_PROBLEMS, lambda n: f"And {n} more active problems", names)


# ---------------------------------------------------------------------------------------- medications


def medications(t: ClinicalTimeline) -> list[Statement]:
    """Active medications with dose, route and frequency as recorded, newest first."""
    active = [m for m in t.medications if m.active]
    if not active:
        return [record("No active medication records found in the record.")]
    active.sort(key=lambda m: m.date or "", reverse=True)
    statements = [
        record(f"{m.name}: {m.dosage or 'dosage not recorded'}; since {day(m.date)}", m.refs) for m in active
    ]
    names = [(m.name, m.ref) for m in active]
    return _capped(statements, CAP_MEDICATIONS, lambda n: f"And {n} more active medications", names)


def allergies(t: ClinicalTimeline) -> list[Statement]:
    """Allergies with reactions and criticality; inactive ones named together."""
    if not t.allergies:
        return [record("No allergy records found in the record.")]
    out = []
    stated = [a for a in t.allergies if NO_KNOWN_ALLERGY.match(a.substance)]
    if stated:
        # The record's own "no known allergies" entry: said as the record says it, whatever its status.
        out.append(
            record(f"The record states {plain(stated[0].substance).lower()}.", [a.ref for a in stated])
        )
    for a in (a for a in t.allergies if a.active and a not in stated):
        details = [f"reactions: {', '.join(a.reactions)}" if a.reactions else "reaction not recorded"]
        if a.criticality:
            details.append(f"criticality {a.criticality}")
        out.append(record(f"{plain(a.substance)}: {'; '.join(details)}", [a.ref]))
    inactive = [(plain(a.substance), a.ref) for a in t.allergies if not a.active and a not in stated]
    if inactive:
        group = _names(inactive)
        out.append(record(f"Inactive or resolved allergy records: {group.text}.", group.citations))
    return out


# ------------------------------------------------------------------------------------------- results


def _previous(series: Series, m: Measurement) -> Measurement | None:
    older = [x for x in series.trend if x.value is not None and x.date != m.date]
    return older[0] if older else None


def _result(series: Series) -> Statement:
    """The latest value, its range, the change from the previous value, and an older abnormal value."""
    m = series.latest
    text = f"{plain(series.name)} {shown(m)}{_state(m)} on {day(m.date)}"
    refs = [m.ref]
    previous = _previous(series, m)
    old = series.latest_abnormal
    if previous is not None and m.value is not None and previous.value is not None:
        change = m.value - previous.value
        direction = "up" if change > 0 else "down" if change < 0 else "unchanged"
        amount = f" {number(abs(change))}" if change else ""
        state = _state(previous) if old is previous else ""
        text += f", {direction}{amount} from {number(previous.value)}{state} on {day(previous.date)}"
        refs.append(previous.ref)
    if old is not None and old is not previous:
        text += f"; last abnormal {shown(old)}{_state(old)} on {day(old.date)}"
        refs.append(old.ref)
    return record(text, refs)


def _must_mention(series: Series) -> bool:
    return bool(series.latest.abnormal) or series.latest_abnormal is not None


def results(t: ClinicalTimeline, *, normal_cap: int = CAP_NORMAL) -> list[Statement]:
    """Abnormal results first (newest first), then the newest results within range; the rest counted."""
    labs = sorted(t.labs, key=lambda s: s.latest.date or "", reverse=True)
    flagged = sorted((s for s in labs if _must_mention(s)), key=lambda s: not s.latest.abnormal)
    normal = [s for s in labs if not _must_mention(s) and s.latest.value is not None]
    out = _capped(
        [_result(s) for s in flagged],
        CAP_ABNORMAL,
        lambda n: f"And {n} more results with abnormal values",
        [(plain(s.name), s.latest.ref) for s in flagged],
    )
    out += [_result(s) for s in normal[:normal_cap]]
    rest = len(labs) - len(flagged) - min(len(normal), normal_cap)
    if rest > 0:
        out.append(
            record(
                f"{rest} more results within range or without a numeric value are in the record, not listed."
            )
        )
    if not labs:
        out.append(record("No laboratory results found in the record."))
    return out


def latest_vitals(t: ClinicalTimeline) -> list[Series]:
    """The vital signs of the newest set: those taken within 24 hours of the newest one."""
    dated = [(when(s.latest.date), s) for s in t.vitals if s.latest.value is not None]
    newest = max((w for w, _ in dated if w is not None), default=None)
    if newest is None:
        return []
    return [s for w, s in dated if w is not None and newest - w <= ONE_SET]


def vitals_statement(series: list[Series]) -> Statement | None:
    """One statement for a set of vital signs, blood pressure as systolic/diastolic."""
    if not series:
        return None
    by_code = {s.code: s for s in series}
    parts, refs = [], []
    systolic, diastolic = by_code.pop(BP_SYSTOLIC, None), by_code.pop(BP_DIASTOLIC, None)
    if systolic and diastolic:
        high, low = systolic.latest, diastolic.latest
        flags = sorted({_direction(m) for m in (high, low) if m.abnormal})
        shown_flags = f" ({', '.join(flags)})" if flags else ""
        parts.append(f"blood pressure {shown(high).split()[0]}/{shown(low)}{shown_flags}")
        refs += [high.ref, low.ref]
    else:
        by_code.update({x.code: x for x in (systolic, diastolic) if x is not None and x.code})
    for one in by_code.values():
        m = one.latest
        parts.append(f"{plain(one.name)} {shown(m)}{_state(m) if m.abnormal else ''}")
        refs.append(m.ref)
    newest = max((x.latest.date or "" for x in series), default="")
    return record(f"Vital signs on {day(newest)}: {', '.join(parts)}", refs)


def _abnormal_vitals(series: list[Series]) -> list[Statement]:
    return [
        record(f"{plain(s.name)} {shown(s.latest)}{_state(s.latest)} on {day(s.latest.date)}", [s.latest.ref])
        for s in series
        if s.latest.abnormal
    ]


# ---------------------------------------------------------------------------------------------- care


def care(t: ClinicalTimeline) -> list[Statement]:
    """The latest encounters, procedures and notes; what lies beyond them counted."""
    out = []
    for e in t.encounters[:CAP_ENCOUNTERS]:
        setting = f" ({SETTINGS.get(e.kind, e.kind)})" if e.kind else ""
        reasons = f"; reason: {', '.join(plain(r) for r in e.reasons)}" if e.reasons else ""
        out.append(record(f"{day(e.start)}: {plain(e.type or 'encounter')}{setting}{reasons}", [e.ref]))
    for p in t.procedures[:CAP_PROCEDURES]:
        out.append(record(f"{day(p.date)}: {plain(p.name)}", [p.ref]))
    for n in t.notes[:CAP_NOTES]:
        out.append(record(f"{day(n.date)}: {plain(n.title)}", [n.ref]))
    counts = [
        (len(t.encounters) - CAP_ENCOUNTERS, "earlier encounters"),
        (len(t.procedures) - CAP_PROCEDURES, "earlier procedures"),
        (len(t.notes) - CAP_NOTES, "earlier notes and reports"),
        (len(t.immunizations), "immunizations"),
    ]
    listed = [f"{n} {what}" for n, what in counts if n > 0]
    if listed:
        out.append(record(f"{', '.join(listed)} are in the record, not listed."))
    if not out:
        out.append(record("No encounters or procedures found in the record."))
    return out


def presentation(t: ClinicalTimeline) -> list[Statement]:
    """The latest encounter and why it happened, as the record states it."""
    if not t.encounters:
        return [record("No encounters found in the record.")]
    e = t.encounters[0]
    reasons = f": {', '.join(plain(r) for r in e.reasons)}" if e.reasons else "; no reason recorded"
    return [record(f"Latest encounter {day(e.start)}, {plain(e.type or 'encounter')}{reasons}", [e.ref])]


def patient(t: ClinicalTimeline) -> Statement:
    """Age and sex."""
    p = t.patient
    age = f"{p.age_years}-year-old" if p.age_years is not None else "Age not recorded,"
    return record(f"{age} {p.sex or 'sex not recorded'}{', deceased' if p.deceased else ''}.", [p.ref])


def _within(m: Measurement, now: datetime | None, window: timedelta) -> bool:
    taken = when(m.date)
    return now is None or (taken is not None and now - taken <= window)


def screen_statement(t: ClinicalTimeline) -> list[Statement]:
    """Which ESI criteria the current encounter meets, citing the encounter and the findings behind them."""
    found = screen(t)
    if found.encounter is None:
        return [record("No encounter to triage found in the record.")]
    setting = SETTINGS.get(found.kind or "", found.kind or "encounter")
    refs = [found.encounter, *(ref for f in found.flags if f.severity != "info" for ref in f.citations)]
    return [
        record(f"Triage screen of the {setting} encounter on {day(found.start)}: {found.statement}", refs)
    ]


def triage_findings(t: ClinicalTimeline) -> list[Statement]:
    """The encounter's screen, then abnormal vital signs and results of the 30 days before the record's end
    (a vital sign from last year says nothing about the patient being triaged)."""
    now = as_of(t)
    vitals = [s for s in latest_vitals(t) if _within(s.latest, now, TRIAGE_WINDOW)]
    out = screen_statement(t) + _abnormal_vitals(vitals)
    recent = [s for s in t.labs if s.latest.abnormal and _within(s.latest, now, TRIAGE_WINDOW)]
    out += [_result(s) for s in sorted(recent, key=lambda s: s.latest.date or "", reverse=True)]
    if len(out) == 1:
        out.append(record("No abnormal vital signs or results from the last 30 days found in the record."))
    return out


def compose(kind: NoteKind, t: ClinicalTimeline) -> dict[str, list[Statement]]:
    """The record's statements of each section of a kind, by section title."""
    vitals = vitals_statement(latest_vitals(t))
    vitals_list = [vitals] if vitals else [record("No vital signs found in the record.")]
    builders: dict[str, Callable[[], list[Statement]]] = {
        "Active problems": lambda: problems(t),
        "Medications": lambda: medications(t),
        "Allergies": lambda: allergies(t),
        "Recent results": lambda: vitals_list + results(t),
        "Recent care": lambda: care(t),
        "Objective": lambda: vitals_list + results(t, normal_cap=0),
        "Findings": lambda: triage_findings(t),
    }
    out: dict[str, list[Statement]] = {}
    for spec in kind.sections:
        if spec.title in builders:
            out[spec.title] = builders[spec.title]()
    if kind.name in ("progress", "triage"):
        out["Summary"] = [patient(t)]
    if kind.name == "soap":
        out["Subjective"] = presentation(t)
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
