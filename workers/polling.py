"""`_lastUpdated` polling: the fallback when subscriptions are off or silent, and the recovery after a gap."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from fhir_adapters.client import FhirClient
from fhir_adapters.subscriptions import Notification, events_of, fhir_instant, statuses
from services.core.db import session_scope
from services.core.settings import Settings
from services.subscriptions.service import (
    advance_cursor,
    cursor,
    note_recovery,
    overdue_patients,
    subscriptions_healthy,
    sync_event_count,
)
from workers.clients import fhir_client
from workers.events import dispatch, flush_patient

log = logging.getLogger(__name__)


@dataclass
class PollResult:
    """What one polling round saw, per resource type."""

    changes: dict[str, int] = field(default_factory=dict)
    accepted: int = 0
    skipped: str | None = None


def _updated(resource: dict[str, Any]) -> str:
    return str((resource.get("meta") or {}).get("lastUpdated") or "")


async def _newest(client: FhirClient, resource_type: str) -> str:
    bundle = await client.get_json(resource_type, {"_sort": "-_lastUpdated", "_count": "1"})
    found = [_updated(e["resource"]) for e in bundle.get("entry", []) if "resource" in e]
    return found[0] if found and found[0] else fhir_instant(datetime.now(UTC))


async def _changes(client: FhirClient, resource_type: str, since: str) -> list[dict[str, Any]]:
    params = {"_lastUpdated": f"ge{since}", "_sort": "_lastUpdated", "_count": "200"}
    return [r async for r in client.search(resource_type, params)]


async def poll_once(client: FhirClient, settings: Settings, *, since: str | None = None) -> PollResult:
    """Read what changed per type since its cursor (or `since`) and dispatch it as notifications are."""
    result = PollResult()
    for resource_type in settings.poll_resource_types:
        with session_scope() as session:
            start = since or cursor(session=session, resource_type=resource_type)
        if start is None:
            # First round: start from the server's newest change instead of replaying all history.
            newest = await _newest(client, resource_type)
            with session_scope() as session:
                advance_cursor(session=session, resource_type=resource_type, since=newest)
            continue
        resources = await _changes(client, resource_type, start)
        result.changes[resource_type] = len(resources)
        if not resources:
            continue
        # Re-reading the change at the cursor is harmless: its version was recorded and is skipped.
        note = Notification(type="rest-hook", events=events_of(resources, base_url=settings.fhir_base_url))
        done = await asyncio.to_thread(partial(dispatch, note, settings, from_server=True))
        result.accepted += done.accepted
        with session_scope() as session:
            advance_cursor(session=session, resource_type=resource_type, since=max(map(_updated, resources)))
    return result


def poll_due(settings: Settings) -> PollResult:
    """One polling round when polling is `always`, or `auto` and no subscription spoke lately."""
    if settings.polling == "off":
        return PollResult(skipped="polling off")
    if settings.polling == "auto":
        with session_scope() as session:
            if subscriptions_healthy(session=session, stale_s=settings.subscription_stale_s):
                return PollResult(skipped="subscriptions healthy")

    async def run() -> PollResult:
        async with fhir_client(settings) as client:
            return await poll_once(client, settings)

    result = asyncio.run(run())
    log.info("polled: %s", result.changes)
    return result


def recover(settings: Settings, subscription: str, since: str | None) -> PollResult:
    """After missed events: read what changed since the last event seen; take `$status`'s event count."""
    # `$status` only counts events and sekmet offers no `$events`, so the changes come from `_lastUpdated`.

    async def run() -> tuple[PollResult, int | None]:
        async with fhir_client(settings) as client:
            counts = await statuses(client, [subscription])
            return await poll_once(client, settings, since=since), counts.get(subscription)

    result, server_count = asyncio.run(run())
    with session_scope() as session:
        note_recovery(session=session, subscription=subscription)
        # The server's count, read by us, settles a number a notification claimed but was not believed.
        sync_event_count(session=session, subscription=subscription, server_count=server_count)
    log.warning(
        "recovered missed events (server count %s): %s",
        server_count,
        result.changes,
        extra={"status": subscription},
    )
    return result


def flush_overdue(grace_s: float = 5.0) -> list[str]:
    """Flush debounce windows whose flush task was lost; the jobs made."""
    with session_scope() as session:
        patients = overdue_patients(session=session, grace_s=grace_s)
    return [job for job in (flush_patient(p) for p in patients) if job]
