"""A patient's record: fetched from the server ($everything, or per-type searches) or read from a Bundle."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.resource import Resource

from fhir_adapters.capability import Capabilities, capabilities
from fhir_adapters.client import FhirClient
from fhir_adapters.labels import is_ai_draft
from fhir_adapters.references import fhir_id
from fhir_adapters.resources import normalize_reference, parse_all, ref_of
from services.core.errors import FhirError, FhirNotFound, FhirUnavailable, InputError

log = logging.getLogger(__name__)

# Types searched one by one (with ?patient=Patient/ID) when the server has no usable $everything.
FALLBACK_TYPES = (
    "Condition",
    "MedicationRequest",
    "MedicationStatement",
    "AllergyIntolerance",
    "Observation",
    "Encounter",
    "Procedure",
    "Immunization",
    "DiagnosticReport",
    "DocumentReference",
    "Media",
)
# What condensation reads. $everything is asked for these (`_type`), and only these are validated: a
# synthea record is a fifth Claims, EOBs, Provenance and directory resources that no note cites.
RECORD_TYPES = frozenset({"Patient", "Medication", *FALLBACK_TYPES})
# Answers that say the server does not do $everything (whatever its CapabilityStatement claimed).
UNSUPPORTED_STATUSES = frozenset({400, 403, 404, 405, 501})
BUNDLE_TYPES = frozenset({"searchset", "collection", "transaction", "batch", "document", "history"})


@dataclass
class PatientRecord:
    """The resources of one patient that a note can use (RECORD_TYPES) and that validated, by "Type/id"."""

    patient_id: str
    resources: dict[str, Resource]
    rejected: dict[str, str] = field(default_factory=dict)
    source: str = "bundle"

    @property
    def patient(self) -> Patient | None:
        """The Patient resource, when present."""
        found = self.resources.get(f"Patient/{self.patient_id}")
        return found if isinstance(found, Patient) else None

    def digest(self) -> str:
        """A hash of the record's clinical resource versions (our own drafts and Devices excluded)."""
        h = hashlib.sha256()
        for ref in sorted(self.resources):
            if ref.startswith("Device/") or is_ai_draft(self.resources[ref]):
                continue
            meta = self.resources[ref].meta
            stamp = f"{meta.versionId}|{meta.lastUpdated}" if meta else ""
            h.update(f"{ref}|{stamp}\n".encode())
        return h.hexdigest()


async def fetch_record(client: FhirClient, patient_id: str) -> PatientRecord:
    """Fetch one patient's record the way the server declares: $everything (paged), else per-type searches."""
    raw, source = await fetch_resources(client, patient_id)
    return record_from_resources(patient_id, raw, source)


def record_from_resources(patient_id: str, raw: Iterable[dict[str, Any]], source: str) -> PatientRecord:
    """A record of fetched resources (JSON), validated and keyed by `Type/id`."""
    parsed = parse_all(list(raw), types=RECORD_TYPES)
    return PatientRecord(patient_id, parsed.resources, parsed.rejected, source)


async def fetch_resources(client: FhirClient, patient_id: str) -> tuple[list[dict[str, Any]], str]:
    """One patient's whole record as JSON, and how it was fetched (`$everything` or `search`); a later
    pull asks only for what changed (fhir_adapters/incremental.py)."""
    fhir_id(patient_id, "patient id")
    declared = await capabilities(client)
    raw: list[dict[str, Any]] | None = None
    source = "search"
    if declared.fetch_plan() == "$everything":
        try:
            raw = await _everything(client, patient_id)
            source = "$everything"
        except FhirUnavailable:
            raise
        except FhirError as exc:
            if exc.status not in UNSUPPORTED_STATUSES:
                raise
            # Declared (or not declared either way) but refused: searches reach the same resources.
            log.info("$everything refused (%s); falling back to searches", exc.status)
    if raw is None:
        raw = await search_resources(client, declared, patient_id, None)
    if not any(r.get("resourceType") == "Patient" and r.get("id") == patient_id for r in raw):
        raw.append(await read_patient(client, patient_id))
    return raw, source


