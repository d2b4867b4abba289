#!/usr/bin/env python3
"""Ingest: rest-hook notifications per second into the real webhook, p50/p99, none lost (prints a table).

.venv/bin/python bench/ingest.py [--count 3000] [--concurrency 1,8,32] [--max-seconds 60]

Loopback only and bounded: COUNT notifications per concurrency level, each a distinct Encounter
version for one of 100 patients, against `ehrsum api` (uvicorn, one process) backed by a throwaway
Postgres database and Redis db 13. Lost = sent minus rows in notification_receipt (each accepted
event is recorded once). The load generator runs on the same 2 cores as the API.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stack import (
    BIN,
    REDIS_URL,
    SECRET,
    database,
    flush_redis,
    free_port,
    percentile,
    spawn,
    stop_group,
)
from deploy.processes import wait_http


def encounter(n: int, run: str) -> bytes:
    """The nth notification body: a full-resource rest-hook delivery of a new Encounter version."""
    return json.dumps(
        {
            "resourceType": "Encounter",
            "id": f"{run}-{n}",
            "meta": {"versionId": "1", "lastUpdated": "2026-11-22T08:00:00Z"},
            "status": "in-progress",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": f"Patient/bench-{n % 100}"},
        }
    ).encode()


async def blast(
    url: str, count: int, concurrency: int, run: str, max_seconds: float
) -> tuple[list[float], int, float]:
    """Send `count` notifications with `concurrency` in flight; latencies (s), non-200 count, wall time."""
    headers = {"X-Ehrsum-Secret": SECRET, "Content-Type": "application/fhir+json"}
    latencies: list[float] = []
    errors = 0
    queue = iter(range(count))
    deadline = time.monotonic() + max_seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as client:

        async def sender() -> None:
            nonlocal errors
            for n in queue:
                if time.monotonic() > deadline:
                    return
                started = time.perf_counter()
                response = await client.post("/v1/notifications", content=encounter(n, run))
                latencies.append(time.perf_counter() - started)
                errors += response.status_code != 200

        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return latencies, errors, wall


def receipts(db_url: str, run: str) -> int:
    """Rows recorded for this run's events."""
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT count(*) FROM notification_receipt WHERE focus LIKE :p"), {"p": f"Encounter/{run}-%"}
        ).scalar_one()
    engine.dispose()
    return int(found)


def main() -> int:
    """Start the API, send bounded bursts, count what was recorded, print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="per level; stops sending after this")
    args = parser.parse_args()
    rows = []
    with database() as db_url, tempfile.TemporaryDirectory() as tmp:
        flush_redis()
        port = free_port()
        env = {
            "EHRSUM_DATABASE_URL": db_url,
            "EHRSUM_BROKER_URL": REDIS_URL,
            "EHRSUM_NOTIFICATION_SECRET": SECRET,
            "EHRSUM_NOTIFICATION_RATE_PER_MINUTE": "100000000",
            "EHRSUM_DEBOUNCE_S": "600",
            "EHRSUM_LOG_LEVEL": "WARNING",
        }
        api = spawn([str(BIN / "ehrsum"), "api", "--port", str(port)], env, Path(tmp) / "api.log")
        try:
            url = f"http://127.0.0.1:{port}"
            wait_http(f"{url}/healthz", 60, api, Path(tmp) / "api.log")
            asyncio.run(blast(url, 200, 8, "warmup", 30))
            for level in (int(c) for c in args.concurrency.split(",")):
                run = f"c{level}-{time.time_ns()}"
                latencies, errors, wall = asyncio.run(blast(url, args.count, level, run, args.max_seconds))
                recorded = receipts(db_url, run)
                rows.append((level, len(latencies), errors, recorded, wall, latencies))
        finally:
            stop_group(api)
            flush_redis()
    print("Ingest: rest-hook Encounter notifications into POST /v1/notifications, one uvicorn process,")
    print("Postgres + Redis on loopback; load generator on the same 2-core machine\n")
    print("| in flight | sent | non-200 | recorded | lost | per s | p50 ms | p99 ms | max ms |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for level, sent, errors, recorded, wall, lat in rows:
        ms = [x * 1000 for x in lat]
        print(
            f"| {level} | {sent:,} | {errors} | {recorded:,} | {sent - errors - recorded} | "
            f"{sent / wall:,.0f} | "
            f"{percentile(ms, 50):.1f} | {percentile(ms, 99):.1f} | {max(ms):.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
