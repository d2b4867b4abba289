"""Job state changes; keyword-only functions that take a session and commit."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from services.core.errors import NotFoundError
from services.jobs.models import JobStatus, SummaryJob


def create_job(
    *, session: Session, patient_id: str, kinds: list[str], idempotency_key: str | None = None
) -> tuple[SummaryJob, bool]:
    """Insert a queued job and commit; with a known idempotency key, return that job instead."""
    if idempotency_key:
        existing = session.exec(
            select(SummaryJob).where(SummaryJob.idempotency_key == idempotency_key)
        ).first()
        if existing is not None:
            return existing, False
    job = SummaryJob(patient_id=patient_id, kinds=kinds, idempotency_key=idempotency_key)
    session.add(job)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        existing = session.exec(select(SummaryJob).where(SummaryJob.idempotency_key == idempotency_key)).one()
        return existing, False
    session.refresh(job)
    return job, True


def get_job(*, session: Session, job_id: str) -> SummaryJob:
    """Load a job or raise NotFoundError."""
    job = session.get(SummaryJob, job_id)
    if job is None:
        raise NotFoundError(f"job {job_id} not found")
    return job


def mark(
    *,
    session: Session,
    job: SummaryJob,
    status: JobStatus,
    reason: str | None = None,
    draft_refs: list[str] | None = None,
    report: dict[str, Any] | None = None,
) -> SummaryJob:
    """Move a job to a status (and record why), then commit."""
    now = datetime.now(UTC)
    job.status = status
    job.reason = reason
    job.updated_at = now
    if status == JobStatus.running:
        job.attempts += 1
    if draft_refs is not None:
        job.draft_refs = draft_refs
    if report is not None:
        job.report = report
    job.finished_at = now if status in (JobStatus.succeeded, JobStatus.failed) else None
    session.add(job)
    session.commit()
    session.refresh(job)
    return job
