"""FHIR R4 AuditEvents of what the service did: one per AI run (a job), one per clinician decision.

The HL7 AI Transparency on FHIR guide labels AI output (AIAST) and records its making in a Provenance with
the model as a Device agent; these events are the audit side of the same acts, for the hospital's audit
log (FHIR R4 AuditEvent, IHE BALP's patterns): who (the model Device and our service; the clinician),
did what (created drafts; approved, rejected or replaced one), to what (patient, encounter, drafts, the
job and its OpenTelemetry trace id), with which outcome. The model agent carries the guide's
`AIdeviceTypeCS#Artificial-Intelligence` role as its AI Provenance profile does.

Ids derive from what an event records (the job; the draft, whose decision is final) and events are written
with PUT, so a retried job or a decision heard twice (the API, then the FHIR server's notification) updates
the one event instead of adding another. No PHI beyond references: no names, note text or rejection reason.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from fhir_adapters.client import FhirClient
from fhir_adapters.labels import DEVICE_IDENTIFIER_SYSTEM
from services.core.errors import FhirNotFound

EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
INTERACTION = "http://hl7.org/fhir/restful-interaction"
SUBTYPE = "urn:ehr-summarizer:audit-event"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
LIFECYCLE = "http://terminology.hl7.org/CodeSystem/dicom-audit-lifecycle"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
PURPOSE = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
AI_DEVICE_TYPE = "http://hl7.org/fhir/uv/aitransparency/CodeSystem/AIdeviceTypeCS"
SERVICE_SYSTEM = "urn:ehr-summarizer:service"
JOB_SYSTEM = "urn:ehr-summarizer:job"
TRACE_SYSTEM = "https://www.w3.org/TR/trace-context/#trace-id"
OUR_ENTITY_TYPE = "urn:ehr-summarizer:audit-entity"
SERVICE = {"identifier": {"system": SERVICE_SYSTEM, "value": "ehr-summarizer"}, "display": "ehr-summarizer"}
ID_MAX = 64
# AuditEvent.outcome (R4): 0 success, 4 minor failure, 8 serious failure.
Outcome = Literal["0", "4", "8"]
DecisionAction = Literal["approve", "reject", "replace"]


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    return {"system": system, "code": code, **({"display": display} if display else {})}


def _event_id(prefix: str, key: str) -> str:
    """A FHIR id for an event about `key` (a hash of it when the plain id would pass 64 characters)."""
    plain = f"ehrsum-{prefix}-{key}".replace("/", "-")
    if len(plain) <= ID_MAX:
        return plain
    return f"ehrsum-{prefix}-{hashlib.sha256(key.encode()).hexdigest()[:40]}"


def run_event_id(job_id: str) -> str:
    """The id of a job's AuditEvent."""
    return _event_id("run", job_id)


def decision_event_id(draft_ref: str) -> str:
    """The id of the AuditEvent of the decision on a draft (one decision per draft: decisions are final)."""
    return _event_id("decision", draft_ref.rsplit("/", 1)[-1])


def _entity(what: dict[str, Any], type_code: str, role: str, lifecycle: str | None = None) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "what": what,
        "type": _coding(ENTITY_TYPE, type_code),
        "role": _coding(OBJECT_ROLE, role),
    }
    if lifecycle:
        entity["lifecycle"] = _coding(LIFECYCLE, lifecycle)
    return entity


def _job_entity(job_id: str, trace_id: str | None) -> list[dict[str, Any]]:
    entities = [_entity({"identifier": {"system": JOB_SYSTEM, "value": job_id}}, "2", "20")]  # object, job
    if trace_id:
        trace = {"what": {"identifier": {"system": TRACE_SYSTEM, "value": trace_id}}}
        entities.append({**trace, "type": _coding(OUR_ENTITY_TYPE, "trace-id", "OpenTelemetry trace")})
    return entities


def _source() -> dict[str, Any]:
    return {
        "site": "ehr-summarizer",
        "observer": SERVICE,
        "type": [_coding(SOURCE_TYPE, "4", "Application Server")],
    }


@dataclass(frozen=True)
class RunRecord:
    """What one AI run did: the job, its patient and encounter, the drafts, the model, the outcome."""

    job_id: str
    patient_id: str
    device: dict[str, Any]
    outcome: Outcome
    started: datetime
    drafts: list[str] = field(default_factory=list)
    encounter_ref: str | None = None
    kinds: list[str] = field(default_factory=list)
    detail: str | None = None
    trace_id: str | None = None
    ended: datetime = field(default_factory=lambda: datetime.now(UTC))


def device_by_identifier(identifier: str, name: str) -> dict[str, Any]:
    """The model Device as a logical reference (outside a transaction that writes it)."""
    return {"identifier": {"system": DEVICE_IDENTIFIER_SYSTEM, "value": identifier}, "display": name}


