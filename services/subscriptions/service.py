"""Notification bookkeeping; keyword-only functions that take a session.

The ones a notification goes through (accept_events, debounce, track_events) leave the commit to the
caller, so one notification is one transaction; the others commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from services.subscriptions.models import NotificationReceipt, PendingTrigger, PollCursor, SubscriptionState


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _insert(session: Session) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT."""
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


@lru_cache(maxsize=2)
def _statements(insert: Any) -> tuple[Any, Any]:
    """The receipt and debounce upserts, built once per dialect; rows come as parameters."""
    receipts = NotificationReceipt.__table__  # type: ignore[attr-defined]
    triggers = PendingTrigger.__table__  # type: ignore[attr-defined]
    accept = (
        insert(receipts).on_conflict_do_nothing(index_elements=["dedup_key"]).returning(receipts.c.dedup_key)
    )
    fold = insert(triggers)
    fold = fold.on_conflict_do_update(
        index_elements=["patient_id"],
        set_={
            "last_event_at": fold.excluded.last_event_at,
            "events": triggers.c.events + fold.excluded.events,
        },
    ).returning(triggers.c.patient_id, triggers.c.events)
    return accept, fold


def accept_events(*, session: Session, receipts: list[dict[str, str | None]]) -> set[str]:
    """Record delivered events (dedup_key, subscription, focus, patient_id); the keys not seen before."""
    if not receipts:
        return set()
    now = _now()
    # In key order, so concurrent transactions wait on each other's keys in one order, never in a cycle.
    rows = sorted(({**r, "received_at": now} for r in receipts), key=lambda r: str(r["dedup_key"]))
    return set(session.execute(_statements(_insert(session))[0], rows).scalars())


def debounce(*, session: Session, events: Mapping[str, int], window_s: float) -> dict[str, datetime]:
    """Fold events (a count per patient) into pending triggers; the due time of each window they opened."""
    if not events:
        return {}
    now = _now()
    due_at = now + timedelta(seconds=window_s)
    rows = [
        {"patient_id": p, "first_event_at": now, "last_event_at": now, "due_at": due_at, "events": events[p]}
        for p in sorted(events)  # one lock order for every transaction (see accept_events)
    ]
    folded = session.execute(_statements(_insert(session))[1], rows).all()
    return {patient: due_at for patient, total in folded if total == events[patient]}


@dataclass(frozen=True)
class DueTrigger:
    """A debounce window that has closed: make one job for it."""

    patient_id: str
    first_event_at: datetime
    events: int


def take_due(*, session: Session, patient_id: str) -> DueTrigger | datetime | None:
    """Remove and return the patient's trigger when due; else its due time (or None when there is none)."""
    trigger = session.exec(
        select(PendingTrigger).where(PendingTrigger.patient_id == patient_id).with_for_update()
    ).first()
    if trigger is None:
        session.rollback()
        return None
    due_at = _aware(trigger.due_at)
    if due_at > _now():
        session.rollback()
        return due_at
    due = DueTrigger(trigger.patient_id, _aware(trigger.first_event_at), trigger.events)
    session.delete(trigger)
    session.commit()
    return due


def overdue_patients(*, session: Session, grace_s: float = 0.0) -> list[str]:
    """Patients whose debounce window closed more than `grace_s` ago (a lost flush task)."""
    cutoff = _now() - timedelta(seconds=grace_s)
    return list(
        session.exec(select(PendingTrigger.patient_id).where(col(PendingTrigger.due_at) <= cutoff)).all()
    )


@dataclass(frozen=True)
class Gap:
    """Event numbers a subscription sent that never reached us, or a number too far ahead to believe."""

    subscription: str
    first_missing: int
    last_missing: int
    since: datetime | None
    jumped_to: int | None = None


def is_registered(*, session: Session, subscription: str) -> bool:
    """Whether a subscription is one we registered (`ensure_state` by `ehrsum subscribe`)."""
    return session.get(SubscriptionState, subscription) is not None


