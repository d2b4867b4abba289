"""Write a draft back: one transaction Bundle = model Device + DocumentReference draft + Provenance."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fhir_adapters.client import FhirClient
from fhir_adapters.labels import AIAST_CODE, AIAST_SYSTEM, DEVICE_IDENTIFIER_SYSTEM, DRAFT_IDENTIFIER_SYSTEM
from fhir_adapters.resources import normalize_reference
from services.core.errors import FhirError

LOINC = "http://loinc.org"
CATEGORY_SYSTEM = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"
AIAST = {"system": AIAST_SYSTEM, "code": AIAST_CODE, "display": "artificial intelligence asserted"}


@dataclass(frozen=True)
class ModelDevice:
    """The model that wrote a draft, as a FHIR Device."""

    name: str
    version: str
    weights_digest: str | None = None

    @property
    def identifier(self) -> str:
        """Stable identifier value of this model build (no `|`: servers split a token search on each one)."""
        return f"{self.version}@{self.weights_digest or 'unknown'}"


@dataclass
class DraftDocument:
    """Everything needed to write one draft; built by the workers from a verified note."""

    patient_id: str
    kind: str
    loinc_code: str
    loinc_display: str
    title: str
    markdown: str
    structured: dict[str, Any]
    cited_refs: list[str]
    identifier: str
    device: ModelDevice
    encounter_ref: str | None = None
    period_start: str | None = None
    period_end: str | None = None
    created: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class WriteResult:
    """Where the draft lives on the server, and whether this call created it."""

    draft_ref: str
    created: bool


def draft_identifier(patient_id: str, kind: str, record_digest: str) -> str:
    """Stable identifier value per (patient, kind, source record version)."""
    digest = hashlib.sha256(f"{patient_id}|{kind}|{record_digest}".encode()).hexdigest()[:32]
    return f"{kind}-{digest}"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def build_transaction(draft: DraftDocument) -> dict[str, Any]:
    """The transaction Bundle that writes the draft idempotently."""
    device_url, doc_url, prov_url = (f"urn:uuid:{uuid.uuid4()}" for _ in range(3))
    created = draft.created.isoformat(timespec="seconds")
    device_identifier = f"{DEVICE_IDENTIFIER_SYSTEM}|{draft.device.identifier}"
    device: dict[str, Any] = {
        "resourceType": "Device",
        "identifier": [{"system": DEVICE_IDENTIFIER_SYSTEM, "value": draft.device.identifier}],
        "status": "active",
        "deviceName": [{"name": draft.device.name, "type": "model-name"}],
        "version": [{"value": draft.device.version}],
        "type": {"text": "AI language model"},
    }
    if draft.device.weights_digest:
        device["version"].append({"type": {"text": "weights-digest"}, "value": draft.device.weights_digest})
    context: dict[str, Any] = {}
    if draft.encounter_ref:
        context["encounter"] = [{"reference": draft.encounter_ref}]
    if draft.period_start or draft.period_end:
        context["period"] = {k: v for k, v in (("start", draft.period_start), ("end", draft.period_end)) if v}
    document: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "meta": {"security": [AIAST]},
        "identifier": [{"system": DRAFT_IDENTIFIER_SYSTEM, "value": draft.identifier}],
        "status": "current",
        "docStatus": "preliminary",
        "type": {"coding": [{"system": LOINC, "code": draft.loinc_code, "display": draft.loinc_display}]},
        "category": [
            {"coding": [{"system": CATEGORY_SYSTEM, "code": "clinical-note", "display": "Clinical Note"}]}
        ],
        "subject": {"reference": f"Patient/{draft.patient_id}"},
        "date": created,
        "author": [{"reference": device_url, "display": draft.device.name}],
        "description": draft.title,
        "content": [
            {
                "attachment": {
                    "contentType": "text/markdown; charset=utf-8",
                    "data": _b64(draft.markdown),
                    "title": draft.title,
                    "creation": created,
                }
            },
            {
                "attachment": {
                    "contentType": "application/json",
                    "data": _b64(json.dumps(draft.structured)),
                    "title": "Structured draft with citations",
                    "creation": created,
                }
            },
        ],
    }
    if context:
        document["context"] = context
    provenance: dict[str, Any] = {
        "resourceType": "Provenance",
        "meta": {"security": [AIAST]},
        "target": [{"reference": doc_url}],
        "recorded": created,
        "activity": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": "CREATE"}]
        },
        "agent": [
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                            "code": "author",
                        }
                    ]
                },
                "who": {"reference": device_url, "display": draft.device.name},
            }
        ],
        "entity": [{"role": "derivation", "what": {"reference": ref}} for ref in draft.cited_refs],
    }
    # A client-chosen Provenance id makes the PUT idempotent: a retried write updates, never duplicates.
    provenance_id = f"ehrsum-{draft.identifier}"[:64]
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": device_url,
                "resource": device,
                "request": {
                    "method": "POST",
                    "url": "Device",
                    "ifNoneExist": f"identifier={device_identifier}",
                },
            },
            {
                "fullUrl": doc_url,
                "resource": document,
                "request": {
                    "method": "POST",
                    "url": "DocumentReference",
                    "ifNoneExist": f"identifier={DRAFT_IDENTIFIER_SYSTEM}|{draft.identifier}",
                },
            },
            {
                "fullUrl": prov_url,
                "resource": {**provenance, "id": provenance_id},
                "request": {"method": "PUT", "url": f"Provenance/{provenance_id}"},
            },
        ],
    }


async def find_draft(client: FhirClient, identifier: str) -> str | None:
    """The reference of an existing draft with this identifier, if any."""
    async for resource in client.search(
        "DocumentReference", {"identifier": f"{DRAFT_IDENTIFIER_SYSTEM}|{identifier}"}
    ):
        return f"DocumentReference/{resource['id']}"
    return None


async def write_draft(client: FhirClient, draft: DraftDocument) -> WriteResult:
    """Write the draft and its Provenance in one transaction; a retry finds the first draft."""
    response = await client.transaction(build_transaction(draft))
    entries = response.get("entry", [])
    if len(entries) < 2:
        raise FhirError("transaction-response without the expected entries")
    answer = entries[1].get("response", {})
    location = str(answer.get("location", ""))
    if not location:
        raise FhirError("transaction-response gave no location for the draft")
    ref = normalize_reference(location, {})
    if location.startswith("http") or "/_history/" in location:
        parts = location.split("/_history/")[0].rstrip("/").split("/")
        ref = f"{parts[-2]}/{parts[-1]}"
    return WriteResult(draft_ref=ref, created=str(answer.get("status", "")).startswith("201"))
