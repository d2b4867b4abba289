"""Words that judge a value, checked against how the record judges it, in every kind.

"Normal", "within the normal range", "raised", "low", "critical", "improved", "worsening", "stable",
"resolved": each must agree with the cited measurement's interpretation or reference range (the same state
the composed statements show: clinical_notes.compose) and, for a trend, with the previous value of its
series. The state is the record's: HL7 v3 ObservationInterpretation codes (H, HH, L, LL, A, AA, N) where the
result carries one, else its reference range, else the adult default range (clinical_notes.reference_ranges);
critical is HH, LL or AA. A trend word moves a value toward or away from the range; "stable" says the value
stayed where it was: it fails when the value crossed into or out of the range (a change within the range is
not judged without a reference change value for the analyte, which the record does not carry). A claim on
a value the record does not judge (no range, no interpretation) is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from clinical_notes.concepts import mentions
from clinical_notes.evidence import Evidence, Judgement, State, Trend, quantities_in
from clinical_notes.timeline import ClinicalTimeline, Measurement, Series, series_measurements

CRITICAL_CODES = frozenset({"HH", "LL", "AA", "HU", "LU"})
CLAUSE = re.compile(r"[;.]\s+|\s+(?:while|whereas|but)\s+")
PART = re.compile(r",\s*")
NOT_BEFORE = r"(?<!not )(?<!non-)(?<!non )"
# "High" and "low" that name a test or a regimen, not a judgement ("Low Density Lipoprotein", "low-dose").
NAMING = r"(?![- ](density|sensitivity|dose|fat|salt|sodium|molecular|risk|flow|grade)\b)"
CLAIMS: dict[str, re.Pattern[str]] = {
    "abnormal": re.compile(
        r"\b(abnormal|out of range|(outside|beyond) (the )?(normal|reference) range)\b", re.IGNORECASE
    ),
    "normal": re.compile(
        NOT_BEFORE + r"\b(normal|within (the )?(normal|reference) (range|limits)|in range|unremarkable)\b",
        re.IGNORECASE,
    ),
    "high": re.compile(
        NOT_BEFORE + r"\b(high|raised|elevated|above (the )?(normal |reference )?range)\b" + NAMING,
        re.IGNORECASE,
    ),
    "low": re.compile(
        NOT_BEFORE + r"\b(low|below (the )?(normal |reference )?range)\b" + NAMING, re.IGNORECASE
    ),
    "critical": re.compile(NOT_BEFORE + r"\bcritical(ly)?\b", re.IGNORECASE),
    "improved": re.compile(r"\b(improved|improving|improvement)\b", re.IGNORECASE),
    "worsening": re.compile(r"\b(worse|worsening|worsened|deteriorat\w*)\b", re.IGNORECASE),
    "stable": re.compile(r"\b(stable|unchanged|no change|steady)\b", re.IGNORECASE),
    "resolved": re.compile(r"\b(resolved|normali[sz]ed)\b", re.IGNORECASE),
}


def state_of(m: Measurement) -> State | None:
    """The record's state of a measurement: normal, high, low, abnormal, or None when it does not say."""
    if m.abnormal is None:
        return None
    if not m.abnormal:
        return "normal"
    code = (m.interpretation or "").upper()
    if code[:1] in ("H", "L"):
        return "high" if code.startswith("H") else "low"
    if m.value is not None and m.high is not None and m.value > m.high:
        return "high"
    if m.value is not None and m.low is not None and m.value < m.low:
        return "low"
    return "abnormal"


def _distance(m: Measurement) -> float | None:
    """How far a value lies outside its range (0 inside it); None without a value or a range."""
    if m.value is None or (m.low is None and m.high is None):
        return None
    if m.low is not None and m.value < m.low:
        return m.low - m.value
    if m.high is not None and m.value > m.high:
        return m.value - m.high
    return 0.0


def _trend(now: Measurement, before: Measurement) -> Trend:
    if now.value is not None and now.value == before.value:
        return "same"
    d_now, d_before = _distance(now), _distance(before)
    if d_now is None or d_before is None:
        return "changed"
    if d_now < d_before:
        return "toward"
    if d_now > d_before:
        return "away"
    return "same" if d_now == 0 else "changed"


