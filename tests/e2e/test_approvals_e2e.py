"""Approvals back: a clinician's decision on the FHIR server (or through our API) reaches the drafts."""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import Any

import httpx
import pytest

from deploy.processes import wait_for
from services.core.db import session_scope
from services.core.settings import get_settings
from services.jobs.models import Draft
from tests.support.drafts import make_draft
from tests.support.identity import IdentityProvider
from workers.approvals import adopt_drafts
from workers.clients import fhir_client

pytestmark = pytest.mark.e2e
CLINICIAN = "Practitioner/dr-approver"


def draft_row(ref: str) -> Draft | None:
    with session_scope() as session:
        return session.get(Draft, ref)


def in_state(ref: str, state: str) -> Draft | None:
    row = draft_row(ref)
    return row if row is not None and row.state.value == state else None


def wait_for_verifier(fhir: str, ref: str) -> None:
    """Wait up to a minute for the clinician as verifier on the draft's Provenance (TimeoutError if not)."""
    # The worker records the decision in its database, then updates the Provenance: the row comes first.
    wait_for(lambda: {"reference": CLINICIAN} in verifiers(fhir, ref), 60, "the Provenance verifier")


def verifiers(fhir: str, ref: str) -> list[dict[str, Any]]:
    bundle = httpx.get(f"{fhir}/Provenance", params={"target": ref}, timeout=10).json()
    return [
        a["who"]
        for e in bundle.get("entry", [])
        for a in e["resource"]["agent"]
        if a["type"]["coding"][0]["code"] == "verifier"
    ]


def test_approval_on_the_fhir_server_reaches_the_job(
    notified_draft: dict[str, Any], fhir_server: str, api: str, auth: dict[str, str]
) -> None:
    [job] = notified_draft["jobs"]
    [ref] = job.draft_refs
    row = wait_for(lambda: draft_row(ref), 120, "the tracked draft")
    assert row.job_id == job.id and row.state.value == "preliminary"

    current = httpx.get(f"{fhir_server}/{ref}", timeout=10)
    doc = {**current.json(), "docStatus": "final", "authenticator": {"reference": CLINICIAN}}
    put = httpx.put(
        f"{fhir_server}/{ref}", json=doc, headers={"If-Match": current.headers["ETag"]}, timeout=10
    )
    assert put.status_code == 200, put.text

    approved = wait_for(lambda: in_state(ref, "approved"), 120, "the approval")
    assert approved.authenticator == CLINICIAN and approved.job_id == job.id
    wait_for_verifier(fhir_server, ref)
    listed = httpx.get(f"{api}/v1/drafts", params={"status": "approved"}, headers=auth, timeout=10).json()
    assert ref in [d["ref"] for d in listed]


