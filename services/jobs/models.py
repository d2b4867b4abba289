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
    encounter_id: str | None = Field(
        default=None, max_length=64, description="The encounter a SOAP note is for (its transcript's)."
    )


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
    trace_id: str | None = Field(
        default=None, index=True, max_length=32, description="OpenTelemetry trace of the job (32 hex)."
    )
    traceparent: str | None = Field(
        default=None, max_length=55, description="W3C traceparent every attempt of the job continues."
    )
    lease_until: datetime | None = Field(
        default=None,
        index=True,
        description="Running: when the worker's claim lapses unless renewed. Queued: when the sweeper "
        "next checks that the broker still holds the job's message.",
    )


class SummaryJobPublic(SummaryJobBase):
    """What the API shows of a job."""

    id: str
    status: JobStatus
    reason: str | None
    draft_refs: list[str]
    report: dict[str, Any] = Field(default_factory=dict, description="Verification per note kind.")
    attempts: int
    trace_id: str | None = Field(default=None, description="OpenTelemetry trace id of the job.")
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class DraftState(StrEnum):
    """Where a draft stands with the clinicians."""

    preliminary = "preliminary"
    approved = "approved"
    rejected = "rejected"
    superseded = "superseded"
    replaced = "replaced"


class DraftBase(SQLModel):
    """A draft we wrote, and what became of it."""

    patient_id: str = Field(index=True, max_length=64)
    kind: str = Field(max_length=32)
    job_id: str | None = Field(default=None, index=True, max_length=36)
    state: DraftState = Field(default=DraftState.preliminary, index=True)
    version: str | None = Field(default=None, max_length=64)  # servers differ: "3", a UUID (36)
    authenticator: str | None = Field(default=None, max_length=200)
    replaced_by: str | None = Field(default=None, max_length=200)
    change_ratio: float | None = Field(default=None, description="0 untouched … 1 rewritten, when replaced.")


class Draft(DraftBase, table=True):
    """The draft row; the key is the DocumentReference reference."""

    __tablename__ = "draft"

    ref: str = Field(primary_key=True, max_length=200)
    created_at: datetime = Field(default_factory=_now)
    decided_at: datetime | None = None


class DraftPublic(DraftBase):
    """What the API shows of a draft."""

    ref: str
    created_at: datetime
    decided_at: datetime | None
