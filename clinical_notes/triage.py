"""Deterministic triage rules, run on every triage draft: NEWS2, critical lab values, drug-allergy conflicts,
and the triage screen of the current encounter (ESI, CTAS or KTAS criteria: clinical_notes.screen).

NEWS2 (Royal College of Physicians, 2017), SpO2 scale 1, from the latest value of each parameter when all
were taken within 24 hours of each other; a missing parameter makes the score not computable (never 0).
Supplemental oxygen and consciousness count as room air and alert when not recorded (said in the rationale).
Bands: 0-4 low, any single parameter scoring 3 low-medium, 5-6 medium, 7+ high; high → critical,
medium or low-medium → warning, low → info.

Critical lab values (latest result of each test, when taken within 72 h of the record's newest result or
encounter: an old critical value describes a past state; thresholds in CRITICAL_LABS, adult, common laboratory
critical-call limits): potassium < 2.8 or > 6.2 mmol/L; sodium < 120 or > 160 mmol/L; glucose < 50 or
> 400 mg/dL; haemoglobin < 7 g/dL; lactate >= 4 mmol/L (critical), >= 2 (warning); troponin above the
result's own upper reference limit, else above the limit listed; creatinine rise >= 0.3 mg/dL within 48 h
or >= 1.5x the lowest value of the previous 7 days (KDIGO acute kidney injury criteria) → warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from clinical_notes.draft import Flag
from clinical_notes.timeline import ClinicalTimeline, Measurement, Series, series_measurements, when

RR, SPO2, TEMP, SBP, HR = (
    ("9279-1",),
    ("59408-5", "2708-6", "2710-2"),
    ("8310-5", "8331-1"),
    ("8480-6",),
    ("8867-4",),
)
O2_FLOW, CONSCIOUSNESS = ("3151-8", "3150-0"), ("67775-7", "80288-4")
FAHRENHEIT = frozenset({"[degf]", "°f", "degf", "f", "deg f", "fahrenheit"})
ONE_SET = timedelta(hours=24)
RECENT = timedelta(hours=72)


@dataclass(frozen=True)
class CriticalLab:
    """Critical-call limits of one test, in one unit."""

    name: str
    codes: tuple[str, ...]
    unit: str
    low: float | None = None
    high: float | None = None
    warning_high: float | None = None
    use_record_high: bool = False


CRITICAL_LABS = (
    CriticalLab("Potassium", ("2823-3", "6298-4"), "mmol/L", 2.8, 6.2),
    CriticalLab("Sodium", ("2951-2", "2947-0"), "mmol/L", 120, 160),
    CriticalLab("Glucose", ("2345-7", "2339-0"), "mg/dL", 50, 400),
    CriticalLab("Haemoglobin", ("718-7",), "g/dL", 7, None),
    CriticalLab("Lactate", ("2524-7", "32693-4"), "mmol/L", None, 4, warning_high=2),
    CriticalLab("Troponin I", ("10839-9", "42757-5"), "ng/mL", None, 0.04, use_record_high=True),
    CriticalLab("Troponin I (high sensitivity)", ("89579-7",), "ng/L", None, 52, use_record_high=True),
    CriticalLab("Troponin T", ("6598-7",), "ng/mL", None, 0.01, use_record_high=True),
)
CREATININE = ("2160-0", "38483-4")
# Allergy substance word → drug name fragments of the same class.
DRUG_CLASSES = {
    "penicillin": ("penicillin", "amoxicillin", "ampicillin", "piperacillin", "nafcillin", "oxacillin"),
    "sulfa": ("sulfamethoxazole", "sulfasalazine", "sulfadiazine"),
    "cephalosporin": ("cef", "ceph"),
    "nsaid": ("ibuprofen", "naproxen", "diclofenac", "ketorolac", "celecoxib", "aspirin"),
    "aspirin": ("aspirin",),
    "codeine": ("codeine",),
    "morphine": ("morphine",),
}


def _day(value: str | None) -> str:
    return value[:10] if value else "date unknown"


def _when(m: Measurement) -> datetime | None:
    return when(m.date)


def _find(series: list[Series], codes: tuple[str, ...]) -> Series | None:
    candidates = [s for s in series if s.code in codes]
    return max(candidates, key=lambda s: s.latest.date or "", default=None)


def _band(value: float, limits: list[tuple[float, int]], above: int) -> int:
    """Score of the first (upper bound, score) pair the value does not exceed; `above` beyond the last."""
    for bound, score in limits:
        if value <= bound:
            return score
    return above


@dataclass
class News2:
    """A NEWS2 result, or why it could not be computed."""

    score: int | None = None
    band: str | None = None
    parameters: dict[str, int] = field(default_factory=dict)
    refs: list[str] = field(default_factory=list)
    assumed: list[str] = field(default_factory=list)
    not_computable: str | None = None

    def banded(self) -> News2:
        """This result with its score and band set from its parameters' points."""
        self.score = sum(self.parameters.values())
        self.band = (
            "high"
            if self.score >= 7
            else "medium"
            if self.score >= 5
            else "low-medium"
            if 3 in self.parameters.values()
            else "low"
        )
        return self

    def flag(self) -> Flag:
        """The NEWS2 result as a triage flag."""
        if self.score is None:
            return Flag(
                severity="info",
                title="NEWS2 not computable",
                rationale=self.not_computable or "",
                citations=self.refs,
                source="rule",
            )
        severity = {"high": "critical", "medium": "warning", "low-medium": "warning"}.get(
            self.band or "", "info"
        )
        parts = ", ".join(f"{name} {points}" for name, points in self.parameters.items())
        assumed = f"; assumed {', '.join(self.assumed)}" if self.assumed else ""
        return Flag(
            severity=severity,
            title=f"NEWS2 {self.score} ({self.band} risk)",
            rationale=f"NEWS2 from the latest vital signs: {parts}{assumed}.",
            citations=self.refs,
            source="rule",
        )


