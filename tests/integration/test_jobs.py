"""Job lifecycle on real Postgres: retries for unreachable servers, then a failure with its reason."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.core.db import session_scope
from services.core.settings import get_settings
from services.jobs.models import JobStatus
from services.jobs.service import create_job, get_job, mark
from tests.conftest import free_port
from workers.jobrunner import run_job

pytestmark = pytest.mark.integration


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.setenv("EHRSUM_JOB_MAX_RETRIES", "2")
    monkeypatch.setenv("EHRSUM_FHIR_MAX_RETRIES", "1")
    monkeypatch.setenv("EHRSUM_LLM_MAX_RETRIES", "0")
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


def run_until_done(job_id: str) -> tuple[JobStatus, list[float]]:
    """Run a job the way the worker does, without sleeping between retries."""
    delays: list[float] = []
    outcome = run_job(job_id)
    while outcome.retry_in is not None:
        delays.append(outcome.retry_in)
        outcome = run_job(job_id)
    return outcome.status, delays


def new_job(patient: str) -> str:
    with session_scope() as session:
        job, _ = create_job(session=session, patient_id=patient, kinds=["progress"])
        return job.id


def test_unreachable_fhir_server_retries_with_backoff_then_fails(
    postgres_db: str, settings_env: pytest.MonkeyPatch
) -> None:
    settings_env.setenv("EHRSUM_FHIR_BASE_URL", f"http://127.0.0.1:{free_port()}/fhir")
    get_settings.cache_clear()
    job_id = new_job("p1")
    status, delays = run_until_done(job_id)
    assert status == JobStatus.failed
    assert delays == sorted(delays) and len(delays) == 2 and delays[1] == 2 * delays[0]
    with session_scope() as session:
        job = get_job(session=session, job_id=job_id)
        assert job.attempts == 3 and job.reason is not None and "unreachable" in job.reason
    # A redelivered message for the failed job does not run it again.
    assert run_job(job_id).status == JobStatus.failed
    with session_scope() as session:
        assert get_job(session=session, job_id=job_id).attempts == 3


def test_unreachable_llm_server_retries_then_fails(
    postgres_db: str, fhir_server: str, loaded_patients: list[str], settings_env: pytest.MonkeyPatch
) -> None:
    settings_env.setenv("EHRSUM_FHIR_BASE_URL", fhir_server)
    settings_env.setenv("EHRSUM_LLM_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    get_settings.cache_clear()
    job_id = new_job(loaded_patients[1])
    status, delays = run_until_done(job_id)
    assert status == JobStatus.failed and len(delays) == 2
    with session_scope() as session:
        assert "LLM server unreachable" in (get_job(session=session, job_id=job_id).reason or "")


def test_a_succeeded_job_is_not_run_again(postgres_db: str) -> None:
    job_id = new_job("p2")
    with session_scope() as session:
        mark(
            session=session,
            job=get_job(session=session, job_id=job_id),
            status=JobStatus.succeeded,
            draft_refs=["DocumentReference/1"],
        )
    assert run_job(job_id).status == JobStatus.succeeded
    with session_scope() as session:
        job = get_job(session=session, job_id=job_id)
        assert job.attempts == 0 and job.draft_refs == ["DocumentReference/1"]


def test_idempotency_key_returns_the_same_job(postgres_db: str) -> None:
    with session_scope() as session:
        first, created = create_job(
            session=session, patient_id="p3", kinds=["progress"], idempotency_key="k-1"
        )
        second, again = create_job(
            session=session, patient_id="p3", kinds=["progress"], idempotency_key="k-1"
        )
    assert created and not again and first.id == second.id
