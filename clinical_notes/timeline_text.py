"""The timeline as compact prompt text: one line per item, led by the short citation key of its resource."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from clinical_notes.timeline import ClinicalTimeline, Measurement, Problem, Series

Key = Callable[[str], str]


def _day(value: str | None) -> str:
    return value[:10] if value else "date unknown"


def _value(m: Measurement, key: Key) -> str:
    shown = m.text if m.value is None else f"{m.value:g}"
    unit = f" {m.unit}" if m.unit else ""
    flag = "*" if m.abnormal else ""
    bounds = ""
    if m.low is not None or m.high is not None:
        low = "" if m.low is None else f"{m.low:g}"
        high = "" if m.high is None else f"{m.high:g}"
        bounds = f" (range {low}-{high})"
    interp = f" [{m.interpretation}]" if m.interpretation else ""
    return f"[{key(m.ref)}] {shown}{unit}{flag}{bounds}{interp} on {_day(m.date)}"


def _onset(problem: Problem) -> str:
    if len(problem.refs) > 1:
        first, last = _day(problem.first_onset), _day(problem.onset)
        return f"recorded {len(problem.refs)} times, first {first}, last {last}"
    return f"onset {_day(problem.onset)}"


def _series_line(series: Series, key: Key) -> str:
    parts = [f"- {series.name}: {_value(series.latest, key)}"]
    if series.latest_abnormal is not None:
        parts.append(f"last abnormal {_value(series.latest_abnormal, key)}")
    if series.trend:
        parts.append("before: " + ", ".join(_value(m, key) for m in series.trend))
    return "; ".join(parts)


def _quoted(text: str) -> str:
    return json.dumps(" ".join(text.split()), ensure_ascii=False)


def _section(title: str, lines: Iterable[str]) -> list[str]:
    body = list(lines)
    return [title, *body] if body else []


def render_timeline(t: ClinicalTimeline) -> str:
    """Render the timeline as the text the model reads; [keys] stand for FHIR references."""
    k = t.key
    p = t.patient
    age = f"{p.age_years} years" if p.age_years is not None else "age unknown"
    lines = [f"PATIENT [{k(p.ref)}] {p.sex or 'sex unknown'}, {age}{', deceased' if p.deceased else ''}"]
    lines += _section(
        "ALLERGIES",
        (
            f"- [{k(a.ref)}] {a.substance}"
            + (f"; criticality {a.criticality}" if a.criticality else "")
            + (f"; reactions: {', '.join(a.reactions)}" if a.reactions else "")
            + ("" if a.active else "; inactive")
            for a in t.allergies
        ),
    )
    lines += _section(
        "ACTIVE PROBLEMS", (f"- [{k(c.ref)}] {c.name}; {_onset(c)}" for c in t.problems if c.active)
    )
    lines += _section(
        "ACTIVE MEDICATIONS",
        (
            f"- [{', '.join(map(k, m.refs))}] {m.name}; since {_day(m.date)}"
            + (f"; {m.dosage}" if m.dosage else "")
            for m in t.medications
            if m.active
        ),
    )
    lines += _section("LABS (latest first; * = abnormal)", (_series_line(s, k) for s in t.labs))
    lines += _section("VITAL SIGNS", (_series_line(s, k) for s in t.vitals))
    lines += _section(
        "ENCOUNTERS",
        (
            f"- [{k(e.ref)}] {_day(e.start)}: {e.type or e.encounter_class or 'encounter'}"
            + (f"; reason: {', '.join(e.reasons)}" if e.reasons else "")
            for e in t.encounters
        ),
    )
    lines += _section(
        "PAST PROBLEMS",
        (
            f"- [{k(c.ref)}] {c.name}; {_day(c.onset)} to {_day(c.abatement)}"
            for c in t.problems
            if not c.active
        ),
    )
    lines += _section(
        "PAST MEDICATIONS",
        (
            f"- [{', '.join(map(k, m.refs))}] {m.name}; {m.status}; {_day(m.date)}"
            for m in t.medications
            if not m.active
        ),
    )
    if t.discharge is not None and t.discharge.listed:
        d = t.discharge
        lines += _section(
            f"DISCHARGE MEDICATIONS (stay [{k(d.encounter)}] {_day(d.start)} to {_day(d.end)}; admission vs "
            "discharge)",
            (
                f"- [{', '.join(k(r) for r in (m.ref, m.before_ref) if r)}] {m.change}: {m.name}"
                + (f"; now {m.dosage}" if m.dosage else "")
                + (f"; before {m.before_dosage}" if m.before_dosage else "")
                + (f"; for {m.indication}" if m.indication else "")
                for m in d.medications
            ),
        )
    lines += _section("PROCEDURES", (f"- [{k(e.ref)}] {_day(e.date)}: {e.name}" for e in t.procedures))
    lines += _section("IMMUNIZATIONS", (f"- [{k(e.ref)}] {_day(e.date)}: {e.name}" for e in t.immunizations))
    lines += _section(
        "PRIOR NOTES",
        # Free text goes in as one quoted, escaped string: data to read, not instructions to follow.
        (f"- [{k(n.ref)}] {_day(n.date)} {n.title}: {_quoted(n.text)}" for n in t.notes),
    )
    lines += _section(
        "GUIDELINE PASSAGES (the hospital's guideline library, not the patient's record: a recommendation "
        "cites the passage it follows)",
        (f"- [{k(g.ref)}] {g.title}, {g.section} ({g.version}): {_quoted(g.text)}" for g in t.guidelines),
    )
    if t.omitted:
        lines.append(
            "OMITTED FOR LENGTH: " + ", ".join(f"{name} {n}" for name, n in sorted(t.omitted.items()))
        )
    return "\n".join(lines)