def news2_points(value: dict[str, float]) -> dict[str, int]:
    """NEWS2 points of the five measured parameters (temperature in °C, SpO2 scale 1)."""
    return {
        "respiratory rate": _band(value["respiratory rate"], [(8, 3), (11, 1), (20, 0), (24, 2)], 3),
        "SpO2": _band(value["SpO2"], [(91, 3), (93, 2), (95, 1)], 0),
        "temperature": _band(value["temperature"], [(35.0, 3), (36.0, 1), (38.0, 0), (39.0, 1)], 2),
        "systolic BP": _band(value["systolic BP"], [(90, 3), (100, 2), (110, 1), (219, 0)], 3),
        "heart rate": _band(value["heart rate"], [(40, 3), (50, 1), (90, 0), (110, 1), (130, 2)], 3),
    }


def news2(timeline: ClinicalTimeline) -> News2:
    """NEWS2 from the latest vital signs, or the reason it cannot be computed."""
    vitals = timeline.vitals + timeline.labs
    found = {
        name: _find(vitals, codes)
        for name, codes in (
            ("respiratory rate", RR),
            ("SpO2", SPO2),
            ("temperature", TEMP),
            ("systolic BP", SBP),
            ("heart rate", HR),
        )
    }
    missing = [name for name, s in found.items() if s is None or s.latest.value is None]
    if missing:
        return News2(not_computable=f"no recorded {', '.join(missing)}")
    latest = {name: s.latest for name, s in found.items() if s is not None}
    times = [t for t in (_when(m) for m in latest.values()) if t is not None]
    if len(times) != len(latest) or max(times) - min(times) > ONE_SET:
        return News2(
            not_computable="the latest vital signs were not taken within 24 hours of each other",
            refs=[m.ref for m in latest.values()],
        )
    value = {name: float(m.value or 0) for name, m in latest.items()}
    temperature = latest["temperature"]
    if (temperature.unit or "").lower() in FAHRENHEIT:
        value["temperature"] = (value["temperature"] - 32) * 5 / 9
    points = news2_points(value)
    refs = [m.ref for m in latest.values()]
    result = News2(parameters=points, refs=refs)
    oxygen = _find(vitals, O2_FLOW)
    if oxygen is not None and (oxygen.latest.value or 0) > 0 and _near(oxygen.latest, times):
        points["supplemental O2"] = 2
        refs.append(oxygen.latest.ref)
    elif oxygen is None:
        result.assumed.append("room air")
    consciousness = _find(vitals, CONSCIOUSNESS)
    if consciousness is not None and _near(consciousness.latest, times):
        alert = "alert" in (consciousness.latest.text or "").lower()
        points["consciousness"] = 0 if alert else 3
        refs.append(consciousness.latest.ref)
    else:
        result.assumed.append("alert")
    return result.banded()


