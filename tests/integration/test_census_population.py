"""A census's population from the real sekmet-fhir: a Group read, a Group by Bulk $export, a ward."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from deploy import patients
from fhir_adapters.bulk import BulkExport, declares_group_export
from fhir_adapters.client import FhirClient
from fhir_adapters.population import group_patients, ward_patients
from services.core.errors import FhirError, FhirNotFound
from tests.support.fault_proxy import Fault, FaultProxy

pytestmark = pytest.mark.integration


def created(fhir_server: str, resource: dict[str, Any]) -> str:
    """POST a resource; its server id."""
    answer = httpx.post(f"{fhir_server}/{resource['resourceType']}", json=resource, timeout=30)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


@pytest.fixture(scope="module")
def group(fhir_server: str, census_patients: list[str]) -> str:
    """A Group of the three patients, plus an inactive member and a Device that are not in the census."""
    device = created(fhir_server, {"resourceType": "Device", "status": "active"})
    members: list[dict[str, Any]] = [{"entity": {"reference": f"Patient/{p}"}} for p in census_patients]
    members.insert(1, {"entity": {"reference": f"Patient/{census_patients[0]}"}})  # listed twice
    members.append({"entity": {"reference": f"Device/{device}"}})
    members.append({"entity": {"reference": f"{fhir_server}/Patient/{census_patients[2]}"}})  # absolute
    gone = patients.encounter_now(census_patients[0])["subject"]["reference"]
    members.append({"entity": {"reference": gone}, "inactive": True})
    return created(
        fhir_server,
        {"resourceType": "Group", "type": "person", "actual": True, "member": members},
    )


def encounter(patient: str, location: str, status: str, where: str = "active") -> dict[str, Any]:
    """An inpatient Encounter of a patient at a Location."""
    return {
        **patients.encounter_now(patient),
        "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "location": [{"location": {"reference": f"Location/{location}"}, "status": where}],
    }


@pytest.fixture(scope="module")
def ward(fhir_server: str, census_patients: list[str]) -> str:
    """A ward with two patients in progress; the third was discharged from it and is on another ward."""
    ward = created(fhir_server, {"resourceType": "Location", "status": "active", "name": "Ward 7"})
    other = created(fhir_server, {"resourceType": "Location", "status": "active", "name": "Ward 8"})
    first, second, third = census_patients
    for body in (
        encounter(first, ward, "in-progress"),
        encounter(second, ward, "in-progress"),
        encounter(second, ward, "in-progress"),  # a second open encounter: still one patient
        encounter(third, ward, "finished", where="completed"),
        encounter(third, other, "in-progress"),
    ):
        created(fhir_server, body)
    return ward


async def test_a_group_read_gives_its_active_patients_once_in_order(
    fhir_server: str, census_patients: list[str], group: str
) -> None:
    async with FhirClient(fhir_server) as client:
        assert await group_patients(client, group) == census_patients
        with pytest.raises(FhirNotFound):
            await group_patients(client, "no-such-group")


async def test_sekmet_declares_group_export_and_the_export_gives_the_same_patients(
    fhir_server: str, census_patients: list[str], group: str
) -> None:
    async with FhirClient(fhir_server) as client:
        assert declares_group_export(await client.capability())
        exporter = BulkExport(client)
        found = await exporter.group_patients(group)
    # sekmet exports inactive members too (the spec leaves it to the server): the inactive one is patient 0.
    assert sorted(found) == sorted(census_patients)
    assert exporter.stats.polls >= 2, "the export finished before a first poll: Retry-After was not exercised"
    assert exporter.stats.waits_s and all(w == 1.0 for w in exporter.stats.waits_s)  # sekmet: Retry-After: 1
    assert exporter.stats.resources == 3 and exporter.stats.bytes > 0


@pytest.fixture
def proxy(fhir_server: str) -> Iterator[FaultProxy]:
    p = FaultProxy(fhir_server).start()
    yield p
    p.stop()


async def test_polling_waits_what_retry_after_asks_and_rides_out_a_503(proxy: FaultProxy, group: str) -> None:
    proxy.faults += [
        Fault(path="bulk-status", status=503, times=1, retry_after="1"),
        Fault(path="bulk-status", status=202, times=1, retry_after="3"),
    ]
    async with FhirClient(proxy.url, backoff_base_s=0.1) as client:
        exporter = BulkExport(client)
        started = time.monotonic()
        status_url = await exporter.kick_off(group, ["Patient"])
        manifest = await exporter.wait(status_url)
        waited = time.monotonic() - started
        await exporter.finish(status_url)
    assert status_url.startswith(proxy.url)
    assert exporter.stats.waits_s[0] == 3.0 and waited >= 4.0  # 1 s after the 503, then 3 s
    assert [o["type"] for o in manifest["output"]] == ["Patient"]
    assert any(s.startswith("DELETE ") and "bulk-status" in s for s in proxy.seen)


async def test_a_manifest_pointing_off_the_server_is_refused(proxy: FaultProxy, group: str) -> None:
    manifest = {
        "transactionTime": "2026-12-02T00:00:00Z",
        "request": f"{proxy.url}/Group/{group}/$export",
        "requiresAccessToken": True,
        "output": [{"type": "Patient", "url": "https://bucket.example.org/Patient.ndjson"}],
        "error": [],
    }
    proxy.faults.append(Fault(path="bulk-status", status=200, times=1, body=json.dumps(manifest).encode()))
    async with FhirClient(proxy.url) as client:
        exporter = BulkExport(client)
        status_url = await exporter.kick_off(group, ["Patient"])
        answer = await exporter.wait(status_url)
        with pytest.raises(FhirError, match="outside the configured FHIR server"):
            [r async for r in exporter.resources(answer, "Patient")]
    assert not any("bucket.example.org" in s for s in proxy.seen)


async def test_kick_off_without_a_group_is_not_found(fhir_server: str) -> None:
    async with FhirClient(fhir_server) as client:
        with pytest.raises(FhirNotFound):
            await BulkExport(client).kick_off("no-such-group", ["Patient"])


async def test_a_ward_gives_the_patients_of_its_in_progress_encounters(
    fhir_server: str, census_patients: list[str], ward: str
) -> None:
    async with FhirClient(fhir_server) as client:
        assert sorted(await ward_patients(client, ward)) == sorted(census_patients[:2])
        with pytest.raises(FhirNotFound):
            await ward_patients(client, "no-such-ward")
