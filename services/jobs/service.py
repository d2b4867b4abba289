"""Job state changes; keyword-only functions that take a session and commit."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from services.core import tracing
from services.core.errors import ConflictError, InputMismatch, NotFoundError
from services.core.settings import get_settings
from services.jobs.models import JobStatus, SummaryJob

FINISHED = (JobStatus.succeeded, JobStatus.failed)


def _now() -> datetime:
    return datetime.now(UTC)


def requeue_check_at(delay_s: float = 0.0) -> datetime:
    """When the sweeper should check on a job queued now to start in `delay_s` seconds."""
    return _now() + timedelta(seconds=delay_s + get_settings().job_requeue_after_s)


def caller_key(caller: str, key: str) -> str:
    """An API caller's Idempotency-Key, scoped to that caller: another caller's same key is another key."""
    return "api:" + hashlib.sha256(f"{caller}\0{key}".encode()).hexdigest()


def _same_request(
    job: SummaryJob, patient_id: str, kinds: list[str], encounter_id: str | None = None
) -> SummaryJob:
    """The job made under an idempotency key, if this request is the one it was made for."""
    if job.patient_id != patient_id or sorted(job.kinds) != sorted(kinds) or job.encounter_id != encounter_id:
        raise InputMismatch("Idempotency-Key already used for a different request")
    return job


def create_job(
    *,
    session: Session,
    patient_id: str,
    kinds: list[str],
    idempotency_key: str | None = None,
    encounter_id: str | None = None,
) -> tuple[SummaryJob, bool]:
    """Insert a queued job and commit; with a known idempotency key, that job instead (InputMismatch when
    the key was used for another patient or kinds)."""
    if idempotency_key:
        existing = session.exec(
            select(SummaryJob).where(SummaryJob.idempotency_key == idempotency_key)
        ).first()
        if existing is not None:
            return _same_request(existing, patient_id, kinds, encounter_id), False
    job = SummaryJob(
        patient_id=patient_id,
        kinds=kinds,
        encounter_id=encounter_id,
        idempotency_key=idempotency_key,
        lease_until=requeue_check_at(),
    )
    # The job's trace: under the caller's span (an API request), else one of its own; every attempt
    # continues it from here, whichever worker or sweep runs it.
    with tracing.span("job submit", {"ehrsum.job.id": job.id, "ehrsum.job.kinds": kinds}):
        job.traceparent = tracing.current_traceparent()
        job.trace_id = tracing.trace_id_of(job.traceparent)
    session.add(job)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        existing = session.exec(select(SummaryJob).where(SummaryJob.idempotency_key == idempotency_key)).one()
        return _same_request(existing, patient_id, kinds, encounter_id), False
    session.refresh(job)
    return job, True


def get_job(*, session: Session, job_id: str) -> SummaryJob:
    """Load a job or raise NotFoundError."""
    job = session.get(SummaryJob, job_id)
    if job is None:
        raise NotFoundError(f"job {job_id} not found")
    return job


def claim_job(*, session: Session, job_id: str, lease_s: float) -> SummaryJob | None:
    """Atomically take a queued job, or a running one whose lease lapsed; None when it is not ours to run."""
    now = _now()
    claimed = session.execute(
        update(SummaryJob)
        .where(
            col(SummaryJob.id) == job_id,
            or_(
                col(SummaryJob.status) == JobStatus.queued,
                (col(SummaryJob.status) == JobStatus.running) & (col(SummaryJob.lease_until) < now),
            ),
        )
        .values(
            status=JobStatus.running,
            attempts=col(SummaryJob.attempts) + 1,
            lease_until=now + timedelta(seconds=lease_s),
            updated_at=now,
            finished_at=None,
        )
        .returning(col(SummaryJob.id))
    ).first()
    session.commit()
    return get_job(session=session, job_id=job_id) if claimed else None


def renew_lease(*, session: Session, job_id: str, attempt: int, lease_s: float) -> bool:
    """Extend a running job's lease; False when this attempt no longer holds the job."""
    renewed = session.execute(
        update(SummaryJob)
        .where(
            col(SummaryJob.id) == job_id,
            col(SummaryJob.status) == JobStatus.running,
            col(SummaryJob.attempts) == attempt,
        )
        .values(lease_until=_now() + timedelta(seconds=lease_s))
        .returning(col(SummaryJob.id))
    ).first()
    session.commit()
    return renewed is not None


def held_by(*, session: Session, job_id: str, attempt: int) -> SummaryJob | None:
    """The job, locked for the rest of the transaction, when `attempt` still holds it."""
    job = session.exec(select(SummaryJob).where(SummaryJob.id == job_id).with_for_update()).first()
    if job is None or job.status != JobStatus.running or job.attempts != attempt:
        session.rollback()
        return None
    return job


def lapsed_jobs(*, session: Session, limit: int) -> list[SummaryJob]:
    """Queued or running jobs past their lease, oldest first, locked (others' locked rows are skipped)."""
    query = (
        select(SummaryJob)
        .where(
            col(SummaryJob.status).in_([JobStatus.queued, JobStatus.running]),
            col(SummaryJob.lease_until) < _now(),
        )
        .order_by(col(SummaryJob.lease_until))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.exec(query).all())


def mark(
    *,
    session: Session,
    job: SummaryJob,
    status: JobStatus,
    reason: str | None = None,
    draft_refs: list[str] | None = None,
    report: dict[str, Any] | None = None,
    start_in_s: float = 0.0,
) -> SummaryJob:
    """Record a queued or finished job's status (and why), then commit; `claim_job` starts a run."""
    now = _now()
    job.status = status
    job.reason = reason
    job.updated_at = now
    if draft_refs is not None:
        job.draft_refs = draft_refs
    if report is not None:
        job.report = report
    job.finished_at = now if status in FINISHED else None
    job.lease_until = requeue_check_at(start_in_s) if status == JobStatus.queued else None
    session.add(job)
    session.commit()
    session.refresh(job)
    return job


def reset_failed(*, session: Session, job_id: str) -> SummaryJob:
    """Set a failed job back to queued with a fresh retry budget; ConflictError for any other status."""
    job = get_job(session=session, job_id=job_id)
    if job.status != JobStatus.failed:
        raise ConflictError(f"job {job_id} is {job.status.value}; only failed jobs are retried")
    job.attempts = 0
    return mark(session=session, job=job, status=JobStatus.queued)


def failed_since(*, session: Session, since: datetime) -> list[str]:
    """Ids of the jobs that failed at or after `since`, oldest first."""
    query = (
        select(SummaryJob.id)
        .where(SummaryJob.status == JobStatus.failed, col(SummaryJob.finished_at) >= since)
        .order_by(col(SummaryJob.finished_at))
    )
    return list(session.exec(query).all())
