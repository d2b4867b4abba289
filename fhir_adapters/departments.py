"""The department of a patient's latest encounter, as the record names it (service type and locations)."""

from __future__ import annotations

from fhir.resources.R4B.encounter import Encounter

from fhir_adapters.record import PatientRecord


def latest_encounter(record: PatientRecord) -> Encounter | None:
    """The encounter that started last (undated ones count as oldest)."""
    encounters = [r for r in record.resources.values() if isinstance(r, Encounter)]
    if not encounters:
        return None
    return max(encounters, key=lambda e: str(e.period.start) if e.period and e.period.start else "")


def departments(record: PatientRecord) -> list[str]:
    """Names of the latest encounter's department: its serviceType (text, displays, codes) and locations."""
    encounter = latest_encounter(record)
    if encounter is None:
        return []
    names: list[str] = []
    service = encounter.serviceType
    if service is not None:
        names += [service.text] if service.text else []
        names += [c.display for c in service.coding or [] if c.display]
        names += [c.code for c in service.coding or [] if c.code]
    names += [loc.location.display for loc in encounter.location or [] if loc.location.display]
    return [str(n) for n in names]
