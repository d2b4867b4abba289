"""Writing and reading the audit trail; keyword-only functions that take a session."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlmodel import Session, col, select

from services.audit.models import AuditOutcome, AuditRecord
from services.core.db import session_scope
from services.core.settings import get_settings

log = logging.getLogger(__name__)


@cache
def _embedded_schema() -> None:
    """Migrate the embedded SQLite database once per process before its first audit row: a command run on
    a fresh checkout audits its FHIR calls without an `ehrsum init-db` first. An external database is
    migrated by its operator (`ehrsum init-db`, the chart's migration job), never from here."""
    if get_settings().database_url is None:
        from services.schema import init_db

        init_db()


@dataclass(frozen=True)
class AuditEntry:
    """One audit entry not written yet."""

    actor: str
    action: str
    outcome: AuditOutcome
    resource_ids: tuple[str, ...] = ()
    detail: str | None = None

    def values(self) -> dict[str, Any]:
        """The entry's columns, each text cut to its column, stamped now."""
        return {
            "actor": self.actor[:200],
            "action": self.action[:100],
            "outcome": self.outcome,
            "resource_ids": list(self.resource_ids),
            "detail": self.detail[:500] if self.detail else None,
            "at": datetime.now(UTC),
        }

    def row(self) -> AuditRecord:
        """The entry as a row."""
        return AuditRecord(**self.values())


_INSERT = insert(AuditRecord.__table__)  # type: ignore[attr-defined]


def add_entries(*, session: Session, entries: Sequence[AuditEntry]) -> None:
    """Insert entries in the session's transaction, one statement and no ORM objects; the caller commits."""
    if entries:
        session.execute(_INSERT, [e.values() for e in entries])


def record(
    *,
    session: Session,
    actor: str,
    action: str,
    outcome: AuditOutcome,
    resource_ids: Sequence[str] = (),
    detail: str | None = None,
) -> AuditRecord:
    """Insert one audit entry and commit."""
    entry = AuditEntry(actor, action, outcome, tuple(resource_ids), detail).row()
    session.add(entry)
    session.commit()
    return entry


def record_detached(
    *,
    actor: str,
    action: str,
    outcome: AuditOutcome,
    resource_ids: Sequence[str] = (),
    detail: str | None = None,
) -> None:
    """Record in a session of its own; an audit failure is logged, never raised into the audited work."""
    record_batch_detached([AuditEntry(actor, action, outcome, tuple(resource_ids), detail)])


def record_batch_detached(entries: Sequence[AuditEntry]) -> None:
    """Record entries in one session and one commit; a failure is logged, never raised into the work."""
    try:
        _embedded_schema()
        with session_scope() as session:
            add_entries(session=session, entries=entries)
            session.commit()
    except (OperationalError, ProgrammingError) as exc:
        # Most often a database nobody migrated: say the one command that fixes it.
        log.error(
            "audit write failed: %s (is the database migrated? run `ehrsum init-db`)",
            type(exc).__name__,
            extra={"count": len(entries)},
        )
    except Exception as exc:
        log.error("audit write failed: %s", type(exc).__name__, extra={"count": len(entries)})


def list_records(
    *, session: Session, actor: str | None = None, action: str | None = None, limit: int = 100
) -> list[AuditRecord]:
    """The newest audit entries, optionally for one actor or action."""
    query = select(AuditRecord).order_by(col(AuditRecord.id).desc()).limit(limit)
    if actor:
        query = query.where(AuditRecord.actor == actor)
    if action:
        query = query.where(AuditRecord.action == action)
    return list(session.exec(query).all())
