"""The adapter against each FHIR server: the declared plan, paging, record, write-back and approvals."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from fhir_adapters.capability import Capabilities, capabilities, forget
from fhir_adapters.client import FhirClient
from fhir_adapters.condense import condense
from fhir_adapters.lifecycle import approve, etag_of, read_versioned, reject
from fhir_adapters.record import FALLBACK_TYPES, fetch_record
from fhir_adapters.resources import ref_of
from fhir_adapters.snapshot import timeline_digest
from fhir_adapters.writeback import DraftDocument, ModelDevice, draft_identifier, find_draft, write_draft
from services.core.errors import ConfigError, FhirConflict
from services.core.settings import get_settings
from workers.subscribing import subscribe, wanted_subscriptions

pytestmark = pytest.mark.integration
Server = tuple[str, str, list[str]]
# How each implementation serves a record: sekmet declares $everything, the router has no operations.
PLAN = {"sekmet": "$everything", "medplum": "search"}


def draft(patient: str, kind: str = "progress") -> DraftDocument:
    return DraftDocument(
        patient_id=patient,
        kind=kind,
        loinc_code="11506-3",
        loinc_display="Progress note",
        title="Progress note summary (AI draft)",
        markdown="# Draft\n\n- A statement [1]\n",
        structured={"kind": kind, "sections": []},
        cited_refs=[f"Patient/{patient}"],
        identifier=draft_identifier(patient, kind, uuid.uuid4().hex),
        device=ModelDevice("Gemma 3 270M", "gemma3-270m", "sha256:abc"),
    )


async def test_capability_statement_is_read_once_and_decides_the_plan(any_fhir: Server) -> None:
    name, url, patients = any_fhir
    forget(url)
    asked: list[str] = []
    async with FhirClient(url, on_exchange=lambda method, path, status: asked.append(path)) as client:
        declared = await capabilities(client)
        for patient in patients[:2]:
            record = await fetch_record(client, patient)
            assert record.source == PLAN[name]
    assert asked.count("metadata") == 1
    assert declared.declared and declared.fetch_plan() == PLAN[name]
    assert declared.patient_param("Observation") == "subject"
    assert declared.patient_param("AllergyIntolerance") == "patient"
    if name == "medplum":
        # Only what is declared is searched for: no $everything was tried, each type searched once.
        assert not any("$everything" in path for path in asked)
        assert {"Observation", "AllergyIntolerance", "Immunization"} <= set(asked)


async def test_record_is_fetched_whole(any_fhir: Server) -> None:
    _, url, patients = any_fhir
    async with FhirClient(url) as client:
        record = await fetch_record(client, patients[0])
        observations = [r async for r in client.search("Observation", {"subject": f"Patient/{patients[0]}"})]
    assert record.patient is not None and record.patient.id == patients[0]
    assert record.rejected == {}
    assert {ref.split("/")[0] for ref in record.resources} <= {"Patient", "Medication", *FALLBACK_TYPES}
    kept = {ref for ref in record.resources if ref.startswith("Observation/")}
    assert len(kept) > 100 and kept == {f"Observation/{o['id']}" for o in observations}


async def test_searches_page_by_next_links(any_fhir: Server) -> None:
    _, url, patients = any_fhir
    params = {"subject": f"Patient/{patients[0]}", "_count": "100"}
    async with FhirClient(url) as client:
        pages = [b async for b in client.pages("Observation", params)]
        found = [r async for r in client.search("Observation", params)]
        whole = [r async for r in client.search("Observation", {**params, "_count": "5000"})]
    assert len(pages) > 2
    assert len(found) == len({r["id"] for r in found}) == len(whole)


def test_bare_patient_id_is_not_every_servers_form(medplum_server: str, medplum_patients: list[str]) -> None:
    patient = medplum_patients[0]
    url = f"{medplum_server}/Condition"
    bare = httpx.get(url, params={"patient": patient}, timeout=30).json()
    typed = httpx.get(url, params={"patient": f"Patient/{patient}"}, timeout=30).json()
    assert len(bare.get("entry", [])) == 0 < len(typed.get("entry", []))


async def test_draft_written_once_with_its_provenance(any_fhir: Server) -> None:
    _, url, patients = any_fhir
    document = draft(patients[2])
    async with FhirClient(url) as client:
        first = await write_draft(client, document)
        second = await write_draft(client, document)
        doc = await client.read(*first.draft_ref.split("/"))
        provenances = [r async for r in client.search("Provenance", {"target": first.draft_ref})]
        found = await find_draft(client, document.identifier)
        assert first.draft_ref == second.draft_ref == ref_of(found or {})
    assert first.created and not second.created
    assert doc["docStatus"] == "preliminary" and doc["status"] == "current"
    assert any(s["code"] == "AIAST" for s in doc["meta"]["security"])
    assert len(provenances) == 1
    assert provenances[0]["agent"][0]["who"]["reference"] == doc["author"][0]["reference"]


async def test_approve_reject_and_a_stale_version(any_fhir: Server) -> None:
    _, url, patients = any_fhir
    clinician = {"reference": "Practitioner/dr-approver"}
    async with FhirClient(url) as client:
        approved_ref = (await write_draft(client, draft(patients[1], "soap"))).draft_ref
        rejected_ref = (await write_draft(client, draft(patients[1], "triage"))).draft_ref
        stale_ref = (await write_draft(client, draft(patients[1], "progress"))).draft_ref
        first = await read_versioned(client, approved_ref)
        approved = await approve(client, approved_ref, if_match=first.etag, authenticator=clinician)
        to_reject = await read_versioned(client, rejected_ref)
        rejected = await reject(client, rejected_ref, if_match=to_reject.etag)
        stale = await read_versioned(client, stale_ref)
        changed = {**stale.resource, "description": "edited in the EHR"}
        edited = await client.request("PUT", stale_ref, json=changed)
        with pytest.raises(FhirConflict):
            await approve(client, stale_ref, if_match=stale.etag, authenticator=clinician)
        after = (await read_versioned(client, stale_ref)).resource
    assert approved["docStatus"] == "final" and approved["authenticator"] == clinician
    assert etag_of(approved) != first.etag
    assert rejected["status"] == "entered-in-error"
    assert edited.status_code == 200
    assert after["docStatus"] == "preliminary" and after["description"] == "edited in the EHR"


async def test_the_same_patient_gives_the_same_timeline_on_both_servers(
    fhir_server: str, loaded_patients: list[str], medplum_server: str, medplum_patients: list[str]
) -> None:
    digests = []
    for url, patient in ((fhir_server, loaded_patients[0]), (medplum_server, medplum_patients[0])):
        async with FhirClient(url) as client:
            record = await fetch_record(client, patient)
        digests.append(timeline_digest(condense(record)))
    assert digests[0] == digests[1]


def test_subscriptions_only_where_declared(any_fhir: Server, postgres_db: str) -> None:
    name, url, _ = any_fhir
    wanted = wanted_subscriptions(get_settings())

    async def declared_by_server() -> Capabilities:
        async with FhirClient(url) as client:
            return await capabilities(client)

    declared = asyncio.run(declared_by_server())
    if name == "sekmet":
        assert declared.subscriptions and set(get_settings().subscription_topics) <= declared.topics
        assert declared.subscribable(wanted) == wanted
    else:
        assert not declared.subscriptions and declared.subscribable(wanted) == []
        with pytest.raises(ConfigError, match="no Subscription we can use"):
            subscribe(get_settings(), url)
