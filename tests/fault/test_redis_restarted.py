"""Redis restarted under queued jobs: the sweeper queues what the broker lost; none lost, none run twice."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from deploy.processes import stop
from tests.conftest import free_port, start_api
from tests.fault.conftest import SWEEPER_ENV, Workers, job, submit, succeeded_with_one_draft_each, wait_until


class RedisServer:
    """A private redis-server on a free port that keeps nothing on disk, so a restart loses every message."""

    def __init__(self, workdir: Path):
        self.port, self.workdir = free_port(), workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The broker URL of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it empty and wait until it answers."""
        command = [shutil.which("redis-server") or "redis-server", "--port", str(self.port)]
        command += ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        wait_until(lambda: _pings(client), 20, "redis-server answering")

    def kill(self) -> None:
        """SIGKILL it: everything it held is gone."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, to restart at will."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


def test_redis_restarted_with_jobs_queued(
    auth: dict[str, str],
    fhir_server: str,
    small_files: list[Path],
    workers: Workers,
    private_redis: RedisServer,
    tmp_path: Path,
) -> None:
    """One job running, one waiting on the broker, Redis restarted empty, one submitted while it is down."""
    from deploy import patients

    started = time.monotonic()
    workers.env.update(EHRSUM_BROKER_URL=private_redis.url)
    api_proc, api = start_api(tmp_path / "api.log", **SWEEPER_ENV, **workers.env)
    workers.start_beat()
    try:
        pids = [patients.load(fhir_server, path) for path in small_files]
        workers.start()
        running, waiting = submit(api, auth, pids[0]), submit(api, auth, pids[1])
        wait_until(lambda: job(api, auth, running)["status"] == "running", 120, "the first job running")
        assert job(api, auth, waiting)["status"] == "queued"

        private_redis.kill()  # the waiting job's message, and the running one's unacked copy, are gone
        during = submit(api, auth, pids[2])  # accepted while the broker is down: durable, queued later
        assert job(api, auth, during)["status"] == "queued"
        time.sleep(3)
        private_redis.start()
        restarted_s = time.monotonic() - started

        jobs = {running: pids[0], waiting: pids[1], during: pids[2]}

        succeeded_with_one_draft_each(api, auth, fhir_server, jobs, 300)
        for job_id in jobs:
            answer = job(api, auth, job_id)
            assert answer["attempts"] == 1, answer  # none ran twice
        swept = workers.lines("sweeper queued")
        assert swept, "the sweeper never queued a lost job"
        print(
            f"\nRedis restarted empty with 1 job running and 1 waiting, 1 submitted while it was down: "
            f"all 3 succeeded with one draft and one attempt each; sweeps that queued jobs: {len(swept)}; "
            f"restart at {restarted_s:.0f} s, total {time.monotonic() - started:.0f} s"
        )
    finally:
        stop(api_proc)
