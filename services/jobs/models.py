"""SummaryJob: one request to summarize a patient, durable before it is queued."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel


class JobStatus(StrEnum):
    """Where a job stands."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


def _now() -> datetime:
    return datetime.now(UTC)


class SummaryJobBase(SQLModel):
    """Fields a caller sets."""

    patient_id: str = Field(index=True, max_length=64)
    kinds: list[str] = Field(default_factory=lambda: ["progress"], sa_column=Column(JSON, nullable=False))


class SummaryJob(SummaryJobBase, table=True):
    """The job row."""

    __tablename__ = "summary_job"

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    status: JobStatus = Field(default=JobStatus.queued, index=True)
    reason: str | None = None
    draft_refs: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    report: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    attempts: int = 0
    idempotency_key: str | None = Field(default=None, unique=True, max_length=200)
    created_at: datetime = Field(default_factory=_now)
    updated_at: datetime = Field(default_factory=_now)
    finished_at: datetime | None = None


class SummaryJobPublic(SummaryJobBase):
    """What the API shows of a job."""

    id: str
    status: JobStatus
    reason: str | None
    draft_refs: list[str]
    report: dict[str, Any] = Field(default_factory=dict, description="Verification per note kind.")
    attempts: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
