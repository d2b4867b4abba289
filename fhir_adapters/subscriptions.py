"""Subscriptions on the FHIR server: notification parsing (R4 rest-hook and R4 Backport IG), registration."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from fhir_adapters.client import FhirClient
from fhir_adapters.references import fhir_id, parse_reference, resource_type
from services.core.errors import FhirNotFound, InputError, OperationOutcomeError, TooLarge

log = logging.getLogger(__name__)

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
BACKPORT_PROFILE = f"{BACKPORT}/backport-subscription"
EXT_CONTENT = f"{BACKPORT}/backport-payload-content"
EXT_HEARTBEAT = f"{BACKPORT}/backport-heartbeat-period"
EXT_FILTER = f"{BACKPORT}/backport-filter-criteria"
OWNER_TAG_SYSTEM = "urn:ehr-summarizer:subscription"
PATIENT_KEYS = ("subject", "patient", "beneficiary", "for")
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


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _server_reference(reference: str) -> bool:
    """Whether a reference points at a server resource (not contained, not a urn placeholder)."""
    return not reference.startswith(("#", "urn:"))


def patient_of(resource: dict[str, Any], *, base_url: str | None = None) -> str | None:
    """The id of the patient a resource is about, if it says; InputError for a malformed reference."""
    if resource.get("resourceType") == "Patient":
        return fhir_id(resource["id"], "Patient.id") if resource.get("id") is not None else None
    for key in PATIENT_KEYS:
        ref = _dict(resource.get(key)).get("reference")
        if isinstance(ref, str) and _server_reference(ref):
            parsed = parse_reference(ref, base_url=base_url, what=f"{key}.reference")
            if parsed.type == "Patient":
                return parsed.id
    return None


def _event_of(resource: dict[str, Any], base_url: str | None) -> NotificationEvent:
    kind = resource_type(resource.get("resourceType"))
    rid = resource.get("id")
    version = _dict(resource.get("meta")).get("versionId")
    return NotificationEvent(
        focus=f"{kind}/{fhir_id(rid, f'{kind}.id')}" if rid is not None else None,
        patient_id=patient_of(resource, base_url=base_url),
        version=fhir_id(version, "meta.versionId") if version is not None else None,
        resource=resource,
    )


def fhir_instant(when: datetime) -> str:
    """A FHIR instant in UTC with millisecond precision (what `_lastUpdated` searches take)."""
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def events_of(resources: list[dict[str, Any]], *, base_url: str | None = None) -> list[NotificationEvent]:
    """Changed resources (from a search of our server) as events; ones with malformed ids are left out."""
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


def _name(param: dict[str, Any]) -> str | None:
    name = param.get("name")
    return name if isinstance(name, str) else None


def _backport_event(
    param: dict[str, Any], resources: dict[str, dict[str, Any]], base_url: str | None
) -> NotificationEvent:
    number: int | None = None
    focus: str | None = None
    patient: str | None = None
    for part in (_dict(p) for p in _list(param.get("part"))):
        name, value = _name(part), _dict(_value(part))
        if name in ("event-number", "eventNumber"):
            number = _event_number(_value(part), "event-number")
        elif name == "focus" and value.get("reference") is not None:
            focus = str(parse_reference(value["reference"], base_url=base_url, what="focus"))
        elif name in ("additional-context", "additionalContext") and value.get("reference") is not None:
            ref = parse_reference(value["reference"], base_url=base_url, what="additional-context")
            if ref.type == "Patient" and patient is None:
                patient = ref.id
    resource = resources.get(focus or "")
    if resource is not None:
        full = _event_of(resource, base_url)
        return NotificationEvent(full.focus, full.patient_id or patient, number, full.version, resource)
    if focus and focus.startswith("Patient/"):
        patient = focus.split("/", 1)[1]
    return NotificationEvent(focus=focus, patient_id=patient, number=number)


def _parse_backport(body: dict[str, Any], base_url: str | None, max_events: int) -> Notification | None:
    entries = [_dict(e) for e in _list(body.get("entry"))]
    first = _dict(entries[0].get("resource")) if entries else {}
    if first.get("resourceType") != "Parameters":
        return None
    params = [_dict(p) for p in _list(first.get("parameter"))]
    named = {_name(p): _value(p) for p in params if _name(p) not in (None, *EVENT_PARAMS)}
    ntype = named.get("type")
    if ntype not in ("handshake", "heartbeat", "event-notification", "query-status"):
        raise InputError("unknown Backport notification type")
    sub_ref = _dict(named.get("subscription")).get("reference")
    subscription = parse_reference(sub_ref, base_url=base_url, types={"Subscription"}, what="subscription")
    resources = {}
    for entry in entries[1:]:
        resource = _dict(entry.get("resource"))
        event = _event_of(resource, base_url) if resource else None
        if event is not None and event.focus:
            resources[event.focus] = resource
    event_params = [p for p in params if _name(p) in EVENT_PARAMS]
    if len(event_params) > max_events:
        raise TooLarge(f"a notification may carry at most {max_events} events")
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

    Every id and reference is checked (`fhir_adapters.references`; absolute ones only under `base_url`),
    and a Bundle may hold at most `max_events` entries: InputError or TooLarge otherwise.
    """
    focus = str(parse_reference(path_focus, what="notification URL")) if path_focus is not None else None
    if body is None:
        if focus:
            return Notification(type="rest-hook", events=[NotificationEvent(focus=focus)])
        return Notification(type="ping")
    if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
        raise InputError("notification body is not a FHIR resource")
    if body["resourceType"] == "Bundle" and len(_list(body.get("entry"))) > max_events + 1:
        raise TooLarge(f"a notification may carry at most {max_events} events")
    if body["resourceType"] == "Bundle" and body.get("type") == "history":
        backport = _parse_backport(body, base_url, max_events)
        if backport is not None:
            return backport
    if body["resourceType"] == "Bundle":
        resources = [_dict(_dict(e).get("resource")) for e in _list(body.get("entry"))]
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
    """Create the wanted subscriptions that are missing (same criteria and endpoint); leave the rest alone."""
    existing = await ours(client)
    out = []
    for sub in wanted:
        key = (sub["criteria"], sub["channel"]["endpoint"])
        found = next(
            (e for e in existing if (e.get("criteria"), e.get("channel", {}).get("endpoint")) == key), None
        )
        created = found is None
        if found is None:
            response = await client.request("POST", "Subscription", json=sub)
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
        counts = [
            _value(p)
            for e in _list(bundle.get("entry"))
            for p in (_dict(x) for x in _list(_dict(_dict(e).get("resource")).get("parameter")))
            if _name(p) in ("events-since-subscription-start", "eventsSinceSubscriptionStart")
        ]
        try:
            out[ref] = _event_number(counts[0], "events-since-subscription-start") if counts else None
        except InputError:
            out[ref] = None
    return out
