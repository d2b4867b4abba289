"""FHIR change events → dedup, per-patient debounce, gap detection, tasks (no FHIR calls: stays fast)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from sqlmodel import Session

from fhir_adapters.references import parse_reference
from fhir_adapters.subscriptions import Notification, NotificationEvent, events_of, fhir_instant
from services.audit.models import AuditOutcome
from services.audit.service import AuditEntry, add_entries
from services.core.db import session_scope
from services.core.errors import FhirNotFound, InputError
from services.core.settings import Settings, get_settings
from services.subscriptions.service import (
    Gap,
    accept_events,
    debounce,
    is_registered,
    take_due,
    track_events,
)
from workers.celery_app import FLUSH_TRIGGER, RECOVER_GAP, RESOLVE_EVENT, TRACK_DRAFT, publish
from workers.clients import fhir_client
from workers.submission import submit

log = logging.getLogger(__name__)
BACKPORT_TYPES = ("handshake", "heartbeat", "event-notification", "query-status")
DEDUP_KEY_MAX = 300  # NotificationReceipt.dedup_key


@dataclass
class DispatchResult:
    """What one notification led to."""

    accepted: int = 0
    duplicates: int = 0
    ignored: int = 0
    gap: bool = False


def dedup_key(note: Notification, event: NotificationEvent) -> str | None:
    """What identifies a delivery: the subscription's event number, else the resource version."""
    if note.subscription and event.number is not None:
        key = f"{note.subscription}#{event.number}"
    elif event.focus and event.version:
        key = f"{event.focus}/_history/{event.version}"
    else:
        return None
    return key[:DEDUP_KEY_MAX]


Publish = Callable[[], object]


def _record_gap(session: Session, gap: Gap) -> None:
    """Log missed events; a number too far ahead is also an audit row (ids and numbers only)."""
    if gap.jumped_to is None:
        log.warning(
            "missed events %d-%d", gap.first_missing, gap.last_missing, extra={"status": gap.subscription}
        )
        return
    log.warning(
        "event number %d is too far past %d: not believed, catching up",
        gap.jumped_to,
        gap.first_missing - 1,
        extra={"status": gap.subscription},
    )
    detail = f"event {gap.jumped_to} after {gap.first_missing - 1}: counter kept, catch-up queued"
    jump = AuditEntry(
        "notifier", "notification event-number jump", AuditOutcome.failure, (gap.subscription,), detail
    )
    add_entries(session=session, entries=[jump])


@dataclass
class Delivery:
    """A notification with its audit entry; once recorded, what it led to and what to queue after commit."""

    note: Notification
    audit: AuditEntry | None = None
    result: DispatchResult = field(default_factory=DispatchResult)
    outbox: list[Publish] = field(default_factory=list)

    def publish(self) -> None:
        """Queue the work of a committed delivery."""
        for task in self.outbox:
            task()


def dispatch(
    note: Notification, settings: Settings, audit: AuditEntry | None = None, *, from_server: bool = False
) -> DispatchResult:
    """Record a notification's events (and its audit entry) in one transaction, then queue their work."""
    delivery = Delivery(note, audit)
    record_all([delivery], settings, from_server=from_server)
    delivery.publish()
    return delivery.result


def record_all(deliveries: Sequence[Delivery], settings: Settings, *, from_server: bool = False) -> None:
    """Record notifications, each with its audit entry, in one transaction; what to queue in each outbox."""
    # One statement per kind of row for all of them; any error records none of them.
    # Backport notifications, handshakes included, count only for subscriptions we registered (InputError
    # otherwise: `ehrsum subscribe` records a subscription before the server may handshake). An event number
    # too far past the last one seen is recorded (an audit row), caught up like a gap, and never moves the
    # counter. An event without a version or event number cannot be deduplicated: unless it was read from
    # the server (`from_server`), the server is asked for the resource, so its version and patient come
    # from there, not from whoever sent the notification. A patient's debounce window opened by these
    # events is flushed by the first delivery that has an event of theirs.
    for delivery in deliveries:  # a batch that failed is recorded again one by one: nothing counts twice
        delivery.result, delivery.outbox = DispatchResult(), []
    with session_scope() as session:
        add_entries(session=session, entries=[d.audit for d in deliveries if d.audit is not None])
        for delivery in deliveries:
            _track(session, delivery, settings)
        keys = [[dedup_key(d.note, event) for event in d.note.events] for d in deliveries]
        fresh = accept_events(
            session=session,
            receipts=[
                {
                    "dedup_key": key,
                    "subscription": d.note.subscription,
                    "focus": event.focus,
                    "patient_id": event.patient_id,
                }
                for d, note_keys in zip(deliveries, keys, strict=True)
                for key, event in zip(note_keys, d.note.events, strict=True)
                if key
            ],
        )
        folds: dict[str, int] = {}
        openers: dict[str, Delivery] = {}
        for delivery, note_keys in zip(deliveries, keys, strict=True):
            for patient in _sort_events(delivery, note_keys, fresh, settings, from_server):
                folds[patient] = folds.get(patient, 0) + 1
                openers.setdefault(patient, delivery)
        for patient, due in debounce(session=session, events=folds, window_s=settings.debounce_s).items():
            openers[patient].outbox.append(partial(publish, FLUSH_TRIGGER, patient, eta=due))
        session.commit()


