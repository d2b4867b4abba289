"""`ehrsum retry` and `ehrsum sweep` as an operator runs them, on the real database and broker."""

from __future__ import annotations

import json
import subprocess

import pytest

from services.core.db import session_scope
from services.jobs.models import JobStatus
from services.jobs.service import create_job, get_job, mark
from tests.conftest import BIN, REPO, _env

pytestmark = pytest.mark.e2e


def ehrsum(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "ehrsum"), *args], capture_output=True, text=True, env=_env(), cwd=REPO, check=False
    )


def job_in(status: JobStatus, patient: str) -> str:
    with session_scope() as session:
        job, _ = create_job(session=session, patient_id=patient, kinds=["progress"])
        if status != JobStatus.queued:
            job.attempts = 3
            mark(session=session, job=job, status=status, reason="LLM server unreachable (ConnectError)")
        return job.id


def test_retry_queues_failed_jobs_with_a_fresh_budget(postgres_db: str, redis_broker: str) -> None:
    failed, done = job_in(JobStatus.failed, "cli-1"), job_in(JobStatus.succeeded, "cli-2")
    answer = ehrsum("retry", failed)
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout) == {"retried": [failed]}
    with session_scope() as session:
        job = get_job(session=session, job_id=failed)
    # Reset to a fresh budget and queued; a session-wide worker may already have claimed it once since.
    assert (job.status, job.attempts, job.reason) == (JobStatus.queued, 0, None) or (
        job.attempts == 1 and job.reason != "LLM server unreachable (ConnectError)"
    ), job
    refused = ehrsum("retry", done)
    assert refused.returncode == 1 and refused.stderr.strip().count("\n") == 0
    assert "only failed jobs are retried" in refused.stderr


def test_retry_failed_since_takes_every_recent_failure(postgres_db: str, redis_broker: str) -> None:
    failed = [job_in(JobStatus.failed, f"cli-since-{n}") for n in range(2)]
    answer = ehrsum("retry", "--failed-since", "1")
    assert answer.returncode == 0, answer.stderr
    assert set(failed) <= set(json.loads(answer.stdout)["retried"])


def test_retry_without_jobs_is_one_line_and_exit_2(postgres_db: str) -> None:
    answer = ehrsum("retry")
    assert answer.returncode == 2 and answer.stderr.startswith("ehrsum: error:")
    assert answer.stderr.strip().count("\n") == 0


def test_sweep_prints_what_it_queued(postgres_db: str, redis_broker: str) -> None:
    answer = ehrsum("sweep")
    assert answer.returncode == 0, answer.stderr
    assert set(json.loads(answer.stdout)) == {"requeued", "taken_over", "still_queued"}
