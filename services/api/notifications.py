"""The notification endpoint: R4 rest-hook and R4 Backport IG deliveries from the FHIR server."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from fhir_adapters.subscriptions import parse_notification
from services.api.outcomes import FHIR_JSON, operation_outcome
from services.audit.models import AuditOutcome, AuditRecord
from services.core.broker import broker_redis
from services.core.errors import AuthenticationError, InputError
from services.core.settings import Settings, get_settings
from workers.events import dispatch

log = logging.getLogger(__name__)
router = APIRouter()
MAX_BODY_BYTES = 5_000_000
FHIR_ID = r"^[A-Za-z0-9\-.]{1,64}$"


def check_secret(request: Request, settings: Settings) -> None:
    """The shared secret from Subscription.channel.header, compared in constant time."""
    expected = settings.notification_secret.get_secret_value() if settings.notification_secret else ""
    given = request.headers.get(settings.notification_secret_header, "")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        request.state.actor = "notifier:bad-secret"
        raise AuthenticationError("notification secret missing or wrong")
    request.state.actor = "notifier"


def over_rate(settings: Settings, client: str) -> bool:
    """Fixed one-minute window per caller, counted in Redis so every API process shares it."""
    key = f"ehrsum:notify-rate:{client}:{int(time.time() // 60)}"
    r = broker_redis(settings.broker_url)
    count = int(r.incr(key))  # type: ignore[arg-type]
    if count == 1:
        r.expire(key, 120)
    return count > settings.notification_rate_per_minute


async def _receive(request: Request, path_focus: str | None) -> JSONResponse:
    settings = get_settings()
    check_secret(request, settings)
    client = request.client.host if request.client else "unknown"
    if await asyncio.to_thread(over_rate, settings, client):
        response = operation_outcome(429, "too many notifications; slow down")
        response.headers["Retry-After"] = str(60 - int(time.time()) % 60)
        return response
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise InputError("notification body too large")
    try:
        body: Any = json.loads(raw) if raw.strip() else None
    except ValueError as exc:
        raise InputError("notification body is not JSON") from exc
    note = parse_notification(body, path_focus=path_focus)
    # The audit entry commits with the receipts: one transaction per notification, on the hottest path.
    audit = AuditRecord(
        actor="notifier",
        action=f"api {request.method} {getattr(request.scope.get('route'), 'path', request.url.path)}",
        outcome=AuditOutcome.success,
        resource_ids=[path_focus] if path_focus else [],
        detail=f"200, {len(note.events)} events",
    )
    result = await asyncio.to_thread(dispatch, note, settings, audit)
    request.state.audited = True
    log.info(
        "notification %s: %d accepted, %d duplicate, %d ignored",
        note.type,
        result.accepted,
        result.duplicates,
        result.ignored,
        extra={"status": note.subscription or "rest-hook"},
    )
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [
            {"severity": "information", "code": "informational", "diagnostics": "notification received"}
        ],
    }
    return JSONResponse(outcome, status_code=200, media_type=FHIR_JSON)


@router.post("/v1/notifications")
async def notification(request: Request) -> JSONResponse:
    """A Backport history Bundle, a rest-hook resource or Bundle, or an empty rest-hook ping."""
    return await _receive(request, None)


@router.api_route("/v1/notifications/{resource_type}/{resource_id}", methods=["PUT", "POST"])
async def notification_for(request: Request, resource_type: str, resource_id: str) -> JSONResponse:
    """A rest-hook delivery that names the resource in the URL (PUT {endpoint}/{type}/{id})."""
    if not resource_type.isalpha() or not re.match(FHIR_ID, resource_id):
        raise InputError("notification URL must end in /{type}/{id}")
    return await _receive(request, f"{resource_type}/{resource_id}")
