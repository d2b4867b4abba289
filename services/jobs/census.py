"""Census runs: a population summarized as one SummaryJob per patient, and its progress.

A member's job carries an idempotency key made of the run label, the patient and the kinds, so a census
run again with the same label finds the jobs of the last one: those that succeeded are skipped, those
that failed are retried, those still queued or running are waited on.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, Session, SQLModel, col, func, select

from services.core.errors import NotFoundError
from services.jobs.models import JobStatus, SummaryJob, _now

MAX_FAILURES_SHOWN = 100


class CensusStatus(StrEnum):
    """Where a census stands."""

    resolving = "resolving"
    running = "running"
    finished = "finished"
    failed = "failed"


class Census(SQLModel, table=True):
    """One census run: its population's source, the kinds asked for, and how it went."""

    __tablename__ = "census"

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    source: str = Field(max_length=200, description='"Group/{id}", "Location/{id}" or "ids".')
    kinds: list[str] = Field(sa_column=Column(JSON, nullable=False))
    run: str = Field(max_length=64, description="The run label: the same label resumes a census.")
    concurrency: int = 4
    driver: str = Field(
        default="cli", max_length=8, description="Who steps it: cli (the command itself) or worker (Celery)."
    )
    status: CensusStatus = Field(default=CensusStatus.resolving, index=True)
    reason: str | None = None
    resolved_by: str | None = Field(
        default=None, max_length=32, description="read, search, bulk export, list"
    )
    total: int = 0
    created_at: datetime = Field(default_factory=_now)
    updated_at: datetime = Field(default_factory=_now)
    finished_at: datetime | None = None


class CensusMember(SQLModel, table=True):
    """A patient of a census, and the job that summarizes them once submitted."""

    __tablename__ = "census_member"

    census_id: str = Field(foreign_key="census.id", primary_key=True, max_length=36)
    patient_id: str = Field(primary_key=True, max_length=64)
    position: int
    job_id: str | None = Field(default=None, index=True, max_length=36)
    skipped: bool = Field(
        default=False, description="Its job had already succeeded when this run reached it."
    )


class CensusFailure(SQLModel):
    """A member whose job failed, and why (ids and the failure only, no PHI)."""

    patient: str
    job_id: str
    reason: str | None


class CensusPublic(SQLModel):
    """A census and its progress."""

    id: str
    source: str
    kinds: list[str]
    run: str
    concurrency: int
    status: CensusStatus
    reason: str | None
    resolved_by: str | None
    total: int
    pending: int = Field(description="Members not submitted yet.")
    queued: int
    running: int
    succeeded: int = Field(description="Succeeded in this run (skipped members not counted).")
    skipped: int = Field(description="Succeeded in an earlier run with the same label and kinds.")
    failed: int
    drafts_written: int
    failures: list[CensusFailure]
    created_at: datetime
    finished_at: datetime | None
    elapsed_s: float
    eta_s: float | None = Field(description="Seconds left at the pace so far; null until a job finished.")


def member_job_key(run: str, patient_id: str, kinds: list[str]) -> str:
    """The idempotency key of a census member's job: the same run label, patient and kinds, the same job."""
    raw = "\0".join([run, patient_id, ",".join(sorted(kinds))])
    return "census:" + hashlib.sha256(raw.encode()).hexdigest()


def create_census(
    *, session: Session, source: str, kinds: list[str], run: str, concurrency: int, driver: str
) -> Census:
    """Insert a census waiting for its members; commit."""
    census = Census(source=source, kinds=kinds, run=run, concurrency=concurrency, driver=driver)
    session.add(census)
    session.commit()
    session.refresh(census)
    return census


def get_census(*, session: Session, census_id: str, lock: bool = False) -> Census:
    """Load a census (locked for the transaction with `lock`) or raise NotFoundError."""
    query = select(Census).where(Census.id == census_id)
    census = session.exec(query.with_for_update() if lock else query).first()
    if census is None:
        raise NotFoundError(f"census {census_id} not found")
    return census