def _near(m: Measurement, times: list[datetime]) -> bool:
    when = _when(m)
    return when is not None and all(abs(when - t) <= ONE_SET for t in times)


def as_of(timeline: ClinicalTimeline) -> datetime | None:
    """The record's most recent clinical time: the newest result or encounter start."""
    times = [_when(s.latest) for s in (*timeline.vitals, *timeline.labs)]
    times += [_when(Measurement(ref=e.ref, date=e.start)) for e in timeline.encounters]
    return max((t for t in times if t is not None), default=None)


def critical_labs(timeline: ClinicalTimeline) -> list[Flag]:
    """Flags for the latest results beyond critical-call limits (taken in the last 72 h), creatinine rises."""
    flags = []
    now = as_of(timeline)
    for lab in CRITICAL_LABS:
        series = _find(timeline.labs, lab.codes)
        m = series.latest if series else None
        if m is None or m.value is None or (m.unit or "").replace(" ", "") != lab.unit:
            continue
        taken = _when(m)
        if now is not None and (taken is None or now - taken > RECENT):
            continue  # an old critical value describes a past state, not the one being triaged
        high = m.high if lab.use_record_high and m.high is not None else lab.high
        shown = f"{lab.name} {m.value:g} {m.unit} on {_day(m.date)}"
        if (lab.low is not None and m.value < lab.low) or (high is not None and m.value > high):
            limit = f"below {lab.low:g}" if lab.low is not None and m.value < lab.low else f"above {high:g}"
            flags.append(
                Flag(
                    severity="critical",
                    title=f"Critical {lab.name.lower()}",
                    rationale=f"{shown}, {limit} {lab.unit}.",
                    citations=[m.ref],
                    source="rule",
                )
            )
        elif lab.warning_high is not None and m.value >= lab.warning_high:
            flags.append(
                Flag(
                    severity="warning",
                    title=f"Raised {lab.name.lower()}",
                    rationale=f"{shown}, at or above {lab.warning_high:g} {lab.unit}.",
                    citations=[m.ref],
                    source="rule",
                )
            )
    creatinine = _find(timeline.labs, CREATININE)
    if creatinine is not None:
        flag = _creatinine_rise(creatinine)
        if flag:
            flags.append(flag)
    return flags


def _creatinine_rise(series: Series) -> Flag | None:
    latest = series.latest
    now = _when(latest)
    if latest.value is None or now is None or (latest.unit or "") != "mg/dL":
        return None
    earlier = [m for m in series_measurements(series)[1:] if m.value is not None and _when(m)]
    within_48h = [m for m in earlier if now - (_when(m) or now) <= timedelta(hours=48)]
    within_7d = [m for m in earlier if now - (_when(m) or now) <= timedelta(days=7)]
    baseline = min(within_7d, key=lambda m: m.value or 0, default=None)
    recent = min(within_48h, key=lambda m: m.value or 0, default=None)
    if recent is not None and latest.value - (recent.value or 0) >= 0.3:
        base = recent
    elif baseline is not None and latest.value >= 1.5 * (baseline.value or 0):
        base = baseline
    else:
        return None
    return Flag(
        severity="warning",
        title="Creatinine rise (consider acute kidney injury)",
        rationale=f"Creatinine {latest.value:g} mg/dL on {_day(latest.date)}, up from "
        f"{base.value:g} mg/dL on {_day(base.date)} (KDIGO criteria).",
        citations=[latest.ref, base.ref],
        source="rule",
    )


def allergy_conflicts(timeline: ClinicalTimeline) -> list[Flag]:
    """Active medications that match an active allergy's substance or drug class."""
    flags = []
    for allergy in (a for a in timeline.allergies if a.active):
        substance = allergy.substance.lower()
        fragments = {w for w in substance.replace("(", " ").replace(")", " ").split() if len(w) > 3}
        for key, members in DRUG_CLASSES.items():
            if key in substance:
                fragments.update(members)
        for med in (m for m in timeline.medications if m.active):
            name = med.name.lower()
            if any(fragment in name for fragment in fragments):
                severity = "critical" if allergy.criticality == "high" else "warning"
                flags.append(
                    Flag(
                        severity=severity,
                        title=f"Possible allergy conflict: {med.name}",
                        rationale=f"Active medication {med.name} may conflict with the recorded "
                        f"allergy to {allergy.substance}.",
                        citations=[med.ref, allergy.ref],
                        source="rule",
                    )
                )
    return flags
