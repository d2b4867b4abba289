"""Write drafts back: one transaction Bundle = model Device + DocumentReference drafts + Provenances (+ the
run's AuditEvent)."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from fhir_adapters.audit_events import RunRecord, put_entry, run_event
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


def _device(device: ModelDevice) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Device",
        "identifier": [{"system": DEVICE_IDENTIFIER_SYSTEM, "value": device.identifier}],
        "status": "active",
        "deviceName": [{"name": device.name, "type": "model-name"}],
        "version": [{"value": device.version}],
        "type": {"text": "AI language model"},
    }
    if device.weights_digest:
        resource["version"].append({"type": {"text": "weights-digest"}, "value": device.weights_digest})
    return resource


def _document(draft: DraftDocument, device_url: str) -> dict[str, Any]:
    created = draft.created.isoformat(timespec="seconds")
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
    return document


def _provenance(draft: DraftDocument, doc_url: str, device_url: str) -> dict[str, Any]:
    # A client-chosen Provenance id makes the PUT idempotent: a retried write updates, never duplicates.
    return {
        "resourceType": "Provenance",
        "id": f"ehrsum-{draft.identifier}"[:64],
        "meta": {"security": [AIAST]},
        "target": [{"reference": doc_url}],
        "recorded": draft.created.isoformat(timespec="seconds"),
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


def build_transaction(drafts: Sequence[DraftDocument], run: RunRecord | None = None) -> dict[str, Any]:
    """The transaction Bundle that writes drafts idempotently: the model Device (conditional create), each
    DocumentReference (conditional create on its identifier) with its Provenance (PUT on a derived id),
    and, given the run, its AuditEvent naming every draft (PUT on the job's event id)."""
    if not drafts:
        raise ValueError("a write-back transaction needs at least one draft")
    device = drafts[0].device
    device_url = f"urn:uuid:{uuid.uuid4()}"
    device_identifier = f"{DEVICE_IDENTIFIER_SYSTEM}|{device.identifier}"
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": device_url,
            "resource": _device(device),
            "request": {"method": "POST", "url": "Device", "ifNoneExist": f"identifier={device_identifier}"},
        }
    ]
    doc_urls = []
    for draft in drafts:
        doc_url, prov_url = (f"urn:uuid:{uuid.uuid4()}" for _ in range(2))
        doc_urls.append(doc_url)
        provenance = _provenance(draft, doc_url, device_url)
        entries += [
            {
                "fullUrl": doc_url,
                "resource": _document(draft, device_url),
                "request": {
                    "method": "POST",
                    "url": "DocumentReference",
                    "ifNoneExist": f"identifier={DRAFT_IDENTIFIER_SYSTEM}|{draft.identifier}",
                },
            },
            {
                "fullUrl": prov_url,
                "resource": provenance,
                "request": {"method": "PUT", "url": f"Provenance/{provenance['id']}"},
            },
        ]
    if run is not None:
        # The server resolves the urn:uuid references to the ids it assigns (or finds, on a retry).
        recorded = replace(
            run, drafts=[*run.drafts, *doc_urls], device={"reference": device_url, "display": device.name}
        )
        entries.append(put_entry(run_event(recorded)))
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


async def find_draft(client: FhirClient, identifier: str) -> dict[str, Any] | None:
    """An existing draft DocumentReference with this identifier, if any."""
    async for resource in client.search(
        "DocumentReference", {"identifier": f"{DRAFT_IDENTIFIER_SYSTEM}|{identifier}"}
    ):
        return resource
    return None


def _written(entry: dict[str, Any]) -> WriteResult:
    answer = entry.get("response", {})
    location = str(answer.get("location", ""))
    if not location:
        raise FhirError("transaction-response gave no location for the draft")
    ref = normalize_reference(location, {})
    if location.startswith("http") or "/_history/" in location:
        parts = location.split("/_history/")[0].rstrip("/").split("/")
        ref = f"{parts[-2]}/{parts[-1]}"
    return WriteResult(draft_ref=ref, created=str(answer.get("status", "")).startswith("201"))


async def write_drafts(
    client: FhirClient, drafts: Sequence[DraftDocument], run: RunRecord | None = None
) -> list[WriteResult]:
    """Write drafts, their Provenances and (given) the run's AuditEvent in one transaction; a retry finds
    the first drafts."""
    response = await client.transaction(build_transaction(drafts, run))
    entries = response.get("entry", [])
    if len(entries) < 1 + 2 * len(drafts):
        raise FhirError("transaction-response without the expected entries")
    return [_written(entries[1 + 2 * i]) for i in range(len(drafts))]


async def write_draft(client: FhirClient, draft: DraftDocument) -> WriteResult:
    """Write one draft and its Provenance in one transaction; a retry finds the first draft."""
    return (await write_drafts(client, [draft]))[0]
