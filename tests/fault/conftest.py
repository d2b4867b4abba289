"""Fault-injection fixtures: our own worker processes, FHIR server and LLM relay, so tests can kill them."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.processes import stop
from deploy.processes import wait_for as wait_until
from tests.conftest import BIN, CACHE, REDIS_URL, REPO, _env
from tests.support.redis_db import FAULT_SESSION_DBS, claim_redis_db

# Set before any fixture starts a process: this whole session's broker (the API, the workers).
os.environ["EHRSUM_BROKER_URL"] = claim_redis_db(REDIS_URL, FAULT_SESSION_DBS)

# Visibility timeout of the broker for the workers these tests start. The service derives it from
# EHRSUM_LLM_TIMEOUT_S x 3 (30 min by default) and has no setting of its own; a whole-worker SIGKILL
# is only redelivered after it, so the kill test shortens it in the worker process (see WORKER_BOOT).
# Short, it also redelivers messages that are merely slow (a retry's countdown, a long LLM call): the
# duplicates are harmless for succeeded jobs, so only the kill test uses it. The restore scan runs under a
# Redis mutex that expires after 300 s by default: a worker killed inside the scan would stall every
# restore for longer than the test waits, so it expires as fast as the visibility timeout here.
VISIBILITY_TIMEOUT_S = 5
WORKER_BOOT = (
    "import sys\n"
    "from workers.celery_app import celery_app\n"
    "celery_app.conf.broker_transport_options = {{'visibility_timeout': {vt}, "
    "'unacked_restore_interval': 1, 'unacked_restore_throttle': 1, 'unacked_mutex_expire': {vt}}}\n"
    "from services.cli import main\n"
    "sys.exit(main(['worker', '--pool', 'prefork', '--concurrency', '1']))\n"
)


# Seconds, short so the tests wait little: how often beat runs the sweeper, and how long a queued job may
# go unstarted before the sweeper checks the broker for it. Workers run the sweeps, so they get them too.
SWEEPER_ENV = {"EHRSUM_SWEEP_INTERVAL_S": "2", "EHRSUM_JOB_REQUEUE_AFTER_S": "4", "EHRSUM_POLLING": "off"}

PLAIN_BOOT = (
    "import sys\n"
    "from services.cli import main\n"
    "sys.exit(main(['worker', '--pool', 'prefork', '--concurrency', '1']))\n"
)


@dataclass
class Workers:
    """Celery worker processes started by a test; each is its own process group."""

    logdir: Path
    env: dict[str, str] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, short_visibility: bool = False, **overrides: str) -> subprocess.Popen[bytes]:
        """Start one worker (prefork, one pool process) with the test env plus `overrides`."""
        boot = WORKER_BOOT.format(vt=VISIBILITY_TIMEOUT_S) if short_visibility else PLAIN_BOOT
        log = self.logdir / f"worker-{len(self.procs)}.log"
        return self._spawn([str(BIN / "python"), "-c", boot], log, overrides)

    def start_beat(self, **overrides: str) -> subprocess.Popen[bytes]:
        """Start `ehrsum beat` (the sweeper and the other schedules) with the test env plus `overrides`."""
        data = {"EHRSUM_DATA_DIR": str(self.logdir / "beat")}
        return self._spawn([str(BIN / "ehrsum"), "beat"], self.logdir / "beat.log", {**data, **overrides})

    def _spawn(self, argv: list[str], log: Path, overrides: dict[str, str]) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv,
                env={**_env(), **SWEEPER_ENV, **self.env, **overrides},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=REPO,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def kill_group(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL a worker and its pool children at once (a host or container dying)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def lines(self, containing: str) -> list[str]:
        """The lines of every worker's output so far that contain `containing`."""
        logs = [p.read_text(errors="replace") for p in sorted(self.logdir.glob("worker-*.log"))]
        return [line for log in logs for line in log.splitlines() if containing in line]

    def stop_all(self) -> None:
        """Stop every worker this test started."""
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=20)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    self.kill_group(proc)


def pool_children(proc: subprocess.Popen[bytes]) -> list[int]:
    """Pids of a worker's pool processes: the children of any of its threads (the pool forks a replacement
    for a killed process from its supervisor thread, not the main one)."""
    pids: list[int] = []
    for children in Path(f"/proc/{proc.pid}/task").glob("*/children"):
        try:
            pids += [int(p) for p in children.read_text().split()]
        except OSError:
            continue  # a thread that ended while read
    return pids


