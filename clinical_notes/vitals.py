"""The vital-sign set at presentation, in one unit each, with what could not be read and why.

Units: heart and respiratory rates per minute; SpO2 in percent (a fraction recorded with unit "1" is turned
into percent); systolic and diastolic pressure in mmHg (kPa x 7.50062); temperature in °C (°F converted, K
converted; with no unit, 25-45 reads as °C and 77-113 as °F, and the reading says so). A value in a unit
that measures another dimension (a heart rate in mmHg) is not assessed.

Plausible limits (what a measurement on a living patient can read, not clinical thresholds): heart rate
1-300 /min, respiratory rate 1-120 /min, SpO2 1-100 %, systolic pressure 20-300 mmHg, diastolic 10-250
mmHg, temperature 25-45 °C, pain 0-10, GCS 3-15. A value outside them is not assessed: it is said, with
the value, never used and never dropped silently. A heart rate of 0 while the same set records a blood
pressure or a saturation (so a pulse) says so.

Consciousness: AVPU (LOINC 67775-7, 80288-4; "confused" is the C of ACVPU) and GCS total (9269-2).
Oxygen therapy: inhaled O2 flow (3151-8) above 0, or inspired O2 (3150-0) above room air's 21 %.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from clinical_notes.timeline import Measurement, Presentation
from clinical_notes.triage import FAHRENHEIT, HR, RR, SBP, SPO2, TEMP

HEART_RATE = (*HR, "8889-8")
TEMPERATURE = (*TEMP, "8332-9")
PAIN = ("72514-3", "38208-5", "98137-3")
GCS = ("9269-2", "35088-4")
AVPU = ("67775-7", "80288-4")
O2_FLOW = ("3151-8",)
FIO2 = ("3150-0",)
CHIEF_COMPLAINT = ("8661-1", "10154-3", "46239-0", "29299-5")
PREGNANCY_STATUS = ("82810-3", "11449-6")
DBP = ("8462-4",)
CORE = ("HR", "RR", "SBP", "SpO2", "temperature")
# Every observation code a presentation keeps (the BP panel holds the systolic and diastolic pressures).
PRESENTATION_CODES = frozenset(
    {*HEART_RATE, *RR, *SBP, *DBP, "85354-9", *SPO2, *TEMPERATURE, *PAIN, *GCS, *AVPU, *O2_FLOW, *FIO2}
    | {*CHIEF_COMPLAINT, *PREGNANCY_STATUS}
)

RATE_UNITS = frozenset(
    {"/min", "1/min", "min-1", "{beats}/min", "beats/min", "beats/minute", "bpm", "{breaths}/min"}
    | {"breaths/min", "breaths/minute", "{beat}/min", "{breath}/min", "per min"}
)
PERCENT_UNITS = frozenset({"%", "percent", "%{oxygen}"})
MMHG_UNITS = frozenset({"mm[hg]", "mmhg", "mm hg"})
CELSIUS = frozenset({"cel", "°c", "c", "degc", "deg c", "celsius", "[degc]"})
RATIO_UNITS = frozenset({"1", "{ratio}", "ratio"})
KPA_TO_MMHG = 7.50062
# Accepted units (none recorded is accepted too), the canonical unit shown, and the dimension they measure.
UNIT_DIMENSIONS = {
    "HR": (RATE_UNITS, "/min", "a rate per minute"),
    "RR": (RATE_UNITS, "/min", "a rate per minute"),
    "SpO2": (PERCENT_UNITS, "%", "a percent"),
    "SBP": (MMHG_UNITS, "mmHg", "a pressure"),
    "DBP": (MMHG_UNITS, "mmHg", "a pressure"),
}
PLAUSIBLE = {
    "HR": (1.0, 300.0),
    "RR": (1.0, 120.0),
    "SpO2": (1.0, 100.0),
    "SBP": (20.0, 300.0),
    "DBP": (10.0, 250.0),
    "temperature": (25.0, 45.0),
    "pain": (0.0, 10.0),
    "GCS": (3.0, 15.0),
}
NAMES = {
    "HR": "heart rate",
    "RR": "respiratory rate",
    "SBP": "systolic BP",
    "DBP": "diastolic BP",
    "SpO2": "SpO2",
    "temperature": "temperature",
    "pain": "pain score",
    "GCS": "GCS",
}
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


@dataclass(frozen=True)
class Vital:
    """One reading in its canonical unit, shown as recorded (and converted, when it was)."""

    name: str
    value: float
    shown: str
    ref: str
    date: str | None = None


@dataclass
class VitalSet:
    """The first reading of each vital sign during an encounter, and why any could not be used."""

    readings: dict[str, Vital] = field(default_factory=dict)
    avpu: Vital | None = None
    avpu_letter: str | None = None
    oxygen: Vital | None = None
    not_assessed: list[tuple[str, str]] = field(default_factory=list)

    def get(self, name: str) -> Vital | None:
        """The reading of that name, when there is a usable one."""
        return self.readings.get(name)

    def missing(self) -> list[str]:
        """The core vital signs with no usable reading."""
        return [NAMES[n] for n in CORE if n not in self.readings]


def _first(presentation: Presentation, codes: tuple[str, ...]) -> Measurement | None:
    found = [presentation.readings[c] for c in codes if c in presentation.readings]
    return min(found, key=lambda m: m.date or "", default=None)


def _unit(m: Measurement) -> str:
    return (m.unit or "").strip().lower()


def _number(m: Measurement) -> float | None:
    """The value, or a number written as text ("8", "7-8" reads as its higher end, "8/10" as 8)."""
    if m.value is not None:
        return m.value
    text = (m.text or "").strip()
    if re.fullmatch(r"\d+(?:\.\d+)?\s*/\s*10", text):
        text = text.split("/")[0]
    numbers = [float(n) for n in _NUMBER.findall(text)]
    if numbers and re.fullmatch(r"[\d.\s\-to]+", text):
        return max(numbers)
    return None


def _shown(value: float, unit: str | None) -> str:
    return f"{value:g} {unit}".strip() if unit else f"{value:g}"


def _convert(name: str, m: Measurement, value: float) -> tuple[float, str] | str:
    """(value in the canonical unit, how it is shown) or why the unit cannot be read."""
    unit, raw = _unit(m), _shown(value, m.unit)
    if name == "SpO2" and unit in RATIO_UNITS and 0 < value <= 1:
        return value * 100, f"{raw} ({value * 100:g} %)"
    if name in ("SBP", "DBP") and unit == "kpa":
        return value * KPA_TO_MMHG, f"{raw} ({value * KPA_TO_MMHG:.0f} mmHg)"
    if name == "temperature":
        return _celsius(m, value)
    if name in UNIT_DIMENSIONS:
        accepted, canonical, dimension = UNIT_DIMENSIONS[name]
        if unit and unit not in accepted:
            return f"unit {m.unit!r} is not {dimension}"
        return value, f"{value:g} {canonical}"
    return value, raw


def _celsius(m: Measurement, value: float) -> tuple[float, str] | str:
    unit, raw = _unit(m), _shown(value, m.unit)
    if unit in CELSIUS:
        return value, f"{value:g} °C"
    if unit in FAHRENHEIT or (not unit and 77 <= value <= 113):
        celsius = (value - 32) * 5 / 9
        read = "°F" if unit else "°F (no unit recorded)"
        return celsius, f"{value:g} {read} ({celsius:.1f} °C)"
    if unit == "k":
        return value - 273.15, f"{raw} ({value - 273.15:.1f} °C)"
    if not unit and 25 <= value <= 45:
        return value, f"{value:g} °C (no unit recorded)"
    return f"unit {m.unit!r} is not a temperature" if unit else "no unit recorded and the value fits none"


def read_vitals(presentation: Presentation) -> VitalSet:
    """The vital-sign set at presentation in canonical units; what cannot be used is said, with why."""
    vitals = VitalSet()
    sources = {
        "HR": HEART_RATE,
        "RR": RR,
        "SBP": SBP,
        "DBP": DBP,
        "SpO2": SPO2,
        "temperature": TEMPERATURE,
        "pain": PAIN,
        "GCS": GCS,
    }
    for name, codes in sources.items():
        m = _first(presentation, codes)
        if m is None:
            continue
        number = _number(m)
        label = NAMES[name]
        if number is None:
            vitals.not_assessed.append((label, f"{label} {m.text or 'without a value'!r} is not a number"))
            continue
        converted = _convert(name, m, number)
        if isinstance(converted, str):
            vitals.not_assessed.append((label, f"{label} {_shown(number, m.unit)}: {converted}"))
            continue
        value, shown = converted
        low, high = PLAUSIBLE[name]
        if not low <= value <= high:
            vitals.not_assessed.append((label, f"{label} {shown} is not a possible reading"))
            continue
        vitals.readings[name] = Vital(name, value, f"{label} {shown}", m.ref, m.date)
    _check_zero_pulse(vitals)
    _read_avpu(presentation, vitals)
    _read_oxygen(presentation, vitals)
    return vitals


def _check_zero_pulse(vitals: VitalSet) -> None:
    """Say, for a heart rate of 0, which readings of the same set show a pulse."""
    for i, (label, reason) in enumerate(vitals.not_assessed):
        if label != NAMES["HR"] or not reason.endswith("not a possible reading"):
            continue
        pulse = [v.shown for n, v in vitals.readings.items() if n in ("SBP", "SpO2")]
        if pulse:
            vitals.not_assessed[i] = (label, f"{reason}: {' and '.join(pulse)} in the same set show a pulse")


def _read_avpu(presentation: Presentation, vitals: VitalSet) -> None:
    m = _first(presentation, AVPU)
    if m is None:
        return
    text = (m.text or "").strip().lower()
    letter = {"a": "A", "c": "C", "v": "V", "p": "P", "u": "U"}.get(text)
    for word, code in (
        ("unresponsive", "U"),
        ("pain", "P"),
        ("voice", "V"),
        ("verbal", "V"),
        ("confus", "C"),
        ("alert", "A"),
    ):
        if letter is None and word in text:
            letter = code
    if letter is None:
        vitals.not_assessed.append(
            ("consciousness", f"consciousness {m.text or 'without a value'!r} is not an AVPU level")
        )
        return
    vitals.avpu, vitals.avpu_letter = Vital("AVPU", 0, f"AVPU {letter} ({m.text})", m.ref, m.date), letter


def _read_oxygen(presentation: Presentation, vitals: VitalSet) -> None:
    flow, fio2 = _first(presentation, O2_FLOW), _first(presentation, FIO2)
    if flow is not None and (flow.value or 0) > 0:
        vitals.oxygen = Vital(
            "O2", flow.value or 0, f"oxygen {_shown(flow.value or 0, flow.unit)}", flow.ref, flow.date
        )
    elif fio2 is not None and fio2.value is not None:
        percent = fio2.value * 100 if fio2.value <= 1 else fio2.value
        if percent > 21:
            vitals.oxygen = Vital("O2", percent, f"inspired oxygen {percent:g} %", fio2.ref, fio2.date)