def _judged(series: Series, m: Measurement, older: list[Measurement]) -> Judgement:
    previous = next((x for x in older if x.value is not None), None)
    return Judgement(
        series=series.code or series.name,
        date=m.date,
        state=state_of(m),
        critical=(m.interpretation or "").upper() in CRITICAL_CODES,
        trend=_trend(m, previous) if previous is not None else None,
        previous_state=state_of(previous) if previous is not None else None,
    )


def judgements(timeline: ClinicalTimeline) -> dict[str, Judgement]:
    """The record's judgement of every measurement of the timeline, by reference."""
    found: dict[str, Judgement] = {}
    for series in (*timeline.labs, *timeline.vitals):
        values = sorted(series_measurements(series), key=lambda m: m.date or "", reverse=True)
        for i, m in enumerate(values):
            found.setdefault(m.ref, _judged(series, m, [x for x in values[i + 1 :] if x.date != m.date]))
    return found


@dataclass(frozen=True)
class Disagreement:
    """A judging word the cited measurement contradicts."""

    ref: str
    claim: str
    detail: str


def _contradicts(claim: str, j: Judgement) -> str | None:
    """Why the record's judgement contradicts the claim, None when it agrees or cannot tell."""
    state = j.state
    if claim == "normal" and state in ("high", "low", "abnormal"):
        return f"the record judges it {state}, not normal"
    if claim == "abnormal" and state == "normal":
        return "the record judges it within its range"
    if claim == "high" and state in ("low", "normal"):
        return f"the record judges it {state}, not high"
    if claim == "low" and state in ("high", "normal"):
        return f"the record judges it {state}, not low"
    if claim == "critical" and state == "normal":
        return "the record judges it within its range, not critical"
    if claim == "resolved" and state in ("high", "low", "abnormal"):
        return f"the latest value is still {state}"
    if claim in ("improved", "worsening", "stable") and j.trend is None:
        return "the record holds no earlier value to judge a trend against"
    if claim == "improved" and j.trend == "away":
        return "the value moved away from its range"
    if claim == "worsening" and j.trend == "toward":
        return "the value moved toward its range"
    if claim == "stable" and j.previous_state is not None and state is not None and state != j.previous_state:
        return f"the value changed from {j.previous_state} to {state}"
    return None


def _newest_per_series(evidence: Iterable[Evidence]) -> list[Evidence]:
    newest: dict[str, Evidence] = {}
    for e in evidence:
        j = e.judgement
        if j is None:
            continue
        held = newest.get(j.series)
        if held is None or (j.date or "") > ((held.judgement.date if held.judgement else None) or ""):
            newest[j.series] = e
    return list(newest.values())


def disagreements(text: str, cited: list[Evidence]) -> list[Disagreement]:
    """The judging words of a statement that its cited measurements contradict. A word judges the
    measurements whose value (else name) its comma-separated part gives ("blood pressure 150/95 mmHg
    (high), heart rate 80"),
    else in its clause ("potassium 6.9 mmol/L, which is within the normal range"), else in the statement."""
    judged = [e for e in cited if e.judgement is not None]
    if not judged:
        return []
    named = [e for e in judged if mentions(text, e)]
    found: list[Disagreement] = []
    parts = [(part, clause) for clause in CLAUSE.split(text) for part in PART.split(clause)]
    for part, clause in parts:
        claims = [name for name, pattern in CLAIMS.items() if pattern.search(part)]
        if "abnormal" in claims:
            claims = [c for c in claims if c != "normal"]
        if not claims:
            continue
        valued = [e for e in judged if any(e.has_quantity(q) for q in quantities_in(part))]
        in_part = valued or [e for e in judged if mentions(part, e)]
        targets = _newest_per_series(in_part or [e for e in judged if mentions(clause, e)] or named)
        for claim in claims:
            for e in targets:
                assert e.judgement is not None
                why = _contradicts(claim, e.judgement)
                if why:
                    found.append(Disagreement(e.ref, claim, why))
    return found