def set_members(*, session: Session, census: Census, patient_ids: list[str], resolved_by: str) -> Census:
    """Record the population (each patient once, in order) and start the census; commit."""
    unique = list(dict.fromkeys(patient_ids))
    for position, patient_id in enumerate(unique):
        session.add(CensusMember(census_id=census.id, patient_id=patient_id, position=position))
    census.total = len(unique)
    census.resolved_by = resolved_by
    census.status = CensusStatus.running if unique else CensusStatus.finished
    census.finished_at = None if unique else _now()
    census.updated_at = _now()
    session.add(census)
    session.commit()
    session.refresh(census)
    return census


def fail_census(*, session: Session, census: Census, reason: str) -> Census:
    """A census whose population could not be found; commit."""
    census.status = CensusStatus.failed
    census.reason = reason
    census.finished_at = census.updated_at = _now()
    session.add(census)
    session.commit()
    session.refresh(census)
    return census


def worker_driven_open(*, session: Session) -> list[str]:
    """Ids of the censuses Celery steps that are not finished."""
    query = select(Census.id).where(
        Census.driver == "worker",
        col(Census.status).in_([CensusStatus.resolving, CensusStatus.running]),
    )
    return list(session.exec(query).all())


def in_flight(*, session: Session, census_id: str) -> int:
    """Members whose job is queued or running."""
    query = (
        select(func.count())
        .select_from(CensusMember)
        .join(SummaryJob, col(SummaryJob.id) == col(CensusMember.job_id))
        .where(
            CensusMember.census_id == census_id,
            col(SummaryJob.status).in_([JobStatus.queued, JobStatus.running]),
        )
    )
    return int(session.exec(query).one())


def pending_members(*, session: Session, census_id: str, limit: int) -> list[CensusMember]:
    """The next members not yet submitted, in the population's order."""
    if limit <= 0:
        return []
    query = (
        select(CensusMember)
        .where(CensusMember.census_id == census_id, col(CensusMember.job_id).is_(None))
        .order_by(col(CensusMember.position))
        .limit(limit)
    )
    return list(session.exec(query).all())


def progress(*, session: Session, census: Census) -> CensusPublic:
    """Counts by state, drafts written, failures with their reasons, time so far and left; finishes the
    census (commit) when every member's job has finished."""
    rows = session.exec(
        select(CensusMember, SummaryJob)
        .join(SummaryJob, col(SummaryJob.id) == col(CensusMember.job_id), isouter=True)
        .where(CensusMember.census_id == census.id)
        .order_by(col(CensusMember.position))
    ).all()
    counts: dict[str, Any] = dict.fromkeys(
        ("pending", "queued", "running", "succeeded", "skipped", "failed"), 0
    )
    drafts = 0
    failures: list[CensusFailure] = []
    for member, job in rows:
        if job is None:
            counts["pending"] += 1
        elif member.skipped:
            counts["skipped"] += 1
        else:
            counts[job.status.value] += 1
            if job.status == JobStatus.succeeded:
                drafts += len(job.draft_refs)
            elif job.status == JobStatus.failed and len(failures) < MAX_FAILURES_SHOWN:
                failures.append(CensusFailure(patient=member.patient_id, job_id=job.id, reason=job.reason))
    done = counts["succeeded"] + counts["failed"]
    if census.status == CensusStatus.running and done + counts["skipped"] == census.total:
        census.status = CensusStatus.finished
        census.finished_at = census.updated_at = _now()
        session.add(census)
        session.commit()
        session.refresh(census)
    elapsed = (_aware(census.finished_at or _now()) - _aware(census.created_at)).total_seconds()
    left = census.total - done - counts["skipped"]
    eta = elapsed / done * left if done and census.status == CensusStatus.running else None
    return CensusPublic(
        **census.model_dump(exclude={"updated_at", "driver"}),
        **counts,
        drafts_written=drafts,
        failures=failures,
        elapsed_s=round(elapsed, 1),
        eta_s=None if eta is None else round(eta, 1),
    )


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes for what was stored in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
