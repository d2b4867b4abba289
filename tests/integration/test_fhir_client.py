"""The FHIR client against the real sekmet-fhir server: paging, retries, fallback, typed errors."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Mapping

import pytest

from fhir_adapters.client import FhirClient
from fhir_adapters.record import FALLBACK_TYPES, RECORD_TYPES, fetch_record
from services.core.errors import FhirNotFound, FhirUnavailable, OperationOutcomeError
from tests.conftest import free_port
from tests.support.fault_proxy import Fault, FaultProxy

pytestmark = pytest.mark.integration


@pytest.fixture
def proxy(fhir_server: str) -> Iterator[FaultProxy]:
    p = FaultProxy(fhir_server).start()
    yield p
    p.stop()


@pytest.fixture
def any_proxy(any_fhir: tuple[str, str, list[str]]) -> Iterator[tuple[FaultProxy, list[str]]]:
    """A fault proxy in front of each FHIR server in turn, and that server's patients."""
    p = FaultProxy(any_fhir[1]).start()
    yield p, any_fhir[2]
    p.stop()


async def test_search_follows_next_links_across_pages(fhir_server: str, loaded_patients: list[str]) -> None:
    patient = loaded_patients[0]
    async with FhirClient(fhir_server) as client:
        pages = [b async for b in client.pages("Observation", {"patient": patient, "_count": "50"})]
        found = [r async for r in client.search("Observation", {"patient": patient, "_count": "50"})]
        record = await fetch_record(client, patient)
    expected = sum(1 for ref in record.resources if ref.startswith("Observation/"))
    assert len(pages) > 2
    assert len(found) == expected == len({r["id"] for r in found})


async def test_everything_gives_the_whole_record(fhir_server: str, loaded_patients: list[str]) -> None:
    async with FhirClient(fhir_server) as client:
        record = await fetch_record(client, loaded_patients[0])
        served = await client.get_json(f"Patient/{loaded_patients[0]}/$everything")
    assert record.source == "$everything"
    assert record.patient is not None and record.patient.id == loaded_patients[0]
    assert len(record.resources) > 200 and record.rejected == {}
    # Only what a note can use is kept: sekmet ignores `_type` and also serves Claims, EOBs and the like.
    types = Counter(e["resource"]["resourceType"] for e in served["entry"])
    assert set(types) - RECORD_TYPES, "the test record should hold types a note never uses"
    assert {ref.split("/")[0] for ref in record.resources} <= RECORD_TYPES
    assert len(record.resources) == sum(n for type_name, n in types.items() if type_name in RECORD_TYPES)


async def test_retries_honour_retry_after_then_succeed(any_proxy: tuple[FaultProxy, list[str]]) -> None:
    proxy, loaded_patients = any_proxy
    proxy.faults = [
        Fault(r"/Patient/", 503, 2, retry_after="1"),
        Fault(r"/Patient/", 429, 1, retry_after="0"),
    ]
    started = time.monotonic()
    async with FhirClient(proxy.url, max_retries=4, backoff_base_s=0.01) as client:
        patient = await client.read("Patient", loaded_patients[0])
    assert patient["id"] == loaded_patients[0]
    assert len(proxy.seen) == 4
    assert time.monotonic() - started >= 2.0  # two Retry-After: 1 waits


async def test_gives_up_after_max_retries(any_proxy: tuple[FaultProxy, list[str]]) -> None:
    proxy, loaded_patients = any_proxy
    proxy.faults = [Fault(r"/Patient/", 502, 10)]
    async with FhirClient(proxy.url, max_retries=2, backoff_base_s=0.01) as client:
        with pytest.raises(FhirUnavailable):
            await client.read("Patient", loaded_patients[0])
    assert len(proxy.seen) == 3


