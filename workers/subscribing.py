"""Register our subscriptions on the FHIR server and report on them (`ehrsum subscribe`, `subscriptions`)."""

from __future__ import annotations

import asyncio
from typing import Any

from fhir_adapters.capability import capabilities
from fhir_adapters.subscriptions import (
    activate,
    backport_subscription,
    ours,
    register,
    rest_hook_subscription,
    statuses,
)
from services.core.db import session_scope
from services.core.errors import ConfigError
from services.core.settings import Settings
from services.schema import init_db
from services.subscriptions.service import ensure_state, list_states
from workers.clients import fhir_client


def wanted_subscriptions(settings: Settings) -> list[dict[str, Any]]:
    """The Subscription resources the settings ask for, each carrying the shared-secret header."""
    if not settings.notification_secret:
        raise ConfigError("set EHRSUM_NOTIFICATION_SECRET before subscribing")
    header = f"{settings.notification_secret_header}: {settings.notification_secret.get_secret_value()}"
    endpoint = settings.notification_endpoint_url
    rest = [rest_hook_subscription(c, endpoint, header) for c in settings.subscription_criteria]
    topics = [
        backport_subscription(t, endpoint, header, heartbeat_s=settings.subscription_heartbeat_s)
        for t in settings.subscription_topics
    ]
    return rest + topics


def subscribe(settings: Settings, fhir_url: str | None = None) -> list[dict[str, Any]]:
    """Create the missing subscriptions, track every one of them, then turn on the new ones.

    Tracking comes first: our endpoint answers only the handshakes of subscriptions it tracks.
    """
    init_db()

    async def run() -> list[dict[str, Any]]:
        async with fhir_client(settings, fhir_url) as client:
            wanted = wanted_subscriptions(settings)
            supported = (await capabilities(client)).subscribable(wanted)
            if not supported:
                raise ConfigError(
                    "the FHIR server declares no Subscription we can use: rely on polling (beat)"
                )
            registered = await register(client, supported)
            counts = await statuses(client, [d.ref for d in registered])
            with session_scope() as session:
                for d in registered:
                    protocol = "rest-hook" if "?" in d.criteria else "backport"
                    ensure_state(
                        session=session,
                        subscription=d.ref,
                        protocol=protocol,
                        criteria=d.criteria,
                        events=counts[d.ref],
                    )
            done = await activate(client, registered)
        return [
            {"subscription": d.ref, "criteria": d.criteria, "status": d.status, "created": d.created}
            for d in done
        ]

    return asyncio.run(run())


def describe(settings: Settings, fhir_url: str | None = None) -> list[dict[str, Any]]:
    """Our subscriptions as the server sees them, beside our own event counters."""
    init_db()

    async def run() -> list[dict[str, Any]]:
        async with fhir_client(settings, fhir_url) as client:
            subs = await ours(client)
            counts = await statuses(client, [f"Subscription/{s['id']}" for s in subs])
        with session_scope() as session:
            local = {s.subscription: s for s in list_states(session=session)}
        out = []
        for sub in subs:
            ref = f"Subscription/{sub['id']}"
            state = local.get(ref)
            out.append(
                {
                    "subscription": ref,
                    "criteria": sub.get("criteria"),
                    "status": sub.get("status"),
                    "error": sub.get("error"),
                    "server_events": counts.get(ref),
                    "seen_events": state.last_event_number if state else None,
                    "missed_events": state.missed_events if state else None,
                    "recoveries": state.recoveries if state else None,
                    "last_notification_at": state.last_notification_at if state else None,
                }
            )
        return out

    return asyncio.run(run())
