"""Drafts written straight to the FHIR server (no LLM) and tracked as the jobrunner tracks them."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fhir_adapters.client import FhirClient
from fhir_adapters.writeback import DraftDocument, ModelDevice, draft_identifier, write_draft
from services.core.db import session_scope
from services.jobs.drafts import record_draft


async def add_draft(
    client: FhirClient,
    patient: str,
    kind: str = "progress",
    text: str = "- A statement [1]\n",
    sections: list[dict[str, Any]] | None = None,
) -> str:
    """Write one draft (its structured JSON with `sections`, none by default) with its Provenance, start
    tracking it, and return its reference."""
    document = DraftDocument(
        patient_id=patient,
        kind=kind,
        loinc_code="11506-3",
        loinc_display="Progress note",
        title="Progress note summary (AI draft)",
        markdown=f"# Draft\n\n{text}",
        structured={"kind": kind, "sections": sections or []},
        cited_refs=[f"Patient/{patient}"],
        identifier=draft_identifier(patient, kind, uuid.uuid4().hex),
        device=ModelDevice("Gemma 3 270M", "gemma3-270m", "sha256:abc"),
    )
    ref = (await write_draft(client, document)).draft_ref
    with session_scope() as session:
        record_draft(session=session, ref=ref, patient_id=patient, kind=kind, job_id=None, version="1")
    return ref


def make_draft(fhir_url: str, patient: str, kind: str = "progress", text: str = "- A statement [1]\n") -> str:
    """`add_draft` outside an event loop, on the server at `fhir_url`."""

    async def write() -> str:
        async with FhirClient(fhir_url) as client:
            return await add_draft(client, patient, kind, text)

    return asyncio.run(write())