def track_events(
    *,
    session: Session,
    subscription: str,
    numbers: list[int],
    events_since_start: int | None,
    max_jump: int,
) -> Gap | None:
    """Advance a registered subscription's event counter; the gap when numbers were skipped.

    A number more than `max_jump` past the last one seen is not believed: the counter does not move to it
    (so later gaps are still seen), and the returned Gap says `jumped_to` so the caller records it and
    catches up; the counter then follows the server's own `$status` count (`sync_event_count`).
    """
    state = session.get(SubscriptionState, subscription)
    if state is None:
        return None
    now = _now()
    state.last_notification_at = now
    seen = [*numbers, *([events_since_start] if events_since_start is not None else [])]
    bound = state.last_event_number + max_jump
    believed = [n for n in seen if n <= bound]
    jumped_to = max(seen) if len(believed) < len(seen) else None
    expected_next = state.last_event_number + 1
    new_numbers = [n for n in numbers if n <= bound]
    highest = max(believed, default=state.last_event_number)
    lowest_new = min(new_numbers) if new_numbers else highest + 1
    gap: Gap | None = None
    if lowest_new > expected_next:
        last_missing = lowest_new - 1
        gap = Gap(subscription, expected_next, last_missing, state.last_event_at)
        state.missed_events += last_missing - expected_next + 1
    if jumped_to is not None:
        first, last = (gap.first_missing, gap.last_missing) if gap else (expected_next, expected_next - 1)
        gap = Gap(subscription, first, last, state.last_event_at, jumped_to)
    if numbers:
        state.last_event_at = now
    state.last_event_number = max(state.last_event_number, highest)
    session.add(state)
    session.flush()
    return gap


def sync_event_count(*, session: Session, subscription: str, server_count: int | None) -> None:
    """After a catch-up: take the server's own event count (`$status`, read by us) when it is ahead."""
    state = session.get(SubscriptionState, subscription)
    if state is not None and server_count is not None and server_count > state.last_event_number:
        state.last_event_number = server_count
        session.add(state)
        session.commit()


def ensure_state(
    *, session: Session, subscription: str, protocol: str, criteria: str, events: int | None
) -> None:
    """Start tracking a subscription we registered, from the server's event count when it gives one."""
    if session.get(SubscriptionState, subscription) is None:
        state = SubscriptionState(
            subscription=subscription, protocol=protocol, criteria=criteria, last_event_number=events or 0
        )
        session.add(state)
        session.commit()


def note_recovery(*, session: Session, subscription: str) -> None:
    """Count a recovery run for a subscription."""
    state = session.get(SubscriptionState, subscription)
    if state is not None:
        state.recoveries += 1
        session.add(state)
        session.commit()


def list_states(*, session: Session) -> list[SubscriptionState]:
    """Every subscription we have heard from."""
    return list(session.exec(select(SubscriptionState).order_by(col(SubscriptionState.subscription))).all())


def cursor(*, session: Session, resource_type: str) -> str | None:
    """Where polling of a resource type stands, if it has started."""
    row = session.get(PollCursor, resource_type)
    return row.since if row else None


def advance_cursor(*, session: Session, resource_type: str, since: str) -> None:
    """Move a resource type's polling cursor forward (never back) and commit."""
    row = session.get(PollCursor, resource_type) or PollCursor(resource_type=resource_type, since=since)
    row.since = max(row.since, since)
    row.polled_at = _now()
    session.add(row)
    session.commit()


def subscriptions_healthy(*, session: Session, stale_s: float) -> bool:
    """Whether any subscription (event or heartbeat) spoke within `stale_s`."""
    cutoff = _now() - timedelta(seconds=stale_s)
    newest = session.exec(
        select(SubscriptionState.last_notification_at).order_by(
            col(SubscriptionState.last_notification_at).desc().nulls_last()
        )
    ).first()
    return newest is not None and _aware(newest) >= cutoff