def run_event(run: RunRecord) -> dict[str, Any]:
    """The AuditEvent of one AI run: the model created drafts (or failed to) for a patient."""
    entities = [_entity({"reference": f"Patient/{run.patient_id}"}, "1", "1")]  # person, patient
    if run.encounter_ref:
        entities.append(_entity({"reference": run.encounter_ref}, "2", "4"))  # object, domain resource
    entities += [_entity({"reference": ref}, "2", "3", "1") for ref in run.drafts]  # report, originated
    entities += _job_entity(run.job_id, run.trace_id)
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": run_event_id(run.job_id),
        "type": _coding(EVENT_TYPE, "rest", "RESTful Operation"),
        "subtype": [
            _coding(INTERACTION, "create", "create"),
            _coding(SUBTYPE, "ai-draft-generation", "AI draft notes generated"),
        ],
        "action": "C",
        "period": {"start": _instant(run.started), "end": _instant(run.ended)},
        "recorded": _instant(datetime.now(UTC)),
        "outcome": run.outcome,
        "purposeOfEvent": [{"coding": [_coding(PURPOSE, "TREAT", "treatment")]}],
        "agent": [
            {
                "type": {"coding": [_coding(PARTICIPANT, "author", "Author")]},
                "role": [{"coding": [_coding(AI_DEVICE_TYPE, "Artificial-Intelligence")]}],
                "who": run.device,
                "requestor": False,
            },
            {
                "type": {"coding": [_coding(PARTICIPANT, "performer", "Performer")]},
                "who": SERVICE,
                "requestor": True,
            },
        ],
        "source": _source(),
        "entity": entities,
    }
    description = ", ".join(run.kinds)
    detail = "; ".join(p for p in (f"kinds: {description}" if description else "", run.detail or "") if p)
    if detail:
        event["outcomeDesc"] = detail[:1000]
    return event


DECISIONS: dict[DecisionAction, tuple[str, str, str, str]] = {
    # decision: (restful interaction, AuditEvent.action, participant type, draft lifecycle)
    "approve": ("update", "U", "verifier", "4"),  # verification
    "reject": ("update", "U", "performer", "14"),  # logical deletion (entered-in-error)
    "replace": ("create", "C", "verifier", "3"),  # amended by a new document that replaces it
}


@dataclass(frozen=True)
class DecisionRecord:
    """A clinician's decision on one of our drafts."""

    draft_ref: str
    decision: DecisionAction
    clinician: dict[str, Any] | None
    patient_id: str | None = None
    replacement: str | None = None
    version: str | None = None
    trace_id: str | None = None
    when: datetime = field(default_factory=lambda: datetime.now(UTC))


def decision_event(record: DecisionRecord) -> dict[str, Any]:
    """The AuditEvent of a decision: the clinician (requestor) decided on the draft (entity)."""
    interaction, action, participant, lifecycle = DECISIONS[record.decision]
    draft = {"reference": record.draft_ref}
    entities = [_entity(draft, "2", "3", lifecycle)]
    if record.version:
        entities[0]["detail"] = [{"type": "version reviewed", "valueString": record.version}]
    if record.replacement:
        entities.append(_entity({"reference": record.replacement}, "2", "3", "1"))
    if record.patient_id:
        entities.insert(0, _entity({"reference": f"Patient/{record.patient_id}"}, "1", "1"))
    if record.trace_id:
        entities += _job_entity("", record.trace_id)[1:]
    clinician: dict[str, Any] = {
        "type": {"coding": [_coding(PARTICIPANT, participant)]},
        "requestor": True,
    }
    if record.clinician:
        clinician["who"] = record.clinician
    else:
        clinician["name"] = "not named by the FHIR server (decided in the EHR)"
    return {
        "resourceType": "AuditEvent",
        "id": decision_event_id(record.draft_ref),
        "type": _coding(EVENT_TYPE, "rest", "RESTful Operation"),
        "subtype": [
            _coding(INTERACTION, interaction, interaction),
            _coding(SUBTYPE, f"draft-{record.decision}"),
        ],
        "action": action,
        "period": {"start": _instant(record.when), "end": _instant(record.when)},
        "recorded": _instant(datetime.now(UTC)),
        "outcome": "0",
        "purposeOfEvent": [{"coding": [_coding(PURPOSE, "TREAT", "treatment")]}],
        "agent": [
            clinician,
            {"type": {"coding": [_coding(PARTICIPANT, "custodian")]}, "who": SERVICE, "requestor": False},
        ],
        "source": _source(),
        "entity": entities,
    }


def _instant(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds")


def put_entry(event: dict[str, Any]) -> dict[str, Any]:
    """A transaction entry that writes the event idempotently (PUT on its derived id)."""
    return {"resource": event, "request": {"method": "PUT", "url": f"AuditEvent/{event['id']}"}}


async def write_event(client: FhirClient, event: dict[str, Any]) -> None:
    """Write one event on its own (PUT: a repeat updates it)."""
    await client.request("PUT", f"AuditEvent/{event['id']}", json=event)


async def ensure_event(client: FhirClient, event: dict[str, Any]) -> bool:
    """Write the event unless one with its id exists (written in the transaction it records); True when
    this call wrote it."""
    try:
        await client.request("GET", f"AuditEvent/{event['id']}")
        return False
    except FhirNotFound:
        await write_event(client, event)
        return True
