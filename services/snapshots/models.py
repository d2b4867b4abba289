"""RecordSnapshot: what the last pull of one patient's record from one FHIR server fetched."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, Column, LargeBinary
from sqlmodel import Field, SQLModel


class RecordSnapshot(SQLModel, table=True):
    """Ids, versions and lastUpdated of the pulled resources, the record and timeline digests, the record."""

    __tablename__ = "record_snapshot"

    server: str = Field(primary_key=True, max_length=512)
    patient_id: str = Field(primary_key=True, max_length=64)
    since: str | None = Field(default=None, max_length=64)
    timeline_digest: str = Field(max_length=64)
    # The digest behind the drafts' identifiers: an unchanged pull finds its drafts without parsing.
    record_digest: str | None = Field(default=None, max_length=64)
    versions: dict[str, list[str | None]] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    # The record itself (PHI, like the FHIR server's own copy): an incremental pull merges changes into it.
    resources: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
