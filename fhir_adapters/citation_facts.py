"""The facts of a cited resource a reviewer checks a statement against: value, unit, range, date, status."""

from __future__ import annotations

from typing import Any

DATE_FIELDS = (
    "effectiveDateTime",
    "effectivePeriod",
    "issued",
    "onsetDateTime",
    "recordedDate",
    "authoredOn",
    "performedDateTime",
    "performedPeriod",
    "occurrenceDateTime",
    "period",
    "date",
    "birthDate",
)
CONCEPT_FIELDS = ("code", "medicationCodeableConcept", "vaccineCode", "type")


def concept_text(concept: Any) -> str | None:
    """A CodeableConcept as people read it: its text, else the first coding's display or code."""
    if not isinstance(concept, dict):
        return None
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding") or []:
        if isinstance(coding, dict) and (coding.get("display") or coding.get("code")):
            return str(coding.get("display") or coding.get("code"))
    return None


def _quantity(value: Any) -> tuple[str, str | None] | None:
    if not isinstance(value, dict) or value.get("value") is None:
        return None
    return f"{value.get('comparator', '')}{value['value']}", value.get("unit") or value.get("code")


def _period(value: Any) -> str | None:
    if isinstance(value, dict):
        return " to ".join(str(value[k]) for k in ("start", "end") if value.get(k)) or None
    return str(value) if value else None


def _range(ranges: Any) -> str | None:
    for item in ranges if isinstance(ranges, list) else []:
        if not isinstance(item, dict):
            continue
        if item.get("text"):
            return str(item["text"])
        low, high = _quantity(item.get("low")), _quantity(item.get("high"))
        unit = (low or high or ("", None))[1]
        bounds = f"{low[0] if low else ''} to {high[0] if high else ''}"
        if low or high:
            return f"{bounds} {unit}".strip() if unit else bounds
    return None


def _value(resource: dict[str, Any]) -> tuple[str, str | None] | None:
    quantity = _quantity(resource.get("valueQuantity"))
    if quantity:
        return quantity
    for key in ("valueString", "valueBoolean", "valueInteger", "valueDateTime"):
        if key in resource:
            return str(resource[key]), None
    text = concept_text(resource.get("valueCodeableConcept"))
    if text:
        return text, None
    dose = (resource.get("dosageInstruction") or [{}])[0]
    if isinstance(dose, dict) and dose.get("text"):
        return str(dose["text"]), None
    return None


def _status(resource: dict[str, Any]) -> str | None:
    parts = [concept_text(resource.get(k)) for k in ("clinicalStatus", "verificationStatus")]
    parts.append(resource.get("status"))
    return ", ".join(str(p) for p in parts if p) or None


def name_of(resource: dict[str, Any]) -> str | None:
    """A person's first recorded name as written."""
    for name in resource.get("name") or []:
        if isinstance(name, dict):
            text = name.get("text") or " ".join([*name.get("given", []), name.get("family", "")]).strip()
            if text:
                return str(text)
    return None


def citation_facts(resource: dict[str, Any]) -> list[tuple[str, str]]:
    """Labelled facts of one resource, in reading order; only those it states."""
    display = next((t for t in (concept_text(resource.get(k)) for k in CONCEPT_FIELDS) if t), None)
    if display is None and resource.get("resourceType") == "Patient":
        display = "Patient"
    facts: list[tuple[str, str | None]] = [("What", display), ("Name", name_of(resource))]
    facts.append(("Gender", resource.get("gender")))
    value = _value(resource)
    facts += [("Value", value[0] if value else None), ("Unit", value[1] if value else None)]
    for component in resource.get("component") or []:
        part = _value(component) if isinstance(component, dict) else None
        if part:
            facts.append((concept_text(component.get("code")) or "Component", " ".join(p for p in part if p)))
    facts.append(("Reference range", _range(resource.get("referenceRange"))))
    interpretation = resource.get("interpretation") or []
    facts.append(("Interpretation", concept_text(interpretation[0]) if interpretation else None))
    facts.append(("Date", next((d for d in (_period(resource.get(k)) for k in DATE_FIELDS) if d), None)))
    facts.append(("Status", _status(resource)))
    if resource.get("criticality"):
        facts.append(("Criticality", str(resource["criticality"])))
    return [(label, text) for label, text in facts if text]
