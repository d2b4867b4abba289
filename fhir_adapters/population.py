"""Who is in a population: a Group's patient members, or the patients of a ward's in-progress encounters."""

from __future__ import annotations

import logging
from typing import Any

from fhir_adapters.client import FhirClient
from fhir_adapters.references import fhir_id, parse_reference
from services.core.errors import FhirError, InputError

log = logging.getLogger(__name__)


def _patient_of(value: object, base_url: str, what: str) -> str | None:
    """The patient id a reference names, or None when it names something else or nothing usable."""
    try:
        ref = parse_reference(value, base_url=base_url, what=what)
    except InputError:
        return None
    return ref.id if ref.type == "Patient" else None


async def group_patients(client: FhirClient, group_id: str) -> list[str]:
    """The active Patient members of a Group, in the Group's order, each once."""
    group = await client.read("Group", fhir_id(group_id, "group"))
    ids: list[str] = []
    skipped = 0
    for member in group.get("member", []):
        patient = None if member.get("inactive") else _member_patient(member, client.base_url)
        if patient is None:
            skipped += 1
        else:
            ids.append(patient)
    if skipped:
        log.info("group members skipped (inactive or not a Patient)", extra={"count": skipped})
    return list(dict.fromkeys(ids))


def _member_patient(member: dict[str, Any], base_url: str) -> str | None:
    entity = member.get("entity")
    return _patient_of(entity.get("reference") if isinstance(entity, dict) else None, base_url, "member")


async def ward_patients(client: FhirClient, location_id: str) -> list[str]:
    """The patients of the in-progress encounters at a Location (a ward), each once."""
    location = f"Location/{fhir_id(location_id, 'location')}"
    await client.read("Location", location_id)  # a ward that does not exist is an error, not an empty ward
    ids: list[str] = []
    async for encounter in client.search("Encounter", {"location": location, "status": "in-progress"}):
        # A server that ignores a search parameter answers more than was asked: check what came back.
        if encounter.get("status") != "in-progress" or not _at(encounter, location, client.base_url):
            continue
        subject = encounter.get("subject")
        patient = _patient_of(
            subject.get("reference") if isinstance(subject, dict) else None, client.base_url, "subject"
        )
        if patient is None:
            raise FhirError(f"Encounter/{encounter.get('id')} at {location} has no Patient subject")
        ids.append(patient)
    return list(dict.fromkeys(ids))


def _at(encounter: dict[str, Any], location: str, base_url: str) -> bool:
    """Whether the encounter is at the location now (not a place it left or has yet to go to)."""
    for entry in encounter.get("location", []):
        if not isinstance(entry, dict) or entry.get("status") in ("completed", "planned"):
            continue
        ref = (entry.get("location") or {}).get("reference")
        try:
            if str(parse_reference(ref, base_url=base_url)) == location:
                return True
        except InputError:
            continue
    return False
