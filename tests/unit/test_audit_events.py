"""AuditEvents built from what they record: ids, agents, entities, and the write-back transaction."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from fhir_adapters.audit_events import (
    AI_DEVICE_TYPE,
    DecisionRecord,
    RunRecord,
    decision_event,
    decision_event_id,
    run_event_id,
)
from fhir_adapters.writeback import DraftDocument, ModelDevice, build_transaction, draft_identifier

TRACE = "0af7651916cd43dd8448eb211c80319c"


def document(kind: str) -> DraftDocument:
    return DraftDocument(
        patient_id="p1",
        kind=kind,
        loinc_code="11506-3",
        loinc_display="Progress note",
        title="t",
        markdown="m",
        structured={},
        cited_refs=["Condition/c1"],
        identifier=draft_identifier("p1", kind, "abc"),
        device=ModelDevice("MedGemma 27B", "google/medgemma-27b-it"),
    )


def test_one_transaction_writes_the_drafts_and_the_runs_audit_event() -> None:
    run = RunRecord(
        job_id="job-1",
        patient_id="p1",
        device={"display": "placeholder"},
        outcome="4",
        started=datetime(2026, 12, 1, tzinfo=UTC),
        drafts=["DocumentReference/earlier"],
        encounter_ref="Encounter/e1",
        kinds=["progress", "soap", "triage"],
        detail="model synthesis unavailable: triage",
        trace_id=TRACE,
    )
    bundle = build_transaction([document("soap"), document("triage")], run)
    device, soap, _, triage, _, audit = bundle["entry"]
    assert audit["request"] == {"method": "PUT", "url": f"AuditEvent/{run_event_id('job-1')}"}
    event = audit["resource"]
    assert event["id"] == "ehrsum-run-job-1" and event["outcome"] == "4" and event["action"] == "C"
    model, service = event["agent"]
    # The model is the transaction's Device (a urn the server resolves), with the AI Transparency role.
    assert model["who"] == {"reference": device["fullUrl"], "display": "MedGemma 27B"}
    assert model["role"][0]["coding"][0]["system"] == AI_DEVICE_TYPE and model["requestor"] is False
    assert service["requestor"] is True
    what = [e["what"] for e in event["entity"]]
    assert what[:2] == [{"reference": "Patient/p1"}, {"reference": "Encounter/e1"}]
    drafts = [w["reference"] for w in what[2:5]]
    assert drafts == ["DocumentReference/earlier", soap["fullUrl"], triage["fullUrl"]]
    assert {"identifier": {"system": "urn:ehr-summarizer:job", "value": "job-1"}} in what
    assert any(w.get("identifier", {}).get("value") == TRACE for w in what)
    assert "triage" in event["outcomeDesc"]


def test_decision_events_name_the_clinician_and_the_draft_and_no_free_text() -> None:
    approved = decision_event(
        DecisionRecord(
            "DocumentReference/d1",
            "approve",
            {"reference": "Practitioner/dr"},
            patient_id="p1",
            version='W/"2"',
            trace_id=TRACE,
        )
    )
    assert approved["id"] == decision_event_id("DocumentReference/d1") == "ehrsum-decision-d1"
    clinician = approved["agent"][0]
    assert clinician["who"] == {"reference": "Practitioner/dr"} and clinician["requestor"] is True
    assert [e["what"].get("reference") for e in approved["entity"][:2]] == [
        "Patient/p1",
        "DocumentReference/d1",
    ]
    replaced = decision_event(
        DecisionRecord("DocumentReference/d2", "replace", None, replacement="DocumentReference/r2")
    )
    assert replaced["action"] == "C" and "who" not in replaced["agent"][0]
    assert [e["what"]["reference"] for e in replaced["entity"]] == [
        "DocumentReference/d2",
        "DocumentReference/r2",
    ]
    # Long server ids still give a valid FHIR id (64 characters at most), the same each time.
    long_ref = "DocumentReference/" + "x" * 80
    assert len(decision_event_id(long_ref)) <= 64 and decision_event_id(long_ref) == decision_event_id(
        long_ref
    )
    assert "reason" not in json.dumps(approved)


def test_the_review_app_writes_the_decisions_audit_event_only_when_the_ehr_granted_it() -> None:
    from services.review.app import may_write_audit_events

    assert may_write_audit_events("openid patient/*.rs patient/AuditEvent.cu")
    assert may_write_audit_events("patient/*.write") and may_write_audit_events("user/AuditEvent.cruds")
    assert not may_write_audit_events("openid fhirUser patient/*.rs patient/DocumentReference.cu")
    assert not may_write_audit_events("patient/AuditEvent.c") and not may_write_audit_events(
        "system/AuditEvent.cu"
    )
