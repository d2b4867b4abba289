"""Write-back to the real FHIR server: draft + Provenance in one transaction, idempotent on retry."""

from __future__ import annotations

import base64

import pytest

from fhir_adapters.client import FhirClient
from fhir_adapters.labels import DRAFT_IDENTIFIER_SYSTEM
from fhir_adapters.resources import ref_of
from fhir_adapters.writeback import DraftDocument, ModelDevice, draft_identifier, find_draft, write_draft

pytestmark = pytest.mark.integration


def draft(patient: str, identifier: str) -> DraftDocument:
    return DraftDocument(
        patient_id=patient,
        kind="progress",
        loinc_code="11506-3",
        loinc_display="Progress note",
        title="Progress note summary (AI draft)",
        markdown="# Draft\n\n- A statement [1]\n",
        structured={"kind": "progress", "sections": []},
        cited_refs=[f"Patient/{patient}"],
        identifier=identifier,
        device=ModelDevice("Gemma 3 270M", "gemma3-270m", "sha256:abc"),
    )


async def test_draft_and_provenance_written_once(fhir_server: str, loaded_patients: list[str]) -> None:
    patient = loaded_patients[2]
    identifier = draft_identifier(patient, "progress", "digest-writeback-test")
    async with FhirClient(fhir_server) as client:
        first = await write_draft(client, draft(patient, identifier))
        second = await write_draft(client, draft(patient, identifier))
        assert first.created and not second.created
        assert first.draft_ref == second.draft_ref == ref_of(await find_draft(client, identifier) or {})
        doc = await client.read(*first.draft_ref.split("/"))
        docs = [
            r
            async for r in client.search(
                "DocumentReference", {"identifier": f"{DRAFT_IDENTIFIER_SYSTEM}|{identifier}"}
            )
        ]
        provenances = [r async for r in client.search("Provenance", {"target": first.draft_ref})]
    assert len(docs) == 1
    assert doc["docStatus"] == "preliminary" and doc["status"] == "current"
    assert doc["type"]["coding"][0]["code"] == "11506-3"
    assert any(s["code"] == "AIAST" for s in doc["meta"]["security"])
    assert doc["author"][0]["reference"].startswith("Device/")
    markdown = base64.b64decode(doc["content"][0]["attachment"]["data"]).decode()
    assert markdown.startswith("# Draft")
    assert len(provenances) == 1
    prov = provenances[0]
    assert prov["agent"][0]["who"]["reference"] == doc["author"][0]["reference"]
    assert prov["entity"] == [{"role": "derivation", "what": {"reference": f"Patient/{patient}"}}]
