"""Adult reference ranges used only when a result carries none (flagged range_source="default").

Common laboratory reference intervals for adults (serum/plasma, fasting where it matters); a result
is flagged abnormal against these only when its unit matches the one listed and the patient is an adult.
Vital signs: the limits NEWS2 (Royal College of Physicians, 2017) scores as 0 for heart rate (51-90 is 0;
the conventional adult resting range 60-100 is used), respiratory rate 12-20, SpO2 >= 96 (scale 1; 94 used,
BTS target range 94-98 %), temperature 36.1-38.0 °C; blood pressure 90-139 / 60-89 mmHg (ESC/ESH 2018
"high normal" ceiling); BMI 18.5-30 kg/m2 (WHO underweight and obesity cut-offs).
"""

from __future__ import annotations

# LOINC code -> (unit, low, high); None means unbounded on that side.
DEFAULT_RANGES: dict[str, tuple[str, float | None, float | None]] = {
    "2823-3": ("mmol/L", 3.5, 5.1),  # potassium
    "6298-4": ("mmol/L", 3.5, 5.1),  # potassium, blood
    "2951-2": ("mmol/L", 135.0, 145.0),  # sodium
    "2947-0": ("mmol/L", 135.0, 145.0),  # sodium, blood
    "2075-0": ("mmol/L", 98.0, 107.0),  # chloride
    "2028-9": ("mmol/L", 22.0, 29.0),  # carbon dioxide
    "2345-7": ("mg/dL", 70.0, 99.0),  # glucose
    "2339-0": ("mg/dL", 70.0, 99.0),  # glucose, blood
    "2160-0": ("mg/dL", 0.6, 1.3),  # creatinine
    "38483-4": ("mg/dL", 0.6, 1.3),  # creatinine, blood
    "6299-2": ("mg/dL", 7.0, 20.0),  # urea nitrogen
    "49765-1": ("mg/dL", 8.5, 10.5),  # calcium
    "17861-6": ("mg/dL", 8.5, 10.5),  # calcium
    "718-7": ("g/dL", 12.0, 17.5),  # haemoglobin
    "6690-2": ("10*3/uL", 4.5, 11.0),  # leukocytes
    "777-3": ("10*3/uL", 150.0, 450.0),  # platelets
    "4548-4": ("%", None, 5.7),  # haemoglobin A1c
    "2093-3": ("mg/dL", None, 200.0),  # total cholesterol
    "18262-6": ("mg/dL", None, 130.0),  # LDL cholesterol
    "2571-8": ("mg/dL", None, 150.0),  # triglycerides
    "2085-9": ("mg/dL", 40.0, None),  # HDL cholesterol
    "33914-3": ("mL/min/{1.73_m2}", 60.0, None),  # eGFR
    "2524-7": ("mmol/L", 0.5, 2.2),  # lactate
    "8867-4": ("/min", 60.0, 100.0),  # heart rate
    "9279-1": ("/min", 12.0, 20.0),  # respiratory rate
    "59408-5": ("%", 94.0, None),  # SpO2 by pulse oximetry
    "2708-6": ("%", 94.0, None),  # oxygen saturation, arterial
    "8310-5": ("Cel", 36.1, 38.0),  # body temperature
    "8480-6": ("mm[Hg]", 90.0, 139.0),  # systolic blood pressure
    "8462-4": ("mm[Hg]", 60.0, 89.0),  # diastolic blood pressure
    "39156-5": ("kg/m2", 18.5, 30.0),  # body mass index
}
VITAL_SIGNS = frozenset(
    {
        "8867-4",
        "9279-1",
        "59408-5",
        "2708-6",
        "8310-5",
        "8331-1",
        "8480-6",
        "8462-4",
        "85354-9",
        "39156-5",
        "29463-7",
        "8302-2",
        "72514-3",
        "9843-4",
        "8287-5",
        "3150-0",
        "3151-8",
    }
)
ADULT_ONLY = frozenset({"8867-4", "9279-1", "8480-6", "8462-4", "39156-5"})


def default_range(loinc: str, unit: str | None, *, adult: bool) -> tuple[float | None, float | None] | None:
    """The default (low, high) of a LOINC code when the unit matches (children: no adult vital limits)."""
    found = DEFAULT_RANGES.get(loinc)
    if (
        found is None
        or unit is None
        or unit.replace(" ", "") != found[0]
        or (loinc in ADULT_ONLY and not adult)
    ):
        return None
    return found[1], found[2]
