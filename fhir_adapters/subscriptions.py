"""Subscriptions on the FHIR server: notification parsing (R4 rest-hook and R4 Backport IG), registration."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from fhir_adapters.client import FhirClient
from fhir_adapters.resources import normalize_reference
from services.core.errors import FhirNotFound, InputError, OperationOutcomeError

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
BACKPORT_PROFILE = f"{BACKPORT}/backport-subscription"
EXT_CONTENT = f"{BACKPORT}/backport-payload-content"
EXT_HEARTBEAT = f"{BACKPORT}/backport-heartbeat-period"
EXT_FILTER = f"{BACKPORT}/backport-filter-criteria"
OWNER_TAG_SYSTEM = "urn:ehr-summarizer:subscription"
PATIENT_KEYS = ("subject", "patient", "beneficiary", "for")

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


def patient_of(resource: dict[str, Any]) -> str | None:
    """The id of the patient a resource is about, if it says."""
    if resource.get("resourceType") == "Patient":
        return str(resource["id"]) if resource.get("id") else None
    for key in PATIENT_KEYS:
        value = resource.get(key)
        ref = value.get("reference") if isinstance(value, dict) else None
        if isinstance(ref, str):
            kind, _, rid = normalize_reference(ref, {}).partition("/")
            if kind == "Patient" and rid:
                return rid
    return None


def _event_of(resource: dict[str, Any]) -> NotificationEvent:
    version = (resource.get("meta") or {}).get("versionId")
    focus = f"{resource.get('resourceType')}/{resource.get('id')}" if resource.get("id") else None
    return NotificationEvent(
        focus=focus,
        patient_id=patient_of(resource),
        version=str(version) if version else None,
        resource=resource,
    )


def fhir_instant(when: datetime) -> str:
    """A FHIR instant in UTC with millisecond precision (what `_lastUpdated` searches take)."""
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def events_of(resources: list[dict[str, Any]]) -> list[NotificationEvent]:
    """Changed resources (from a search) as events, like a rest-hook with the resource would carry."""
    return [_event_of(r) for r in resources]


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _value(param: dict[str, Any]) -> Any:
    return next((v for k, v in param.items() if k.startswith("value")), None)


def _backport_events(
    params: list[dict[str, Any]], resources: dict[str, dict[str, Any]]
) -> list[NotificationEvent]:
    events = []
    for param in params:
        if param.get("name") not in ("notification-event", "notificationEvent"):
            continue
        number: int | None = None
        focus: str | None = None
        patient: str | None = None
        for part in param.get("part", []):
            name, value = part.get("name"), _value(part)
            if name in ("event-number", "eventNumber"):
                number = _int(value)
            elif name == "focus" and isinstance(value, dict) and value.get("reference"):
                focus = normalize_reference(str(value["reference"]), {})
            elif name in ("additional-context", "additionalContext") and isinstance(value, dict):
                ref = normalize_reference(str(value.get("reference", "")), {})
                if ref.startswith("Patient/") and patient is None:
                    patient = ref.split("/", 1)[1]
        resource = resources.get(focus or "")
        if resource is not None:
            full = _event_of(resource)
            events.append(
                NotificationEvent(full.focus, full.patient_id or patient, number, full.version, resource)
            )
        else:
            if focus and focus.startswith("Patient/"):
                patient = focus.split("/", 1)[1]
            events.append(NotificationEvent(focus=focus, patient_id=patient, number=number))
    return events


def _parse_backport(body: dict[str, Any]) -> Notification | None:
    entries = body.get("entry") or []
    first = (entries[0].get("resource") if entries else None) or {}
    if first.get("resourceType") != "Parameters":
        return None
    params = first.get("parameter", [])
    named = {p.get("name"): _value(p) for p in params if p.get("name") != "notification-event"}
    ntype = named.get("type")
    if ntype not in ("handshake", "heartbeat", "event-notification", "query-status"):
        raise InputError(f"unknown Backport notification type {ntype!r}")
    sub_ref = named.get("subscription")
    subscription = normalize_reference(str(sub_ref["reference"]), {}) if isinstance(sub_ref, dict) else None
    resources = {}
    for entry in entries[1:]:
        resource = entry.get("resource")
        if isinstance(resource, dict) and resource.get("id"):
            resources[f"{resource.get('resourceType')}/{resource['id']}"] = resource
    since = named.get("events-since-subscription-start", named.get("eventsSinceSubscriptionStart"))
    return Notification(
        type=ntype,
        subscription=subscription,
        topic=named.get("topic"),
        events_since_start=_int(since),
        events=_backport_events(params, resources),
    )


def parse_notification(body: Any, *, path_focus: str | None = None) -> Notification:
    """Parse what a server POSTed or PUT to our endpoint; `path_focus` is Type/id from a put-resource URL."""
    if body is None:
        if path_focus:
            return Notification(type="rest-hook", events=[NotificationEvent(focus=path_focus)])
        return Notification(type="ping")
    if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
        raise InputError("notification body is not a FHIR resource")
    if body["resourceType"] == "Bundle" and body.get("type") == "history":
        backport = _parse_backport(body)
        if backport is not None:
            return backport
    if body["resourceType"] == "Bundle":
        resources = [e["resource"] for e in body.get("entry", []) if isinstance(e.get("resource"), dict)]
        return Notification(type="rest-hook", events=[_event_of(r) for r in resources])
    return Notification(type="rest-hook", events=[_event_of(body)])


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
        rid = ref.split("/", 1)[1]
        try:
            bundle = await client.get_json(f"Subscription/{rid}/$status")
        except (FhirNotFound, OperationOutcomeError):
            out[ref] = None
            continue
        counts = [
            _int(_value(p))
            for e in bundle.get("entry", [])
            for p in (e.get("resource") or {}).get("parameter", [])
            if p.get("name") in ("events-since-subscription-start", "eventsSinceSubscriptionStart")
        ]
        out[ref] = counts[0] if counts else None
    return out
