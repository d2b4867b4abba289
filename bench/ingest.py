#!/usr/bin/env python3
"""Ingest: rest-hook notifications per second into the real webhook beside a bare ASGI endpoint (a table).

.venv/bin/python bench/ingest.py [--count 3000] [--concurrency 1,8,16,32] [--rounds 1] [--api-workers 2]
    [--before DIR]

Loopback only and bounded: COUNT notifications per burst, each a distinct Encounter version for one of
100 patients, against `ehrsum api --workers N` (uvicorn; one process per core) backed by a throwaway
Postgres database and Redis db 13. Lost = sent minus rows in notification_receipt (each accepted event
is recorded once). Each burst is followed by one, as long as it took (at least COUNT), to a bare ASGI
endpoint (`bench/bare_asgi.py`: reads the body, answers 200) that uvicorn serves with the same server
settings and worker count, so both see the same background load; the ratio API/bare of notifications
per second is what the target is set on (the median over ROUNDS). CPU ms each is the CPU time of the
server's processes (one process group) per request, which background load hardly moves. `--before DIR`
serves a second API
from another checkout (PYTHONPATH, e.g. an export of main) on the same database, its bursts in turn
with ours. The load generator (a bare asyncio HTTP/1.1 client, one keep-alive connection per request in
flight) runs on the same 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import median

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
from deploy.processes import answering


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
    recorded: int = 0  # an API's only: rows in notification_receipt
    cpu: float = 0.0  # CPU seconds the server's processes used meanwhile

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.sent / self.wall


def cpu_seconds(group: int) -> float:
    """CPU seconds (user and system) used so far by the live processes of a process group (Linux /proc)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[2]) == group:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def burst(
    server: tuple[int, str], count: int, level: int, run: str, seconds: float, at_least: int = 0
) -> Level:
    """`count` requests to a server (process group, URL), stopping past `seconds` once `at_least` are sent."""
    group, url = server
    before = cpu_seconds(group)
    latencies, errors, wall = asyncio.run(blast(url, count, level, run, seconds, at_least))
    return Level(len(latencies), errors, wall, latencies, cpu=cpu_seconds(group) - before)


def started(command: list[str], env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A server on a free loopback port, answering; the process and its base URL."""
    port = free_port()
    proc = spawn([*command, "--port", str(port)], env, log)
    url = f"http://127.0.0.1:{port}"
    answering(proc, f"{url}/healthz", 60, log, halt=stop_group)
    return proc, url


def row(level: int, code: str, rounds: list[tuple[Level, Level]]) -> str:
    """One API at one level: medians of its rounds' rates and ratios to bare, percentiles of all latencies."""
    ours = [o for o, _ in rounds]
    sent, errors, recorded = (sum(getattr(o, f) for o in ours) for f in ("sent", "errors", "recorded"))
    ms = [x * 1000 for o in ours for x in o.latencies]
    bare_ms = [x * 1000 for _, b in rounds for x in b.latencies]
    bare_sent = sum(b.sent for _, b in rounds)
    return (
        f"| {level} | {code} | {sent:,} | {errors} | {recorded:,} | {sent - errors - recorded} | "
        f"{median(o.rate for o in ours):,.0f} | {percentile(ms, 50):.1f} | {percentile(ms, 99):.1f} | "
        f"{median(b.rate for _, b in rounds):,.0f} | {percentile(bare_ms, 99):.1f} | "
        f"{sum(b.errors for _, b in rounds)} | {median(o.rate / b.rate for o, b in rounds):.3f} | "
        f"{1000 * sum(o.cpu for o in ours) / sent:.2f} | "
        f"{1000 * sum(b.cpu for _, b in rounds) / bare_sent:.2f} |"
    )


def main() -> int:
    """Start the API(s) and the bare endpoint, send bounded bursts to each in turn, print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--concurrency", default="1,8,16,32")
    parser.add_argument("--rounds", type=int, default=1, help="bursts per level and API, interleaved")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="per burst; stops sending after this")
    parser.add_argument("--api-workers", type=int, default=2, help="`ehrsum api --workers`: one per core")
    parser.add_argument(
        "--before",
        metavar="DIR",
        help="also serve the API from another checkout (e.g. main), in turn with ours",
    )
    args = parser.parse_args()
    codes: dict[str, str | None] = {"ours": None, **({"before": args.before} if args.before else {})}
    rows: list[str] = []
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
        commands = {code: [str(BIN / "ehrsum"), "api", *workers] for code in codes}
        commands["bare"] = [str(BIN / "python"), "-m", "bench.bare_asgi", *workers]
        procs: list[subprocess.Popen[bytes]] = []
        servers: dict[str, tuple[int, str]] = {}  # process group (its own session), URL
        try:
            for code, command in commands.items():
                path = codes.get(code)
                proc, url = started(
                    command, {**env, "PYTHONPATH": path} if path else env, Path(tmp) / f"{code}.log"
                )
                procs.append(proc)
                servers[code] = (proc.pid, url)
                asyncio.run(blast(url, 200, 8, "warmup", 30))
            for level in (int(c) for c in args.concurrency.split(",")):
                done: dict[str, list[tuple[Level, Level]]] = {code: [] for code in codes}
                for _ in range(args.rounds):
                    for code in codes:
                        run = f"{code}-c{level}-{time.time_ns()}"
                        ours = burst(servers[code], args.count, level, run, args.max_seconds)
                        ours.recorded = receipts(db_url, run)
                        # As long as the API took (a burst of milliseconds is noise), not fewer than COUNT.
                        bare = burst(
                            servers["bare"], args.count * 100, level, run, max(ours.wall, 1), args.count
                        )
                        done[code].append((ours, bare))
                rows += [row(level, code, done[code]) for code in codes]
        finally:
            for proc in procs:
                stop_group(proc)
            flush_redis()
    print(
        "Ingest: rest-hook Encounter notifications into POST /v1/notifications, "
        f"{args.api_workers} uvicorn process(es), each burst beside one to a bare ASGI endpoint served alike"
    )
    print("Postgres + Redis on loopback; load generator on the same 2-core machine")
    if args.before:
        print(f"before: the API served from {args.before}")
    print(
        "\n| in flight | API | sent | non-200 | recorded | lost | per s | p50 ms | p99 ms "
        "| bare per s | bare p99 ms | bare non-200 | API/bare | API CPU ms each | bare CPU ms each |"
    )
    print("| ---: | :--- " + "| ---: " * 13 + "|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
