"""Subscriptions on the FHIR server: notification parsing (R4 rest-hook and R4 Backport IG), registration."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from fhir_adapters.client import FhirClient
from fhir_adapters.compartment import patient_of
from fhir_adapters.lifecycle import etag_of
from fhir_adapters.references import fhir_id, parse_reference, resource_type
from services.core.errors import FhirNotFound, InputError, OperationOutcomeError, TooLarge

log = logging.getLogger(__name__)

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
BACKPORT_PROFILE = f"{BACKPORT}/backport-subscription"
EXT_CONTENT = f"{BACKPORT}/backport-payload-content"
EXT_HEARTBEAT = f"{BACKPORT}/backport-heartbeat-period"
EXT_FILTER = f"{BACKPORT}/backport-filter-criteria"
OWNER_TAG_SYSTEM = "urn:ehr-summarizer:subscription"
EVENT_PARAMS = ("notification-event", "notificationEvent")
MAX_EVENT_NUMBER = 2**31 - 1  # event counters are INTEGER columns

NotificationType = Literal[
    "rest-hook", "ping", "handshake", "heartbeat", "event-notification", "query-status"
]


@dataclass(frozen=True)
class NotificationEvent:
    """One change the server told us about."""

    focus: str | None
    patient_id: str | None = None
    number: int | None = None
    version: str | None = None
    resource: dict[str, Any] | None = None


@dataclass(frozen=True)
class Notification:
    """A parsed notification: its type, its subscription (when it says) and its events."""

    type: NotificationType
    subscription: str | None = None
    topic: str | None = None
    events_since_start: int | None = None
    events: list[NotificationEvent] = field(default_factory=list)


def _object(value: Any, what: str) -> dict[str, Any]:
    """A JSON object where FHIR has one; InputError otherwise."""
    if not isinstance(value, dict):
        raise InputError(f"{what} must be a JSON object")
    return value


def _array(value: Any, what: str) -> list[Any]:
    """A JSON array where FHIR has one (absent: empty); InputError otherwise."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError(f"{what} must be a JSON array")
    return value


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{what} must be a string")
    return value


def _event_of(resource: dict[str, Any], base_url: str | None) -> NotificationEvent:
    type_name = resource_type(resource.get("resourceType"))
    if resource.get("id") is None:
        raise InputError(f"{type_name} without an id")
    meta = resource.get("meta")
    version = _object(meta, "meta").get("versionId") if meta is not None else None
    return NotificationEvent(
        focus=f"{type_name}/{fhir_id(resource['id'], f'{type_name}.id')}",
        patient_id=patient_of(resource, base_url=base_url),
        version=fhir_id(version, "meta.versionId") if version is not None else None,
        resource=resource,
    )


def fhir_instant(when: datetime) -> str:
    """A FHIR instant in UTC with millisecond precision (what `_lastUpdated` searches take)."""
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def events_of(resources: list[dict[str, Any]], *, base_url: str | None = None) -> list[NotificationEvent]:
    """Changed resources (from a search of our server) as events; malformed ones are left out."""
    events = []
    for resource in resources:
        try:
            events.append(_event_of(resource, base_url))
        except InputError:
            log.warning("changed resource with a malformed id or reference skipped")
    return events


def _event_number(value: Any, what: str) -> int | None:
    """An event counter: a non-negative integer (or its digits as a string) that fits the counter column."""
    if value is None:
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_EVENT_NUMBER:
        return value
    raise InputError(f"{what} must be an integer from 0 to {MAX_EVENT_NUMBER}")


def _value(param: dict[str, Any]) -> Any:
    return next((v for k, v in param.items() if k.startswith("value")), None)


def _parameters(value: Any, what: str) -> list[tuple[str, dict[str, Any]]]:
    """Parameters (or parts) as (name, parameter): each an object with a string name."""
    params = [_object(p, what) for p in _array(value, what)]
    return [(_string(p.get("name"), f"{what}.name"), p) for p in params]


def _reference_value(param: dict[str, Any], what: str) -> str:
    return _string(_object(param.get("valueReference"), f"{what}.valueReference").get("reference"), what)


