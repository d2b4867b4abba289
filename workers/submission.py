"""The one way in for a job: create it (idempotent under a key), commit, then queue it; and the one way a
failed job runs again. The API, the CLI, notifications, polling and census runs all come through here."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from services.jobs.models import SummaryJob
from services.jobs.service import create_job, reset_failed
from workers.queueing import queue_job


@dataclass(frozen=True)
class Submitted:
    """The job, whether this call made it (else an earlier call with the same key did), whether the
    broker took its message (else the next sweep queues it)."""

    job: SummaryJob
    created: bool
    on_broker: bool


def submit(
    *,
    session: Session,
    patient_id: str,
    kinds: list[str],
    idempotency_key: str | None = None,
    encounter_id: str | None = None,
) -> Submitted:
    """Create a job (for one encounter of the patient when given) and queue it once committed; with a known
    idempotency key, that job as it is."""
    job, created = create_job(
        session=session,
        patient_id=patient_id,
        kinds=kinds,
        idempotency_key=idempotency_key,
        encounter_id=encounter_id,
    )
    on_broker = queue_job(session=session, job=job) if created else False
    return Submitted(job, created, on_broker)


def resubmit(*, session: Session, job_id: str) -> SummaryJob:
    """Queue a failed job again with a fresh retry budget (ConflictError for a job that has not failed)."""
    job = reset_failed(session=session, job_id=job_id)
    queue_job(session=session, job=job)
    return job
