"""Incremental pulls against each real server: unchanged, changed, deleted and entered-in-error resources."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from deploy import patients
from fhir_adapters.client import FhirClient
from fhir_adapters.incremental import pull_record
from fhir_adapters.readers import entered_in_error
from services.core.db import session_scope
from services.snapshots.service import get_snapshot
from workers.record_pull import pull_with_snapshot

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
    assert full.kind == "full" and len(full.record.resources) > 2000
    assert again.kind == "incremental" and again.unchanged
    assert again.snapshot.digest == full.snapshot.digest
    assert changed.kind == "incremental" and changed.changed == 2 and changed.deleted == [procedure]
    assert procedure not in changed.record.resources
    assert changed.record.resources[observation].status == "amended"  # type: ignore[attr-defined]
    assert entered_in_error(changed.record.resources[condition])
    assert set(changed.record.resources) == set(fresh.record.resources)
    assert changed.snapshot.digest == fresh.snapshot.digest != full.snapshot.digest


async def test_the_job_pull_keeps_the_snapshot_in_postgres(
    fhir_server: str, synthea_files: list[Path], postgres_db: str
) -> None:
    patient = patients.load(fhir_server, synthea_files[1])  # a copy no job has pulled yet
    async with FhirClient(fhir_server) as client:
        first = await pull_with_snapshot(client, patient)
        second = await pull_with_snapshot(client, patient)
    with session_scope() as session:
        row = get_snapshot(session=session, server=client.base_url, patient_id=patient)
        assert row is not None
        assert row.timeline_digest == first.snapshot.digest == second.snapshot.digest
        assert row.versions == second.snapshot.versions() and row.since == second.snapshot.since
    assert first.kind == "full" and second.kind == "incremental" and second.unchanged
