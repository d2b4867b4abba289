"""Incremental pulls against each real server: unchanged, changed, deleted and entered-in-error resources."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from deploy import patients
from fhir_adapters.client import FhirClient
from fhir_adapters.condense import condense
from fhir_adapters.incremental import Pull, pull_record
from fhir_adapters.readers import entered_in_error
from fhir_adapters.snapshot import timeline_digest
from services.core.db import session_scope
from services.snapshots.models import RecordSnapshot
from services.snapshots.service import get_snapshot
from workers.record_pull import keep_snapshot, pull_for_job

pytestmark = pytest.mark.integration
Server = tuple[str, str, list[str]]
ERROR_STATUS = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "entered-in-error"}
    ]
}


def _change(url: str, refs: list[str]) -> tuple[str, str, str]:
    """Amend an Observation, mark a Condition entered-in-error, delete a Procedure; their references."""
    observation = next(r for r in refs if r.startswith("Observation/"))
    condition = next(r for r in refs if r.startswith("Condition/"))
    procedure = next(r for r in refs if r.startswith("Procedure/"))
    with httpx.Client(base_url=url + "/", timeout=30) as http:
        amended = {**http.get(observation).json(), "status": "amended"}
        retracted = {**http.get(condition).json(), "verificationStatus": ERROR_STATUS}
        assert http.put(observation, json=amended).status_code == 200
        assert http.put(condition, json=retracted).status_code == 200
        assert http.delete(procedure).status_code in (200, 204)
    return observation, condition, procedure


async def test_a_second_pull_fetches_only_what_changed(any_fhir: Server, synthea_files: list[Path]) -> None:
    _, url, _ = any_fhir
    patient = patients.load(url, synthea_files[0])
    async with FhirClient(url) as client:
        full = await pull_record(client, patient)
        again = await pull_record(client, patient, full.snapshot)
        observation, condition, procedure = _change(url, sorted(full.snapshot.resources))
        changed = await pull_record(client, patient, again.snapshot)
        fresh = await pull_record(client, patient)
    assert full.mode == "full" and len(full.record.resources) > 2000
    assert again.mode == "incremental" and again.unchanged
    assert digest(again) == digest(full)
    assert changed.mode == "incremental" and changed.changed == 2 and changed.deleted == [procedure]
    assert procedure not in changed.record.resources
    assert changed.record.resources[observation].status == "amended"  # type: ignore[attr-defined]
    assert entered_in_error(changed.record.resources[condition])
    assert set(changed.record.resources) == set(fresh.record.resources)
    assert digest(changed) == digest(fresh) != digest(full)


def digest(pulled: Pull) -> str:
    """The timeline digest of a pull's record."""
    return timeline_digest(condense(pulled.record))


async def test_the_job_keeps_the_snapshot_in_postgres_and_rewrites_it_only_for_news(
    fhir_server: str, synthea_files: list[Path], postgres_db: str
) -> None:
    patient = patients.load(fhir_server, synthea_files[1])  # a copy no job has pulled yet
    async with FhirClient(fhir_server) as client:
        first = await pull_for_job(client, patient)
        assert await keep_snapshot(client.base_url, first, condense(first.record))
        stored = stored_row(client.base_url, patient)
        second = await pull_for_job(client, patient)
        assert not await keep_snapshot(client.base_url, second, condense(second.record))
    row = stored_row(client.base_url, patient)
    assert row.timeline_digest == digest(first) == digest(second)
    assert row.versions == second.snapshot.versions() and row.since == second.snapshot.since
    assert row.updated_at == stored.updated_at  # nothing new: not written again
    assert first.mode == "full" and second.mode == "incremental" and second.unchanged


def stored_row(server: str, patient: str) -> RecordSnapshot:
    """The patient's stored snapshot row."""
    with session_scope() as session:
        row = get_snapshot(session=session, server=server, patient_id=patient)
        assert row is not None
        return row
