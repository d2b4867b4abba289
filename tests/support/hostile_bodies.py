"""Notification bodies of the wrong shape (issue 19), shared by the parser's unit tests and the API's e2e."""

from __future__ import annotations

from typing import Any


def backport(*params: dict[str, Any], entries: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A Backport history Bundle: a Parameters of `params`, then `entries`."""
    parameters = {"resourceType": "Parameters", "parameter": list(params)}
    return {
        "resourceType": "Bundle",
        "type": "history",
        "entry": [{"resource": parameters}, *(entries or [])],
    }


SUBSCRIPTION = {"name": "subscription", "valueReference": {"reference": "Subscription/s1"}}
EVENT_TYPE = {"name": "type", "valueCode": "event-notification"}
ENCOUNTER_OK: dict[str, Any] = {
    "resourceType": "Encounter",
    "id": "e1",
    "meta": {"versionId": "1"},
    "subject": {"reference": "Patient/p1"},
}
INVALID_SHAPES: list[dict[str, Any]] = [
    {"resourceType": "Bundle", "type": "collection", "entry": 5},
    {"resourceType": "Bundle", "type": "collection", "entry": "x"},
    {"resourceType": "Bundle", "type": "history", "entry": 5},
    {"resourceType": "Bundle", "type": "collection", "entry": [5]},
    {"resourceType": "Bundle", "type": "collection", "entry": [{"fullUrl": "urn:x"}]},
    {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": [ENCOUNTER_OK]}]},
    {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"id": "e1"}}]},
    {**ENCOUNTER_OK, "meta": "x"},
    {**ENCOUNTER_OK, "meta": {"versionId": 5}},
    {**ENCOUNTER_OK, "subject": "Patient/p1"},
    {**ENCOUNTER_OK, "subject": {"reference": 5}},
    {k: v for k, v in ENCOUNTER_OK.items() if k != "id"},
    backport(EVENT_TYPE, SUBSCRIPTION, {"name": "notification-event", "part": "x"}),
    backport(EVENT_TYPE, SUBSCRIPTION, {"name": "notification-event", "part": [5]}),
    backport({"name": ["type"], "valueCode": "heartbeat"}, SUBSCRIPTION),
    backport(EVENT_TYPE, {"name": "subscription", "valueReference": "Subscription/s1"}),
    backport(
        EVENT_TYPE,
        SUBSCRIPTION,
        {"name": "notification-event", "part": [{"name": "focus", "valueReference": {"reference": 7}}]},
    ),
]