async def _everything(client: FhirClient, patient_id: str) -> list[dict[str, Any]]:
    params = {"_type": ",".join(sorted(RECORD_TYPES))}
    raw: list[dict[str, Any]] = []
    async for bundle in client.pages(f"Patient/{patient_id}/$everything", params):
        raw.extend(_entries(bundle))
    return raw


async def read_patient(client: FhirClient, patient_id: str) -> dict[str, Any]:
    """The Patient resource; FhirNotFound naming it when the server has none."""
    try:
        return await client.read("Patient", patient_id)
    except FhirNotFound as exc:
        raise FhirNotFound(f"Patient/{patient_id} not found", status=exc.status, outcome=exc.outcome) from exc


async def search_resources(
    client: FhirClient, declared: Capabilities, patient_id: str, since: str | None
) -> list[dict[str, Any]]:
    """The Patient and its resources of each searchable type (those changed since `since`, where declared)."""
    raw = [await read_patient(client, patient_id)]
    for resource_type, query in patient_searches(declared, patient_id):
        params = {**query, "_count": "200"}
        if since and declared.supports_param(resource_type, "_lastUpdated"):
            params["_lastUpdated"] = f"ge{since}"
        try:
            found = [r async for r in client.search(resource_type, params)]
        except FhirNotFound:
            continue  # the server does not know this type
        # Some servers ignore a search parameter they do not support and answer every resource of the type.
        raw.extend(r for r in found if _belongs_to(r, patient_id))
    return raw


def patient_searches(declared: Capabilities, patient_id: str) -> Iterator[tuple[str, dict[str, str]]]:
    """Each record type the server can search by patient, with its patient parameter."""
    for resource_type in FALLBACK_TYPES:
        param = declared.patient_param(resource_type)
        if param is not None:
            # Type-qualified: servers that index references by their full value find nothing for `123`.
            yield resource_type, {param: f"Patient/{patient_id}"}


def _belongs_to(resource: dict[str, Any], patient_id: str) -> bool:
    wanted = f"Patient/{patient_id}"
    for key in ("subject", "patient"):
        ref = (resource.get(key) or {}).get("reference")
        if isinstance(ref, str) and normalize_reference(ref, {}) == wanted:
            return True
    return False


def _entries(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry", []) if isinstance(e.get("resource"), dict)]


def record_from_bundle(path: Path, patient_id: str | None = None) -> PatientRecord:
    """Read a Bundle file (searchset, collection, transaction, $everything), resolving urn:uuid refs."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        bundle = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not JSON (line {exc.lineno}, column {exc.colno})") from exc
    return record_from_bundle_json(bundle, patient_id, label=str(path))


def record_from_bundle_json(
    bundle: Any, patient_id: str | None = None, *, label: str = "bundle"
) -> PatientRecord:
    """Build a record from a parsed Bundle."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InputError(f"{label} is not a FHIR Bundle")
    if bundle.get("type") not in BUNDLE_TYPES:
        raise InputError(f"{label}: unsupported Bundle type {bundle.get('type')!r}")
    raw: list[dict[str, Any]] = []
    aliases: dict[str, str] = {}
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            continue
        full_url = entry.get("fullUrl")
        if not resource.get("id"):
            tail = str(full_url).rsplit(":", 1)[-1] if full_url else uuid.uuid4().hex
            resource["id"] = tail[-64:]
        if full_url:
            aliases[str(full_url)] = ref_of(resource)
        raw.append(resource)
    patients = [r["id"] for r in raw if r["resourceType"] == "Patient"]
    if patient_id is None:
        if len(patients) != 1:
            raise InputError(f"{label} holds {len(patients)} Patient resources; name one with --patient")
        patient_id = patients[0]
    elif patient_id not in patients:
        raise InputError(f"{label} holds no Patient/{patient_id}")
    parsed = parse_all(raw, aliases, types=RECORD_TYPES)
    return PatientRecord(patient_id, parsed.resources, parsed.rejected, "bundle")
