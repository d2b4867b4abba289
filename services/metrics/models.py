"""JobUsage: what one finished job cost, per stage; the durable source of the service's metrics."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Field, SQLModel


class JobUsage(SQLModel, table=True):
    """Seconds per pipeline stage, LLM tokens and verifier drops of one finished run."""

    __tablename__ = "job_usage"

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(index=True, max_length=36)
    fetch_s: float = 0.0
    condense_s: float = 0.0
    generate_s: float = 0.0
    verify_s: float = 0.0
    write_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    statements_dropped: int = 0
    recorded_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
