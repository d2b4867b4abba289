"""Every FHIR read and write the service makes lands in the audit trail, with ids only."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import col, select

from services.audit.models import AuditOutcome, AuditRecord
from services.core.db import session_scope
from services.core.errors import FhirNotFound
from services.core.settings import get_settings
from workers.clients import fhir_client

pytestmark = pytest.mark.integration


def test_fhir_reads_are_audited_with_their_outcome(stack: dict[str, str], loaded_patients: list[str]) -> None:
    patient = loaded_patients[0]

    async def reads() -> None:
        async with fhir_client(get_settings()) as client:
            await client.read("Patient", patient)
            with pytest.raises(FhirNotFound):
                await client.read("Patient", "audit-missing")

    asyncio.run(reads())
    with session_scope() as session:
        rows = session.exec(
            select(AuditRecord)
            .where(col(AuditRecord.action).startswith("fhir read"))
            .order_by(col(AuditRecord.id))
        ).all()
    outcomes = {tuple(r.resource_ids): (r.outcome, r.detail) for r in rows}
    assert outcomes[(f"Patient/{patient}",)] == (AuditOutcome.success, "200")
    assert outcomes[("Patient/audit-missing",)] == (AuditOutcome.failure, "404")
