"""AuditRecord: who did what to which resources, when, with what outcome (ids only, never PHI)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel


class AuditOutcome(StrEnum):
    """How an audited action ended."""

    success = "success"
    failure = "failure"
    denied = "denied"


def _now() -> datetime:
    return datetime.now(UTC)


class AuditRecordBase(SQLModel):
    """What an audit entry says."""

    actor: str = Field(index=True, max_length=200)
    action: str = Field(index=True, max_length=100)
    resource_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    outcome: AuditOutcome = Field(index=True)
    detail: str | None = Field(default=None, max_length=500)


class AuditRecord(AuditRecordBase, table=True):
    """The audit row; rows are only ever inserted."""

    __tablename__ = "audit_record"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=_now, index=True)


class AuditRecordPublic(AuditRecordBase):
    """What the API shows of an audit entry."""

    id: int
    at: datetime
