"""The `_lastUpdated` polling fallback and gap recovery, against the real sekmet-fhir."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from typing import Any

import httpx
import pytest

from deploy.processes import wait_for
from fhir_adapters.client import FhirClient
from services.core.db import session_scope
from services.core.settings import Settings, get_settings
from services.subscriptions.models import PendingTrigger, SubscriptionState
from services.subscriptions.service import ensure_state, track_events
from tests.conftest import jobs_of, notification_headers, registered
from workers.celery_app import celery_app
from workers.polling import poll_due, poll_once

pytestmark = pytest.mark.integration


def observation(patient: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "valueQuantity": {"value": 72, "unit": "/min"},
    }


def poll(fhir: str, settings: Settings) -> Any:
    async def run() -> Any:
        async with FhirClient(fhir) as client:
            return await poll_once(client, settings)

    return asyncio.run(run())


def test_polling_turns_changes_into_a_debounced_trigger(stack: dict[str, str], fhir_server: str) -> None:
    settings = get_settings().model_copy(update={"poll_resource_types": ["Observation"], "debounce_s": 60.0})
    poll(fhir_server, settings)  # the first round only sets the cursor
    patient = f"poll-{uuid.uuid4().hex[:8]}"
    for _ in range(3):
        assert (
            httpx.post(f"{fhir_server}/Observation", json=observation(patient), timeout=10).status_code == 201
        )
    first = poll(fhir_server, settings)
    again = poll(fhir_server, settings)
    with session_scope() as session:
        trigger = session.get(PendingTrigger, patient)
    assert first.changes["Observation"] >= 3 and trigger is not None and trigger.events == 3
    assert again.accepted == 0  # the change at the cursor is read again but recorded already


def test_auto_polling_runs_only_while_subscriptions_are_silent(stack: dict[str, str]) -> None:
    subscription = f"Subscription/{uuid.uuid4().hex[:8]}"
    with session_scope() as session:
        ensure_state(session=session, subscription=subscription, protocol="backport", criteria="t", events=0)
        track_events(
            session=session, subscription=subscription, numbers=[], events_since_start=0, max_jump=1000
        )
        session.commit()
    settings = get_settings().model_copy(update={"polling": "auto", "subscription_stale_s": 3600.0})
    assert poll_due(settings).skipped == "subscriptions healthy"
    assert poll_due(settings.model_copy(update={"polling": "off"})).skipped == "polling off"
    silent = settings.model_copy(update={"subscription_stale_s": 0.0, "poll_resource_types": ["Condition"]})
    assert poll_due(silent).skipped is None


def test_a_gap_in_event_numbers_is_recovered_by_lastupdated(
    api: str, worker: subprocess.Popen[bytes], fhir_server: str
) -> None:
    from tests.e2e.test_subscriptions_e2e import event_bundle

    sub, seen, missed = (
        registered(f"s-{uuid.uuid4().hex[:8]}"),
        f"seen-{uuid.uuid4().hex[:8]}",
        f"miss-{uuid.uuid4().hex[:8]}",
    )
    headers = notification_headers()
    assert httpx.post(f"{api}/v1/notifications", json=event_bundle(sub, 1, seen), headers=headers).is_success
    time.sleep(0.05)
    # Event 2 (this Observation) never reaches us; event 3 does and reveals the gap.
    assert httpx.post(f"{fhir_server}/Observation", json=observation(missed), timeout=10).status_code == 201
    assert httpx.post(f"{api}/v1/notifications", json=event_bundle(sub, 3, seen), headers=headers).is_success
    jobs = wait_for(lambda: jobs_of(missed), 60, "a job for the missed change")
    assert len(jobs) == 1
    with session_scope() as session:
        state = session.get(SubscriptionState, f"Subscription/{sub}")
        assert state is not None and state.missed_events == 1 and state.recoveries == 1


def test_beat_schedules_polling_and_the_debounce_sweep() -> None:
    schedule = celery_app.conf.beat_schedule
    assert schedule["poll-changes"]["task"] == "workers.tasks.poll_changes"
    assert schedule["flush-overdue"]["task"] == "workers.tasks.flush_overdue"
    from workers.tasks import flush_overdue_triggers, poll_changes

    assert {poll_changes.name, flush_overdue_triggers.name} <= set(celery_app.tasks)
