"""Notification parsing against the bodies sekmet-fhir's own Backport builder sends."""

from __future__ import annotations

from typing import Any

import pytest
from sekmet.subscriptions import backport as bp

from fhir_adapters.subscriptions import parse_notification
from services.core.errors import InputError

BASE = "http://fhir.example/fhir"
SUB: dict[str, Any] = {
    "id": "sub1",
    "criteria": "http://sekmet.dev/fhir/SubscriptionTopic/encounter-start",
    "status": "active",
    "channel": {"type": "rest-hook", "payload": "application/fhir+json"},
}
ENCOUNTER = {
    "resourceType": "Encounter",
    "id": "enc1",
    "meta": {"versionId": "2"},
    "status": "in-progress",
    "subject": {"reference": f"{BASE}/Patient/p1"},
}


def test_backport_id_only_event_names_focus_patient_and_number() -> None:
    event = {"number": 7, "focus": "Encounter/enc1", "context": ["Patient/p1"]}
    body = bp.notification_bundle(SUB, BASE, "event-notification", 7, [event])
    note = parse_notification(body, base_url=BASE)
    assert (note.type, note.subscription, note.events_since_start) == (
        "event-notification",
        "Subscription/sub1",
        7,
    )
    [ev] = note.events
    assert (ev.focus, ev.patient_id, ev.number, ev.resource) == ("Encounter/enc1", "p1", 7, None)


def test_backport_full_resource_event_carries_the_resource() -> None:
    event = {"number": 3, "focus": "Encounter/enc1", "context": []}
    note = parse_notification(
        bp.notification_bundle(SUB, BASE, "event-notification", 3, [event], [ENCOUNTER]), base_url=BASE
    )
    [ev] = note.events
    assert ev.resource == ENCOUNTER and ev.patient_id == "p1" and ev.version == "2"


@pytest.mark.parametrize("notification_type", ["handshake", "heartbeat"])
def test_backport_handshake_and_heartbeat_have_no_events(notification_type: str) -> None:
    note = parse_notification(bp.notification_bundle(SUB, BASE, notification_type, 12), base_url=BASE)
    assert note.type == notification_type and note.events == [] and note.events_since_start == 12


def test_rest_hook_forms() -> None:
    full = parse_notification(ENCOUNTER, base_url=BASE)
    assert full.type == "rest-hook" and full.events[0].focus == "Encounter/enc1"
    assert full.events[0].patient_id == "p1" and full.events[0].version == "2"
    assert parse_notification(None).type == "ping"
    assert parse_notification(None, path_focus="Observation/o1").events[0].focus == "Observation/o1"


def test_garbage_is_input_error() -> None:
    with pytest.raises(InputError):
        parse_notification(["not", "a", "resource"])


def test_dedup_keys_fit_the_receipt_column() -> None:
    from fhir_adapters.subscriptions import Notification, NotificationEvent
    from workers.events import DEDUP_KEY_MAX, dedup_key

    long = Notification(type="rest-hook", events=[NotificationEvent(focus="Encounter/e1", version="v" * 400)])
    key = dedup_key(long, long.events[0])
    assert key is not None and len(key) == DEDUP_KEY_MAX and key.startswith("Encounter/e1/_history/v")
    assert dedup_key(long, NotificationEvent(focus="Encounter/e1")) is None  # no version: no dedup key
