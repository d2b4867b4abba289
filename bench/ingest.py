#!/usr/bin/env python3
"""Ingest: rest-hook notifications per second into the real webhook beside a bare ASGI endpoint (a table).

.venv/bin/python bench/ingest.py [--count 3000] [--concurrency 1,8,16,32] [--api-workers 2] [--ours-from DIR]

Loopback only and bounded: COUNT notifications per concurrency level, each a distinct Encounter
version for one of 100 patients, against `ehrsum api --workers N` (uvicorn; one process per core)
backed by a throwaway Postgres database and Redis db 13. Lost = sent minus rows in
notification_receipt (each accepted event is recorded once). After each level, the same bodies go for
as long as ours took (at least COUNT) to a bare ASGI endpoint (`bench/bare_asgi.py`: reads the body,
answers 200) that uvicorn serves with the same server settings and worker count, so both see the same
background load; the ratio ours/bare of notifications per second is what the target is set on. The
load generator (a bare asyncio HTTP/1.1 client, one keep-alive connection per request in flight) runs
on the same 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
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


async def post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes, body: bytes) -> int:
    """One keep-alive HTTP/1.1 POST; the status code (the body is read and dropped)."""
    writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def blast(
    url: str, count: int, concurrency: int, run: str, max_seconds: float, at_least: int = 0
) -> tuple[list[float], int, float]:
    """Send `count` notifications over `concurrency` connections, stopping after `max_seconds` once
    `at_least` are sent; latencies (s), non-200 count, wall time.

    A bare asyncio HTTP/1.1 client: the generator shares the 2 cores with the API, so it must cost
    little (an httpx client spends about as much CPU per request as the endpoint does).
    """
    target = httpx.URL(url)
    head = (
        f"POST /v1/notifications HTTP/1.1\r\nHost: {target.host}:{target.port}\r\n"
        f"Content-Type: application/fhir+json\r\nX-Ehrsum-Secret: {SECRET}\r\nContent-Length: "
    ).encode()
    latencies: list[float] = []
    errors = 0
    queue = iter(range(count))
    deadline = time.monotonic() + max_seconds

    async def sender() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(target.host, target.port)
        try:
            for n in queue:
                if time.monotonic() > deadline and n >= at_least:
                    return
                body = encounter(n, run)
                started = time.perf_counter()
                status = await post(reader, writer, head, body)
                latencies.append(time.perf_counter() - started)
                errors += status != 200
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return latencies, errors, time.perf_counter() - started


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


@dataclass
class Level:
    """One burst at one concurrency: what was sent, refused and recorded, and how fast."""

    sent: int
    errors: int
    wall: float
    latencies: list[float]
    recorded: int | None = None  # ours only: rows in notification_receipt

    def figures(self) -> str:
        """Per second, p50 and p99 in ms, as table cells."""
        ms = [x * 1000 for x in self.latencies]
        return f"{self.sent / self.wall:,.0f} | {percentile(ms, 50):.1f} | {percentile(ms, 99):.1f}"


def burst(url: str, count: int, concurrency: int, run: str, max_seconds: float, at_least: int = 0) -> Level:
    """`count` requests to `url`, stopping after `max_seconds` once `at_least` are sent."""
    latencies, errors, wall = asyncio.run(blast(url, count, concurrency, run, max_seconds, at_least))
    return Level(len(latencies), errors, wall, latencies)


def started(command: list[str], env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A server on a free loopback port, answering; the process and its base URL."""
    port = free_port()
    proc = spawn([*command, "--port", str(port)], env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/healthz", 60, proc, log)
    except BaseException:
        stop_group(proc)
        raise
    return proc, url


def print_table(workers: int, rows: list[tuple[int, Level, Level]], ours_from: str | None) -> None:
    """Ours beside the bare endpoint per concurrency level, and the ratio of their throughputs."""
    print(
        "Ingest: rest-hook Encounter notifications into POST /v1/notifications"
        f"{f' (ours from {ours_from})' if ours_from else ''}, "
        f"{workers} uvicorn process(es), beside a bare ASGI endpoint served alike;"
    )
    print("Postgres + Redis on loopback; load generator on the same 2-core machine\n")
    print(
        "| in flight | sent | non-200 | recorded | lost | ours per s | p50 ms | p99 ms "
        "| bare per s | bare p50 ms | bare p99 ms | bare non-200 | ours/bare |"
    )
    print("| ---: " * 13 + "|")
    for level, ours, bare in rows:
        recorded = ours.recorded or 0
        lost = ours.sent - ours.errors - recorded
        ratio = (ours.sent / ours.wall) / (bare.sent / bare.wall)
        print(
            f"| {level} | {ours.sent:,} | {ours.errors} | {recorded:,} | {lost} | "
            f"{ours.figures()} | {bare.figures()} | {bare.errors} | {ratio:.3f} |"
        )


def main() -> int:
    """Start the API and the bare endpoint, send bounded bursts to each in turn, print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--concurrency", default="1,8,16,32")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="per level; stops sending after this")
    parser.add_argument("--api-workers", type=int, default=2, help="`ehrsum api --workers`: one per core")
    parser.add_argument(
        "--ours-from",
        metavar="DIR",
        help="serve our API from another checkout (PYTHONPATH), e.g. the old code",
    )
    args = parser.parse_args()
    rows: list[tuple[int, Level, Level]] = []
    with database() as db_url, tempfile.TemporaryDirectory() as tmp:
        flush_redis()
        env = {
            "EHRSUM_DATABASE_URL": db_url,
            "EHRSUM_BROKER_URL": REDIS_URL,
            "EHRSUM_NOTIFICATION_SECRET": SECRET,
            "EHRSUM_NOTIFICATION_RATE_PER_MINUTE": "100000000",
            "EHRSUM_DEBOUNCE_S": "600",
            "EHRSUM_LOG_LEVEL": "WARNING",
        }
        workers = ["--workers", str(args.api_workers)]
        ours_env = {**env, "PYTHONPATH": args.ours_from} if args.ours_from else env
        api, url = started([str(BIN / "ehrsum"), "api", *workers], ours_env, Path(tmp) / "api.log")
        try:
            bare, bare_url = started(
                [str(BIN / "python"), "-m", "bench.bare_asgi", *workers], env, Path(tmp) / "bare.log"
            )
            try:
                for target in (url, bare_url):
                    asyncio.run(blast(target, 200, 8, "warmup", 30))
                for level in (int(c) for c in args.concurrency.split(",")):
                    run = f"c{level}-{time.time_ns()}"
                    ours = burst(url, args.count, level, run, args.max_seconds)
                    ours.recorded = receipts(db_url, run)
                    # As long as ours took (a burst of a few milliseconds is all noise), not fewer than COUNT.
                    plain = burst(bare_url, args.count * 100, level, run, max(ours.wall, 1.0), args.count)
                    rows.append((level, ours, plain))
            finally:
                stop_group(bare)
        finally:
            stop_group(api)
            flush_redis()
    print_table(args.api_workers, rows, args.ours_from)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
