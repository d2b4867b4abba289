"""Shared helpers for the benchmarks: a throwaway Postgres database, a Redis db, API and worker processes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PG_ADMIN_URL = os.environ.get("EHRSUM_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("EHRSUM_BENCH_REDIS", "redis://127.0.0.1:6379/13")
SECRET = "bench-notification-secret"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def database() -> Iterator[str]:
    """A fresh Postgres database with our tables; dropped afterwards."""
    from sqlalchemy import create_engine, text

    name = f"ehrsum_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        subprocess.run(
            [str(BIN / "ehrsum"), "init-db"],
            env={**os.environ, "EHRSUM_DATABASE_URL": url},
            check=True,
            cwd=REPO,
        )
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def flush_redis(url: str = REDIS_URL) -> None:
    """Empty the benchmark's Redis db."""
    import redis

    redis.Redis.from_url(url).flushdb()


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start one of our processes (its own process group) with output to `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(
            args,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
            start_new_session=True,
        )


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM a process group, SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


async def served_resources(fhir_url: str, patient: str) -> list[dict[str, Any]]:
    """Every resource the server's $everything holds for a patient, unfiltered: the record as it is served."""
    import httpx

    async with httpx.AsyncClient(timeout=120) as client:
        bundle = (await client.get(f"{fhir_url}/Patient/{patient}/$everything")).json()
    return [e["resource"] for e in bundle.get("entry", [])]


@contextlib.contextmanager
def sekmet(tmp: Path) -> Iterator[str]:
    """A sekmet-fhir server under `tmp` on a free port; its base URL."""
    from deploy import fhir_server
    from deploy.processes import stop

    port = free_port()
    proc = fhir_server.start(tmp / "fhir", port)
    try:
        yield fhir_server.base_url(port)
    finally:
        stop(proc)