@pytest.fixture
def workers(stack: dict[str, str], tmp_path: Path) -> Iterator[Workers]:
    """Start and kill real `ehrsum` workers in a test; all stopped at the end."""
    started = Workers(tmp_path)
    yield started
    started.stop_all()


@pytest.fixture(scope="session")
def small_files() -> list[Path]:
    """Three small seeded carebundle records (cached), so loads and fetches take well under a second."""
    from deploy import patients

    return patients.cached("carebundle", 3, 7, CACHE / "patients")


def submit(api: str, auth: dict[str, str], patient: str, kinds: list[str] | None = None) -> str:
    """POST /v1/summaries; the new job's id."""
    body = {"patient": patient, "kinds": kinds or ["progress"]}
    answer = httpx.post(f"{api}/v1/summaries", json=body, headers=auth, timeout=30)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def job(api: str, auth: dict[str, str], job_id: str) -> dict[str, Any]:
    """GET /v1/summaries/{id}."""
    answer = httpx.get(f"{api}/v1/summaries/{job_id}", headers=auth, timeout=30)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def drafts_of(fhir: str, patient: str) -> list[str]:
    """Our draft DocumentReferences for a patient on the FHIR server."""
    from fhir_adapters.labels import DRAFT_IDENTIFIER_SYSTEM

    bundle = httpx.get(
        f"{fhir}/DocumentReference", params={"subject": f"Patient/{patient}"}, timeout=30
    ).json()
    found = []
    for entry in bundle.get("entry", []):
        resource = entry["resource"]
        if any(i.get("system") == DRAFT_IDENTIFIER_SYSTEM for i in resource.get("identifier", [])):
            found.append(f"DocumentReference/{resource['id']}")
    return found


def succeeded_with_one_draft_each(
    api: str,
    auth: dict[str, str],
    fhir: str,
    jobs: dict[str, str],
    stall_s: float,
    check: Callable[[], None] | None = None,
) -> None:
    """Wait until every job (id -> patient) succeeded, failing at once when one failed, or when for
    `stall_s` no job finished and no draft was written (a slow shared machine still progresses; a stuck or
    livelocked job does not); then each patient has exactly one draft per kind its job asked for on the
    FHIR server: the ones its job reports. However steady the progress, it gives up after 4 x `stall_s`."""
    progress: tuple[int, int] = (-1, -1)
    began = stalled_since = time.monotonic()
    while True:
        if check is not None:
            check()
        answers = [job(api, auth, j) for j in jobs]
        states = [a["status"] for a in answers]
        assert "failed" not in states, answers
        if all(s == "succeeded" for s in states):
            break
        now = (states.count("succeeded"), sum(len(drafts_of(fhir, p)) for p in set(jobs.values())))
        if now != progress:
            progress, stalled_since = now, time.monotonic()
        states_now = [(a["status"], a["attempts"], a["reason"]) for a in answers]
        assert time.monotonic() - stalled_since < stall_s, (
            f"no job finished and no draft was written for {stall_s:.0f} s: {states_now}"
        )
        assert time.monotonic() - began < 4 * stall_s, f"not all done in {4 * stall_s:.0f} s: {states_now}"
        time.sleep(1.0)
    for job_id, patient in jobs.items():
        found, answer = drafts_of(fhir, patient), job(api, auth, job_id)
        assert len(found) == len(answer["kinds"]), (patient, answer["kinds"], found)
        assert sorted(answer["draft_refs"]) == sorted(found), (answer["draft_refs"], found)
        # A draft an earlier attempt wrote is reported with the verification it carries, like a new one.
        assert sorted(answer["report"] or {}) == sorted(answer["kinds"]), (answer["kinds"], answer["report"])


class TcpRelay:
    """A loopback TCP relay on a fixed port: up, the LLM answers through it; down, nothing listens."""

    def __init__(self, port: int, upstream: tuple[str, int]):
        self.port, self.upstream = port, upstream
        self.sock: socket.socket | None = None
        self.conns: list[socket.socket] = []

    def start(self) -> TcpRelay:
        """Listen and relay in background threads."""
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        self.sock = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()
        return self

    def _accept(self, sock: socket.socket) -> None:
        while True:
            try:
                client, _ = sock.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            self.conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        """Stop listening and cut every open connection."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        for conn in self.conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            except OSError:
                pass
        self.conns = []


__all__ = [
    "TcpRelay",
    "Workers",
    "drafts_of",
    "job",
    "pool_children",
    "stop",
    "submit",
    "succeeded_with_one_draft_each",
    "wait_until",
]