async def test_falls_back_to_searches_when_everything_is_unsupported(
    proxy: FaultProxy, fhir_server: str, loaded_patients: list[str]
) -> None:
    outcome = b'{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-supported"}]}'
    proxy.faults = [Fault(r"\$everything", 501, 100, body=outcome)]
    patient = loaded_patients[1]
    async with FhirClient(proxy.url) as client:
        searched = await fetch_record(client, patient)
    async with FhirClient(fhir_server) as client:
        everything = await fetch_record(client, patient)
    assert searched.source == "search"
    wanted = {r for r in everything.resources if r.split("/")[0] in (*FALLBACK_TYPES, "Patient")}
    assert set(searched.resources) == wanted
    assert Counter(r.split("/")[0] for r in searched.resources)["Observation"] > 10


async def test_unknown_patient_is_not_found(any_fhir: tuple[str, str, list[str]]) -> None:
    async with FhirClient(any_fhir[1]) as client:
        with pytest.raises(FhirNotFound, match="Patient/no-such-patient not found"):
            await fetch_record(client, "no-such-patient")


async def test_unreachable_server_is_unavailable() -> None:
    async with FhirClient(
        f"http://127.0.0.1:{free_port()}/fhir", max_retries=1, backoff_base_s=0.01
    ) as client:
        with pytest.raises(FhirUnavailable, match="unreachable"):
            await client.read("Patient", "x")


async def test_operation_outcome_becomes_a_typed_error(fhir_server: str) -> None:
    # sekmet only: the Medplum router stores resources unvalidated (its server validates in a layer above).
    bad = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "Observation", "status": "not-a-status"},
                "request": {"method": "POST", "url": "Observation"},
            }
        ],
    }
    async with FhirClient(fhir_server) as client:
        with pytest.raises(OperationOutcomeError) as caught:
            await client.transaction(bad)
    assert caught.value.outcome is not None and caught.value.outcome["resourceType"] == "OperationOutcome"
    assert 400 <= (caught.value.status or 0) < 500


class _Recorder:
    """A real HTTP server on loopback that answers every GET with one JSON body and records who asked."""

    def __init__(self, body: Mapping[str, object]) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        recorder = self
        self.seen: list[tuple[str, str | None]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.seen.append((self.path, self.headers.get("Authorization")))
                payload = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/fhir"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def test_next_link_to_another_host_is_not_followed() -> None:
    """Item 10: a server's link[next] elsewhere is refused, and our Authorization header never goes there."""
    from fhir_adapters.client import FhirAuth
    from services.core.errors import FhirError

    elsewhere = _Recorder({"resourceType": "Bundle", "type": "searchset", "entry": []})
    page = {"resourceType": "Bundle", "type": "searchset", "link": [{"relation": "next", "url": ""}]}
    ours = _Recorder(page)
    try:
        for next_url in (
            f"{elsewhere.url}/Observation?page=2",
            f"{ours.url.replace('127.0.0.1', 'localhost')}/Observation?page=2",  # another origin too
            f"{ours.url}/../fhir-other/Observation?page=2",
        ):
            page["link"] = [{"relation": "next", "url": next_url}]
            async with FhirClient(ours.url, auth=FhirAuth(mode="bearer", token="s3cret")) as client:
                with pytest.raises(FhirError, match="outside the configured FHIR server"):
                    [b async for b in client.pages("Observation", {})]
        assert elsewhere.seen == []
        assert [auth for _, auth in ours.seen] == ["Bearer s3cret"] * 3
    finally:
        ours.stop()
        elsewhere.stop()


async def test_next_link_on_the_same_server_is_followed() -> None:
    """Control: a next link under the configured base is followed as an opaque URL (once: it repeats)."""
    page: dict[str, object] = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    server = _Recorder(page)
    page["link"] = [{"relation": "next", "url": f"{server.url}/Observation?_offset=50"}]
    try:
        async with FhirClient(server.url) as client:
            pages = [b async for b in client.pages("Observation", {})]
        assert len(pages) == 2
        assert [path for path, _ in server.seen] == ["/fhir/Observation", "/fhir/Observation?_offset=50"]
    finally:
        server.stop()
