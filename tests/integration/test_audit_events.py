"""FHIR AuditEvents read back from both FHIR servers: after a job (and its retry), after each decision."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from fhir_adapters.audit_events import decision_event_id, run_event_id
from fhir_adapters.client import FhirClient
from fhir_adapters.lifecycle import read_versioned
from services.core.db import session_scope
from services.core.errors import FhirConflict, FhirNotFound
from services.core.settings import get_settings
from services.jobs.service import create_job, get_job
from tests.support.drafts import add_draft
from workers.approvals import decide_on_server, replace_on_server, track
from workers.clients import llm_client
from workers.jobrunner import run_job
from workers.pipeline import Pipeline

pytestmark = pytest.mark.integration
Server = tuple[str, str, list[str]]
CLINICIAN = {"reference": "Practitioner/dr-audit"}
RESULTS = [{"title": "Results", "statements": [{"text": "A1c 8.1 %"}]}]


async def events_about(client: FhirClient, ref: str) -> list[dict[str, Any]]:
    """Every AuditEvent whose entity is `ref`."""
    return [e async for e in client.search("AuditEvent", {"entity": ref})]


def whats(event: dict[str, Any]) -> list[str]:
    return [e["what"]["reference"] for e in event["entity"] if "reference" in e["what"]]


async def test_a_job_writes_its_drafts_and_one_audit_event_in_one_transaction(
    any_fhir: Server, postgres_db: str, llm_server: str
) -> None:
    name, url, patients = any_fhir
    patient, job_id = patients[1], str(uuid.uuid4())
    settings = get_settings()
    async with FhirClient(url) as fhir, llm_client(settings) as llm:
        pipeline = Pipeline(settings, llm=llm, fhir=fhir)
        first = await pipeline.summarize(patient, ["triage"], job_id=job_id)
        again = await pipeline.summarize(patient, ["triage"], job_id=job_id)  # a retry of the same job
        draft_ref = first.results[0].draft_ref
        assert draft_ref is not None and again.results[0].draft_ref == draft_ref
        event = await fhir.read("AuditEvent", run_event_id(job_id))
        device = await fhir.read(*event["agent"][0]["who"]["reference"].split("/"))
        doc = (await read_versioned(fhir, draft_ref)).resource
        about_draft = await events_about(fhir, draft_ref)
        about_patient = [e async for e in fhir.search("AuditEvent", {"entity": f"Patient/{patient}"})]
    assert event["outcome"] in ("0", "4") and event["action"] == "C", name
    assert f"Patient/{patient}" in whats(event) and draft_ref in whats(event)
    # The model agent is the Device the draft names as author, resolved by the server from the transaction.
    assert (
        device["resourceType"] == "Device"
        and doc["author"][0]["reference"] == event["agent"][0]["who"]["reference"]
    )
    assert event["agent"][0]["role"][0]["coding"][0]["code"] == "Artificial-Intelligence"
    job = [e["what"]["identifier"]["value"] for e in event["entity"] if e["what"].get("identifier")]
    assert job[0] == job_id
    assert [e["id"] for e in about_draft] == [run_event_id(job_id)]  # the retry duplicated nothing
    assert run_event_id(job_id) in {e["id"] for e in about_patient}


async def test_each_decision_has_one_audit_event_with_the_clinician_and_the_draft(
    any_fhir: Server, postgres_db: str
) -> None:
    name, url, patients = any_fhir
    patient = patients[2]
    async with FhirClient(url) as client:
        approved, rejected, edited, stale, in_ehr = [
            await add_draft(client, patient, kind, "- A1c 8.1 %\n", RESULTS)
            for kind in ("progress", "soap", "triage", "progress", "soap")
        ]
        for ref, approve in ((approved, True), (rejected, False)):
            reviewed = (await read_versioned(client, ref)).etag
            await decide_on_server(
                client,
                ref,
                approved=approve,
                if_match=reviewed,
                clinician=CLINICIAN,
                label="dr",
                reason="wrong",
                override_reason="checked against the chart",
            )
        original = await read_versioned(client, edited)
        await replace_on_server(
            client,
            edited,
            if_match=original.etag,
            clinician="Practitioner/dr-audit",
            edits={"sections[0].statements[0]": "A1c 8.1 %, up."},
            removed=set(),
            override_reason=None,
            patient=patient,
        )
        # A version nobody reviewed: 412, and neither the decision nor its AuditEvent is written.
        old = (await read_versioned(client, stale)).etag
        moved = (await read_versioned(client, stale)).resource
        await client.request("PUT", stale, json={**moved, "description": "edited in the EHR"})
        with pytest.raises(FhirConflict):
            await decide_on_server(
                client, stale, approved=True, if_match=old, clinician=CLINICIAN, label="dr"
            )
        # A clinician approves in the EHR itself: we learn it by notification (track) and audit it once.
        doc = (await read_versioned(client, in_ehr)).resource
        final = {**doc, "docStatus": "final", "authenticator": {"reference": "Practitioner/dr-ehr"}}
        await client.request("PUT", in_ehr, json=final)
        await track(client, in_ehr)
        await track(client, in_ehr)  # the same notification twice
        events = {ref: await events_about(client, ref) for ref in (approved, rejected, edited, stale, in_ehr)}
        with pytest.raises(FhirNotFound):
            await client.read("AuditEvent", decision_event_id(stale))
    kinds = {
        ref: [c["code"] for e in found for c in e["subtype"] if c["system"].startswith("urn:")]
        for ref, found in events.items()
    }
    assert kinds == {
        approved: ["draft-approve"],
        rejected: ["draft-reject"],
        edited: ["draft-replace"],
        stale: [],
        in_ehr: ["draft-approve"],
    }, name
    for ref in (approved, rejected, edited):
        (event,) = events[ref]
        assert event["agent"][0]["who"] == CLINICIAN and event["agent"][0]["requestor"] is True
        assert f"Patient/{patient}" in whats(event)
    (replaced,) = events[edited]
    assert len(whats(replaced)) == 3 and whats(replaced)[2].startswith("DocumentReference/")  # the new note
    (heard,) = events[in_ehr]
    assert heard["agent"][0]["who"] == {"reference": "Practitioner/dr-ehr"}
    assert "wrong" not in str(events[rejected])  # the rejection reason is the clinician's text: not audited


def test_a_failed_job_has_its_audit_event_with_the_reason(
    fhir_server: str, postgres_db: str, redis_broker: str
) -> None:
    get_settings.cache_clear()
    with session_scope() as session:
        job, _ = create_job(session=session, patient_id="no-such-patient", kinds=["progress"])
    assert run_job(job.id).status.value == "failed"
    with session_scope() as session:
        job = get_job(session=session, job_id=job.id)
    event = httpx.get(f"{fhir_server}/AuditEvent/{run_event_id(job.id)}", timeout=30).json()
    assert event["outcome"] == "8" and job.reason and job.reason in event["outcomeDesc"]
    assert event["agent"][0]["who"]["identifier"]["system"] == "urn:ehr-summarizer:model"
    assert {"reference": "Patient/no-such-patient"} in [e["what"] for e in event["entity"]]
    traced = [e["what"]["identifier"]["value"] for e in event["entity"] if "trace" in str(e.get("type"))]
    assert traced == [job.trace_id]
