"""Celery tasks: thin, idempotent, take ids."""

from __future__ import annotations

from typing import Any

from workers.celery_app import celery_app
from workers.jobrunner import run_job


@celery_app.task(name="workers.tasks.summarize", bind=True, acks_late=True, max_retries=None)  # type: ignore[untyped-decorator]
def summarize(self: Any, job_id: str) -> str:
    """Run a SummaryJob; retry later when it failed transiently."""
    outcome = run_job(job_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status.value
