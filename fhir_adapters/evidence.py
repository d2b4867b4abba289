"""FHIR resources → Evidence: the numbers, dates, concepts and retraction the verifier checks against."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import date, datetime
from typing import Any

from fhir.resources.R4B.resource import Resource

from clinical_notes.concepts import term_stems
from clinical_notes.evidence import Evidence, Quantity, parse_day, quantities_in
from fhir_adapters.record import PatientRecord

DATE_KEYS = re.compile(r"(DateTime|Date|date|issued|authoredOn|recorded|start|end|Instant)$")
TEXT_KEYS = frozenset({"display", "text", "conclusion", "description", "title", "valueString", "gender"})
RETRACTED_CODES = frozenset({"entered-in-error", "refuted"})


def _decimals(text: str) -> int:
    return len(text.split(".", 1)[1]) if "." in text else 0


def _decoded(data: str) -> str:
    try:
        return base64.b64decode(data).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return ""


class _Walk:
    """One pass over a resource's JSON collecting quantities, dates and the texts that name things."""

    def __init__(self, evidence: Evidence):
        self.evidence = evidence
        self.texts: list[str] = []

    def node(self, node: Any, key: str) -> None:
        if isinstance(node, dict):
            self.mapping(node, key)
        elif isinstance(node, list):
            for item in node:
                self.node(item, key)
        elif isinstance(node, str):
            self.string(node, key)

    def mapping(self, node: dict[str, Any], key: str) -> None:
        if isinstance(node.get("value"), int | float) and isinstance(
            node.get("unit") or node.get("code"), str
        ):
            unit = str(node.get("unit") or node.get("code"))
            self.evidence.quantities.append(
                Quantity(float(node["value"]), unit, _decimals(str(node["value"])))
            )
        start, end = parse_day(node.get("start")), parse_day(node.get("end"))
        if start is not None:
            self.evidence.intervals.append((start, end or date.max))  # no end: the period is ongoing
        elif end is not None:
            self.evidence.intervals.append((end, end))
        if key == "class" and isinstance(node.get("code"), str):
            self.texts.append(node["code"])  # Encounter.class: AMB, EMER, IMP name the setting
        if key == "language":  # Patient.communication.language: the BCP-47 tag names the language
            codes = [c.get("code") for c in node.get("coding", []) if isinstance(c, dict)]
            self.texts += [c for c in codes if isinstance(c, str)]
        for child_key, child in node.items():
            if child_key == "referenceRange":
                continue  # a range's limits are not values the resource records ("was 150 mg/dL")
            if child_key == "data" and isinstance(child, str):
                text = _decoded(child)
                self.evidence.quantities.extend(quantities_in(text))
                self.texts.append(text)
            elif child_key not in ("start", "end"):
                self.node(child, child_key)

    def string(self, value: str, key: str) -> None:
        if DATE_KEYS.search(key):
            day = parse_day(value)
            if day:
                self.evidence.intervals.append((day, day))
        elif key in TEXT_KEYS or key == "div":
            self.evidence.quantities.extend(quantities_in(value))
            if key != "div":
                self.texts.append(value)


def _retracted(data: dict[str, Any]) -> str | None:
    for attr in ("status", "docStatus"):
        if data.get(attr) == "entered-in-error":
            return "entered-in-error"
    if data.get("resourceType") == "Observation" and data.get("status") == "cancelled":
        return "cancelled"
    verification = data.get("verificationStatus") or {}
    for coding in verification.get("coding", []) if isinstance(verification, dict) else []:
        if coding.get("code") in RETRACTED_CODES:
            return str(coding["code"])
    return None


def evidence_of(resource: Resource, today: date | None = None) -> Evidence:
    """What a resource can vouch for."""
    data = resource.model_dump(mode="json", exclude_none=True)
    evidence = Evidence(f"{resource.get_resource_type()}/{resource.id}", retracted=_retracted(data))
    walk = _Walk(evidence)
    walk.node(data, "")
    evidence.terms = term_stems(walk.texts)
    birth = getattr(resource, "birthDate", None)
    if resource.get_resource_type() == "Patient" and isinstance(birth, date):
        died = getattr(resource, "deceasedDateTime", None)
        now = (
            died.date() if isinstance(died, datetime) else today or date.today()
        )  # age at death, as condensed
        age = now.year - birth.year - ((now.month, now.day) < (birth.month, birth.day))
        evidence.quantities.append(Quantity(float(age), "years"))
    return evidence


class RecordEvidence:
    """The evidence of a fetched record, computed once per cited resource."""

    def __init__(self, record: PatientRecord):
        self.record = record
        self._cache: dict[str, Evidence] = {}

    def evidence(self, ref: str) -> Evidence | None:
        """The evidence of a resource in the record; an order also names the Medication it points at."""
        if ref in self._cache:
            return self._cache[ref]
        resource = self.record.resources.get(ref)
        if resource is None:
            return None
        found = evidence_of(resource)
        medication = getattr(getattr(resource, "medicationReference", None), "reference", None)
        named = self.record.resources.get(medication) if isinstance(medication, str) else None
        if named is not None:
            found.terms |= evidence_of(named).terms
        self._cache[ref] = found
        return found