def test_api_approve_and_reject_update_the_fhir_server(
    api: str, identity: IdentityProvider, fhir_server: str, loaded_patients: list[str], postgres_db: str
) -> None:
    approver = {"Authorization": f"Bearer {identity.token('drafts.approve drafts.read', subject='dr-api')}"}
    to_approve, to_reject = (make_draft(fhir_server, loaded_patients[1], kind=k) for k in ("soap", "triage"))

    answer = httpx.post(
        f"{api}/v1/{to_approve.replace('DocumentReference', 'drafts')}/approve",
        headers={**approver, "If-Match": 'W/"1"'},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "approved"
    doc = httpx.get(f"{fhir_server}/{to_approve}", timeout=10).json()
    assert doc["docStatus"] == "final" and doc["authenticator"]["identifier"]["value"] == "dr-api"
    assert verifiers(fhir_server, to_approve) == [doc["authenticator"]]

    answer = httpx.post(
        f"{api}/v1/{to_reject.replace('DocumentReference', 'drafts')}/reject",
        headers={**approver, "If-Match": 'W/"1"'},
    )
    assert answer.status_code == 200 and answer.json()["state"] == "rejected", answer.text
    assert httpx.get(f"{fhir_server}/{to_reject}", timeout=10).json()["status"] == "entered-in-error"


def test_stale_if_match_is_412_and_nothing_is_written(
    api: str, auth: dict[str, str], fhir_server: str, loaded_patients: list[str], postgres_db: str
) -> None:
    ref = make_draft(fhir_server, loaded_patients[1], kind="progress")
    doc = httpx.get(f"{fhir_server}/{ref}", timeout=10).json()
    httpx.put(f"{fhir_server}/{ref}", json={**doc, "description": "edited in the EHR"}, timeout=10)
    answer = httpx.post(
        f"{api}/v1/{ref.replace('DocumentReference', 'drafts')}/approve",
        headers={**auth, "If-Match": 'W/"1"'},
        timeout=30,
    )
    assert answer.status_code == 412 and answer.json()["issue"][0]["code"] == "conflict"
    after = httpx.get(f"{fhir_server}/{ref}", timeout=10).json()
    assert after["docStatus"] == "preliminary" and after["meta"]["versionId"] == "2"


def test_approve_needs_the_drafts_approve_scope(api: str, identity: IdentityProvider) -> None:
    reader = {"Authorization": f"Bearer {identity.token('drafts.read')}"}
    answer = httpx.post(f"{api}/v1/drafts/any/approve", headers=reader, timeout=10)
    assert answer.status_code == 403


def test_newer_draft_supersedes_the_older_unapproved_one(
    fhir_server: str, loaded_patients: list[str], stack: dict[str, str]
) -> None:
    patient = loaded_patients[1]
    older = make_draft(fhir_server, patient, kind="progress")
    newer = make_draft(fhir_server, patient, kind="progress")
    asyncio.run(adopt(patient, newer))
    old_doc = httpx.get(f"{fhir_server}/{older}", timeout=10).json()
    new_doc = httpx.get(f"{fhir_server}/{newer}", timeout=10).json()
    assert old_doc["status"] == "superseded"
    assert {"code": "replaces", "target": {"reference": older}} in new_doc["relatesTo"]
    assert (row := draft_row(older)) is not None and row.state.value == "superseded"


async def adopt(patient: str, draft: str) -> None:
    """Adopt a draft as a job that wrote it does."""
    async with fhir_client(get_settings()) as client:
        await adopt_drafts(client, job_id="job-x", patient_id=patient, drafts=[("progress", draft)])


def test_clinician_edit_that_replaces_our_draft_is_measured(
    subscribed: list[dict[str, Any]], fhir_server: str, loaded_patients: list[str]
) -> None:
    ours = make_draft(
        fhir_server, loaded_patients[1], kind="triage", text="- Heart rate 120 [1]\n- Stable [2]\n"
    )
    edited = "# Draft\n\n- Heart rate 120 [1]\n- Improving on fluids [2]\n"
    replacement = {
        "resourceType": "DocumentReference",
        "status": "current",
        "docStatus": "final",
        "subject": {"reference": f"Patient/{loaded_patients[1]}"},
        "authenticator": {"reference": CLINICIAN},
        "relatesTo": [{"code": "replaces", "target": {"reference": ours}}],
        "content": [
            {
                "attachment": {
                    "contentType": "text/markdown",
                    "data": base64.b64encode(edited.encode()).decode(),
                }
            }
        ],
        "identifier": [{"system": "urn:test", "value": uuid.uuid4().hex}],
    }
    created = httpx.post(f"{fhir_server}/DocumentReference", json=replacement, timeout=10)
    assert created.status_code == 201, created.text
    row = wait_for(lambda: in_state(ours, "replaced"), 300, "the replacement")
    assert row.replaced_by == f"DocumentReference/{created.json()['id']}"
    assert row.change_ratio is not None and 0.0 < row.change_ratio < 0.5
    wait_for_verifier(fhir_server, ours)
