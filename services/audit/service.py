"""Writing and reading the audit trail; keyword-only functions that take a session."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session, col, select

from services.audit.models import AuditOutcome, AuditRecord
from services.core.db import session_scope

log = logging.getLogger(__name__)


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
    entry = AuditRecord(
        actor=actor[:200],
        action=action[:100],
        outcome=outcome,
        resource_ids=list(resource_ids),
        detail=detail[:500] if detail else None,
    )
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
    try:
        with session_scope() as session:
            record(
                session=session,
                actor=actor,
                action=action,
                outcome=outcome,
                resource_ids=resource_ids,
                detail=detail,
            )
    except Exception as exc:
        log.error("audit write failed: %s", type(exc).__name__, extra={"status": action})


@dataclass(frozen=True)
class AuditEntry:
    """One audit entry not written yet."""

    actor: str
    action: str
    outcome: AuditOutcome
    resource_ids: tuple[str, ...] = ()
    detail: str | None = None


def record_batch_detached(entries: Sequence[AuditEntry]) -> None:
    """Record entries in one session and one commit; a failure is logged, never raised into the work."""
    try:
        with session_scope() as session:
            for e in entries:
                session.add(
                    AuditRecord(
                        actor=e.actor[:200],
                        action=e.action[:100],
                        outcome=e.outcome,
                        resource_ids=list(e.resource_ids),
                        detail=e.detail[:500] if e.detail else None,
                    )
                )
            session.commit()
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
