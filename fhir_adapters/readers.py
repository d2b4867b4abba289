"""FHIR readers every FHIR → timeline translation shares: live resources, codes, labels, dates, values."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.resource import Resource

from clinical_notes.reference_ranges import default_range
from clinical_notes.timeline import Measurement

ERROR = "entered-in-error"
ABNORMAL_CODES = frozenset({"H", "HH", "HU", "L", "LL", "LU", "A", "AA", "<", ">", "POS", "DET", "R"})
NORMAL_CODES = frozenset({"N", "NEG", "ND", "S"})
LOINC = "http://loinc.org"
BP_PANEL = "85354-9"
R = TypeVar("R", bound=Resource)


def live(resources: Iterable[Resource], model: type[R]) -> list[R]:
    """Resources of a type that are not entered-in-error."""
    return [r for r in resources if isinstance(r, model) and not entered_in_error(r)]


def entered_in_error(resource: Resource) -> bool:
    """Whether a resource was entered in error (status, docStatus or verificationStatus)."""
    fields = type(resource).model_fields  # a missing attribute costs pydantic an exception; ask the class
    for attr in ("status", "docStatus"):
        if attr in fields and getattr(resource, attr) == ERROR:
            return True
    verification = getattr(resource, "verificationStatus", None) if "verificationStatus" in fields else None
    return isinstance(verification, CodeableConcept) and code_of(verification) == ERROR


def text_of(concept: CodeableConcept | None) -> str:
    """The human label of a CodeableConcept."""
    if concept is None:
        return "unknown"
    if concept.text:
        return str(concept.text)
    for coding in concept.coding or []:
        if coding.display:
            return str(coding.display)
    for coding in concept.coding or []:
        if coding.code:
            return str(coding.code)
    return "unknown"


def code_of(concept: CodeableConcept | None, system: str | None = None) -> str | None:
    """The first code of a concept (of `system`, when given)."""
    for coding in (concept.coding or []) if concept else []:
        if coding.code and (system is None or coding.system == system):
            return str(coding.code)
    return None


def iso(value: Any) -> str | None:
    """A FHIR date/dateTime/instant as an ISO string (dates stay dates)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def as_float(value: Decimal | float | int | None) -> float | None:
    """A FHIR decimal or integer as a float."""
    return None if value is None else float(value)


def categories(observation: Observation) -> set[str]:
    """The category codes of an Observation."""
    return {str(c.code) for cat in observation.category or [] for c in cat.coding or [] if c.code}


def measurements(obs: Observation, adult: bool) -> list[tuple[str, str, Measurement]]:
    """(code key, name, Measurement) of an Observation's value, or of each component of a panel."""
    ref = f"Observation/{obs.id}"
    when = iso(
        obs.effectiveDateTime or (obs.effectivePeriod.start if obs.effectivePeriod else None) or obs.issued
    )
    parts: list[tuple[CodeableConcept, Any, list[Any], list[Any]]] = []
    if obs.component and (code_of(obs.code, LOINC) == BP_PANEL or value_of(obs) is None):
        parts = [(c.code, c, c.interpretation or [], c.referenceRange or []) for c in obs.component]
    else:
        parts = [(obs.code, obs, obs.interpretation or [], obs.referenceRange or [])]
    found = []
    for code, holder, interpretations, ranges in parts:
        value = value_of(holder)
        if value is None:
            continue
        number, text, unit = value
        key = code_of(code, LOINC) or code_of(code) or text_of(code)
        m = Measurement(ref=ref, date=when, value=number, text=text, unit=unit)
        m.interpretation = next((code_of(i) for i in interpretations if code_of(i)), None)
        if ranges:
            m.low = as_float(ranges[0].low.value) if ranges[0].low else None
            m.high = as_float(ranges[0].high.value) if ranges[0].high else None
            m.range_source = "record"
        elif number is not None:
            fallback = default_range(key, unit, adult=adult)
            if fallback:
                m.low, m.high = fallback
                m.range_source = "default"
        m.abnormal = is_abnormal(m)
        found.append((key, text_of(code), m))
    return found


def value_of(holder: Any) -> tuple[float | None, str | None, str | None] | None:
    """(number, text, unit) of an Observation or component value; None when it has none."""
    quantity = getattr(holder, "valueQuantity", None)
    if quantity is not None and quantity.value is not None:
        return as_float(quantity.value), None, quantity.unit or quantity.code
    concept = getattr(holder, "valueCodeableConcept", None)
    if concept is not None:
        return None, text_of(concept), None
    for attr in ("valueString", "valueInteger", "valueBoolean"):
        value = getattr(holder, attr, None)
        if value is not None:
            return (as_float(value), None, None) if attr == "valueInteger" else (None, str(value), None)
    return None


def is_abnormal(m: Measurement) -> bool | None:
    """Abnormal by interpretation code, else by range; None when neither says."""
    code = (m.interpretation or "").upper()
    if code in ABNORMAL_CODES:
        return True
    if code in NORMAL_CODES:
        return False
    if m.value is None or (m.low is None and m.high is None):
        return None
    return (m.low is not None and m.value < m.low) or (m.high is not None and m.value > m.high)
