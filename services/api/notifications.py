"""The notification endpoint: R4 rest-hook and R4 Backport IG deliveries from the FHIR server.

The guard (`services.api.guard`) has checked the shared secret, the notifier's rate and the body's size and
depth before these routes run; here the body is parsed (every id and reference checked) and dispatched.
"""

# No `from __future__ import annotations`: the routes' annotations use a local alias FastAPI must resolve.
import asyncio
import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader

from fhir_adapters.subscriptions import Notification, parse_notification
from services.api.outcomes import FHIR_JSON
from services.audit.models import AuditOutcome
from services.audit.service import AuditEntry
from services.core.errors import InputError
from services.core.settings import Settings, get_settings
from workers.events import DispatchResult, dispatch

log = logging.getLogger(__name__)


def parse_body(raw: bytes, path_focus: str | None, settings: Settings) -> Notification:
    """A notification from the raw body (empty for a ping); InputError for anything that is not one."""
    try:
        body: Any = json.loads(raw) if raw.strip() else None
    except (ValueError, RecursionError) as exc:
        raise InputError("notification body is not JSON") from exc
    return parse_notification(
        body,
        path_focus=path_focus,
        base_url=settings.fhir_base_url,
        max_events=settings.notification_max_events,
    )


def _ingest(raw: bytes, path_focus: str | None, action: str) -> tuple[Notification, DispatchResult]:
    """Parse and dispatch off the event loop: a large Bundle must not stall other requests."""
    settings = get_settings()
    note = parse_body(raw, path_focus, settings)
    # The audit entry commits with the receipts: one transaction per notification, on the hottest path.
    resource_ids = (path_focus,) if path_focus else ()
    audit = AuditEntry(
        "notifier", action, AuditOutcome.success, resource_ids, f"200, {len(note.events)} events"
    )
    return note, dispatch(note, settings, audit)


async def _receive(request: Request, path_focus: str | None) -> JSONResponse:
    route = getattr(request.scope.get("route"), "path", request.url.path)
    raw = await request.body()
    note, result = await asyncio.to_thread(_ingest, raw, path_focus, f"api {request.method} {route}")
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


def notifications_router(settings: Settings) -> APIRouter:
    """The notification routes, declaring the shared-secret header (checked by the guard) in OpenAPI."""
    router = APIRouter()
    secret = APIKeyHeader(
        name=settings.notification_secret_header,
        scheme_name="notificationSecret",
        description="EHRSUM_NOTIFICATION_SECRET, as the Subscription's channel.header sends it.",
        auto_error=False,
    )
    Secret = Annotated[str | None, Security(secret)]  # noqa: N806  (a type alias)

    @router.post("/v1/notifications")
    async def notification(request: Request, _: Secret) -> JSONResponse:
        """A Backport history Bundle, a rest-hook resource or Bundle, or an empty rest-hook ping."""
        return await _receive(request, None)

    async def notification_for(
        request: Request, resource_type: str, resource_id: str, _: Secret
    ) -> JSONResponse:
        """A rest-hook delivery that names the resource in the URL (PUT {endpoint}/{type}/{id})."""
        return await _receive(request, f"{resource_type}/{resource_id}")

    for method in ("PUT", "POST"):
        router.add_api_route(
            "/v1/notifications/{resource_type}/{resource_id}",
            notification_for,
            methods=[method],
            operation_id=f"notification_for_{method.lower()}",
        )
    return router