def _backport_event(
    param: dict[str, Any], resources: dict[str, dict[str, Any]], base_url: str | None
) -> NotificationEvent:
    number: int | None = None
    focus: str | None = None
    patient: str | None = None
    for name, part in _parameters(param.get("part"), "notification-event.part"):
        if name in ("event-number", "eventNumber"):
            number = _event_number(_value(part), "event-number")
        elif name == "focus":
            focus = str(parse_reference(_reference_value(part, "focus"), base_url=base_url, what="focus"))
        elif name in ("additional-context", "additionalContext"):
            value = _reference_value(part, "additional-context")
            ref = parse_reference(value, base_url=base_url, what="additional-context")
            if ref.type == "Patient" and patient is None:
                patient = ref.id
    resource = resources.get(focus or "")
    if resource is not None:
        full = _event_of(resource, base_url)
        return NotificationEvent(full.focus, full.patient_id or patient, number, full.version, resource)
    if focus and focus.startswith("Patient/"):
        patient = focus.split("/", 1)[1]
    return NotificationEvent(focus=focus, patient_id=patient, number=number)


def _entry_resource(entry: dict[str, Any], *, required: bool) -> dict[str, Any] | None:
    """An entry's resource: an object with a resourceType (may be absent only where not `required`)."""
    if entry.get("resource") is None and not required:
        return None
    resource = _object(entry.get("resource"), "Bundle.entry.resource")
    _string(resource.get("resourceType"), "resource.resourceType")
    return resource


def _parse_backport(
    entries: list[dict[str, Any]], base_url: str | None, max_events: int
) -> Notification | None:
    first = _entry_resource(entries[0], required=False) if entries else None
    if first is None or first.get("resourceType") != "Parameters":
        return None
    params = _parameters(first.get("parameter"), "Parameters.parameter")
    named = {name: _value(p) for name, p in params if name not in EVENT_PARAMS}
    ntype = named.get("type")
    if ntype not in ("handshake", "heartbeat", "event-notification", "query-status"):
        raise InputError("unknown Backport notification type")
    sub_ref = _object(named.get("subscription"), "subscription").get("reference")
    subscription = parse_reference(sub_ref, base_url=base_url, types={"Subscription"}, what="subscription")
    event_params = [p for name, p in params if name in EVENT_PARAMS]
    if len(event_params) > max_events or len(entries) - 1 > max_events:
        raise TooLarge(f"a notification may carry at most {max_events} events")
    if (event_params or len(entries) > 1) and ntype != "event-notification":
        raise InputError(f"a {ntype} notification carries no events")
    resources = {}
    for entry in entries[1:]:
        # An id-only payload names the focus in fullUrl and request, with no resource.
        resource = _entry_resource(entry, required=False)
        if resource is not None:
            resources[str(_event_of(resource, base_url).focus)] = resource
    since = named.get("events-since-subscription-start", named.get("eventsSinceSubscriptionStart"))
    topic = named.get("topic")
    return Notification(
        type=ntype,
        subscription=str(subscription),
        topic=topic[:500] if isinstance(topic, str) else None,
        events_since_start=_event_number(since, "events-since-subscription-start"),
        events=[_backport_event(p, resources, base_url) for p in event_params],
    )


def parse_notification(
    body: Any, *, path_focus: str | None = None, base_url: str | None = None, max_events: int = 100
) -> Notification:
    """Parse what a server POSTed or PUT to our endpoint; `path_focus` is Type/id from a put-resource URL.

    The shape read is checked strictly (objects, arrays and strings where FHIR has them; each resource with
    a known type and an id), and every id and reference (`fhir_adapters.references`; absolute ones only under
    `base_url`); a notification carries at most `max_events` events. InputError or TooLarge otherwise.
    """
    focus = str(parse_reference(path_focus, what="notification URL")) if path_focus is not None else None
    if body is None:
        if focus:
            return Notification(type="rest-hook", events=[NotificationEvent(focus=focus)])
        return Notification(type="ping")
    if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
        raise InputError("notification body is not a FHIR resource")
    if body["resourceType"] == "Bundle":
        listed = _array(body.get("entry"), "Bundle.entry")
        if len(listed) > max_events + 1:  # refused before anything is built; exact per type below
            raise TooLarge(f"a notification may carry at most {max_events} events")
        entries = [_object(e, "Bundle.entry") for e in listed]
        if body.get("type") == "history":
            backport = _parse_backport(entries, base_url, max_events)
            if backport is not None:
                return backport
        if len(entries) > max_events:
            raise TooLarge(f"a notification may carry at most {max_events} events")
        resources = [_entry_resource(e, required=True) for e in entries]
        return Notification(type="rest-hook", events=[_event_of(r, base_url) for r in resources if r])
    event = _event_of(body, base_url)
    if focus and event.focus != focus:
        raise InputError("notification URL and body name different resources")
    return Notification(type="rest-hook", events=[event])