def _track(session: Session, delivery: Delivery, settings: Settings) -> None:
    """A Backport notification's subscription (ours, else InputError) and event numbers, gaps queued."""
    note = delivery.note
    if not (note.subscription and note.type in BACKPORT_TYPES):
        return
    if not is_registered(session=session, subscription=note.subscription):
        raise InputError(f"{note.subscription} is not a subscription of ours")
    gap = track_events(
        session=session,
        subscription=note.subscription,
        numbers=[e.number for e in note.events if e.number is not None],
        events_since_start=note.events_since_start,
        max_jump=settings.subscription_max_event_jump,
    )
    if gap is not None:
        delivery.result.gap = True
        _record_gap(session, gap)
        since = fhir_instant(gap.since) if gap.since else None
        delivery.outbox.append(partial(publish, RECOVER_GAP, gap.subscription, since))


def _sort_events(
    delivery: Delivery, keys: list[str | None], fresh: set[str], settings: Settings, from_server: bool
) -> list[str]:
    """Count a delivery's events and queue their tasks; the patients whose debounce windows they fold into."""
    result, outbox, patients = delivery.result, delivery.outbox, []
    for key, event in zip(keys, delivery.note.events, strict=True):
        if key is not None:
            if key not in fresh:
                result.duplicates += 1
                continue
            fresh.discard(key)  # the same event twice, in one notification or one batch, counts once
        type_name = (event.focus or "").split("/")[0]
        trusted = key is not None or from_server
        if type_name == "DocumentReference" and event.focus:
            outbox.append(partial(publish, TRACK_DRAFT, event.focus))
        elif type_name in settings.trigger_resource_types and event.patient_id and trusted:
            patients.append(event.patient_id)
        elif type_name in settings.trigger_resource_types and event.focus and not from_server:
            outbox.append(partial(publish, RESOLVE_EVENT, event.focus))
        else:
            result.ignored += 1
            continue
        result.accepted += 1
    return patients


def flush_patient(patient_id: str) -> str | None:
    """Make the job of a closed debounce window (once), or look again when the window is still open."""
    settings = get_settings()
    with session_scope() as session:
        due = take_due(session=session, patient_id=patient_id)
        if due is None:
            return None
        if isinstance(due, datetime):
            publish(FLUSH_TRIGGER, patient_id, eta=due)
            return None
        key = f"debounce:{patient_id}:{due.first_event_at.isoformat()}"
        job = submit(
            session=session, patient_id=patient_id, kinds=list(settings.trigger_kinds), idempotency_key=key
        ).job
        log.info("debounced events became a job", extra={"job_id": job.id, "patient_id": patient_id})
        return job.id


def resolve_focus(focus: str) -> str | None:
    """Read an event's resource from the server and record it (once per version) as a change; its patient."""
    settings = get_settings()
    ref = parse_reference(focus)

    async def read() -> dict[str, Any]:
        async with fhir_client(settings) as client:
            return await client.read(ref.type, ref.id)

    try:
        resource = asyncio.run(read())
    except FhirNotFound:
        return None
    events = events_of([resource], base_url=settings.fhir_base_url)
    done = dispatch(Notification(type="rest-hook", events=events), settings, from_server=True)
    return events[0].patient_id if events and done.accepted else None
