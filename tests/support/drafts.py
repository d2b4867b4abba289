"""Drafts written straight to the FHIR server (no LLM) and tracked as the jobrunner tracks them."""

from __future__ import annotations

import asyncio
import uuid

from fhir_adapters.client import FhirClient
from fhir_adapters.writeback import DraftDocument, ModelDevice, draft_identifier, write_draft
from services.core.db import session_scope
from services.jobs.drafts import record_draft


def make_draft(fhir_url: str, patient: str, kind: str = "progress", text: str = "- A statement [1]\n") -> str:
    """Write one draft with its Provenance, start tracking it, and return its reference."""
    document = DraftDocument(
        patient_id=patient,
        kind=kind,
        loinc_code="11506-3",
        loinc_display="Progress note",
        title="Progress note summary (AI draft)",
        markdown=f"# Draft\n\n{text}",
        structured={"kind": kind, "sections": []},
        cited_refs=[f"Patient/{patient}"],
        identifier=draft_identifier(patient, kind, uuid.uuid4().hex),
        device=ModelDevice("Gemma 3 270M", "gemma3-270m", "sha256:abc"),
    )

    async def write() -> str:
        async with FhirClient(fhir_url) as client:
            return (await write_draft(client, document)).draft_ref

    ref = asyncio.run(write())
    with session_scope() as session:
        record_draft(session=session, ref=ref, patient_id=patient, kind=kind, job_id=None, version="1")
    return ref