def rest_hook_subscription(
    criteria: str, endpoint: str, header: str, *, payload: str | None = "application/fhir+json"
) -> dict[str, Any]:
    """A classic R4 rest-hook Subscription sending `header` (the shared secret) with each notification."""
    channel: dict[str, Any] = {"type": "rest-hook", "endpoint": endpoint, "header": [header]}
    if payload:
        channel["payload"] = payload
    return {
        "resourceType": "Subscription",
        "meta": {"tag": [{"system": OWNER_TAG_SYSTEM, "code": "ehr-summarizer"}]},
        "status": "requested",
        "reason": "ehr-summarizer: summarize and track drafts",
        "criteria": criteria,
        "channel": channel,
    }


def backport_subscription(
    topic: str,
    endpoint: str,
    header: str,
    *,
    content: Literal["empty", "id-only", "full-resource"] = "id-only",
    heartbeat_s: int | None = None,
    filters: list[str] | None = None,
) -> dict[str, Any]:
    """An R4 Backport IG topic-based Subscription."""
    sub: dict[str, Any] = {
        "resourceType": "Subscription",
        "meta": {
            "profile": [BACKPORT_PROFILE],
            "tag": [{"system": OWNER_TAG_SYSTEM, "code": "ehr-summarizer"}],
        },
        "status": "requested",
        "reason": "ehr-summarizer: summarize and track drafts",
        "criteria": topic,
        "channel": {
            "type": "rest-hook",
            "endpoint": endpoint,
            "header": [header],
            "payload": "application/fhir+json",
            "_payload": {"extension": [{"url": EXT_CONTENT, "valueCode": content}]},
        },
    }
    if heartbeat_s:
        sub["channel"]["extension"] = [{"url": EXT_HEARTBEAT, "valueUnsignedInt": heartbeat_s}]
    if filters:
        sub["_criteria"] = {"extension": [{"url": EXT_FILTER, "valueString": f} for f in filters]}
    return sub


@dataclass(frozen=True)
class Registered:
    """One of our subscriptions on the server and whether this call created it."""

    ref: str
    criteria: str
    status: str
    created: bool
    error: str | None = None


async def ours(client: FhirClient) -> list[dict[str, Any]]:
    """Every Subscription on the server that carries our tag."""
    params = {"_tag": f"{OWNER_TAG_SYSTEM}|ehr-summarizer", "_count": "200"}
    return [r async for r in client.search("Subscription", params)]


async def register(client: FhirClient, wanted: list[dict[str, Any]]) -> list[Registered]:
    """Create the wanted subscriptions that are missing (same criteria and endpoint), status `off`.

    Created off, a subscription cannot handshake before we record it as ours (`activate` turns it on
    afterwards); the ones that exist are left alone.
    """
    existing = await ours(client)
    out = []
    for sub in wanted:
        key = (sub["criteria"], sub["channel"]["endpoint"])
        found = next(
            (e for e in existing if (e.get("criteria"), e.get("channel", {}).get("endpoint")) == key), None
        )
        created = found is None
        if found is None:
            response = await client.request("POST", "Subscription", json={**sub, "status": "off"})
            found = response.json()
        out.append(
            Registered(
                ref=f"Subscription/{found['id']}",
                criteria=sub["criteria"],
                status=str(found.get("status")),
                created=created,
                error=found.get("error"),
            )
        )
    return out


async def activate(client: FhirClient, registered: list[Registered]) -> list[Registered]:
    """Ask the server to start the subscriptions that are off (a Backport one handshakes now)."""
    out = []
    for sub in registered:
        if sub.status == "off":
            current = await client.get_json(sub.ref)
            await client.request(
                "PUT",
                sub.ref,
                json={**current, "status": "requested"},
                headers={"If-Match": etag_of(current)},
            )
            found = await client.get_json(sub.ref)
            sub = replace(sub, status=str(found.get("status")), error=found.get("error"))
        out.append(sub)
    return out


async def statuses(client: FhirClient, refs: list[str]) -> dict[str, int | None]:
    """events-since-subscription-start per subscription from `$status` (Backport); None where not offered."""
    out: dict[str, int | None] = {}
    for ref in refs:
        parsed = parse_reference(ref, types={"Subscription"}, what="subscription")
        try:
            bundle = await client.get_json(f"{parsed}/$status")
        except (FhirNotFound, OperationOutcomeError):
            out[ref] = None
            continue
        try:
            counts = [
                _value(p)
                for e in _array(bundle.get("entry"), "Bundle.entry")
                for name, p in _parameters(
                    (_entry_resource(_object(e, "entry"), required=False) or {}).get("parameter"), "parameter"
                )
                if name in ("events-since-subscription-start", "eventsSinceSubscriptionStart")
            ]
            out[ref] = _event_number(counts[0], "events-since-subscription-start") if counts else None
        except InputError:
            out[ref] = None
    return out
