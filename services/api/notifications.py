"""The notification endpoint: R4 rest-hook and R4 Backport IG deliveries from the FHIR server.

The guard (`services.api.guard`) has checked the shared secret, the notifier's rate and the body's size and
depth before these routes run; here the body is parsed (every id and reference checked) and recorded, in
one transaction with those that arrived while the previous batch was written (`Ingest`).
"""

# No `from __future__ import annotations`: the routes' annotations use a local alias FastAPI must resolve.
import asyncio
import json
import logging
from dataclasses import dataclass
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
from workers.events import Delivery, DispatchResult, record_all

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


@dataclass
class Arrival:
    """A notification's body as it came and the future its request awaits; then what it became."""

    raw: bytes
    path_focus: str | None
    action: str
    done: asyncio.Future[tuple[Notification, DispatchResult]]
    delivery: Delivery | None = None
    error: Exception | None = None

    def parse(self, settings: Settings) -> Delivery | None:
        """The notification with its audit entry (committed with its receipts), or None with the error."""
        try:
            note = parse_body(self.raw, self.path_focus, settings)
        except Exception as exc:
            self.error = exc
            return None
        focus = (self.path_focus,) if self.path_focus else ()
        audit = AuditEntry(
            "notifier", self.action, AuditOutcome.success, focus, f"200, {len(note.events)} events"
        )
        self.delivery = Delivery(note, audit)
        return self.delivery

    def settle(self) -> None:
        """Answer the waiting request: what its notification led to, or its error."""
        if self.done.done():
            return
        if self.delivery is None or self.error is not None:
            self.done.set_exception(self.error or RuntimeError("notification not written"))
        else:
            self.done.set_result((self.delivery.note, self.delivery.result))


def _write(batch: list[Arrival]) -> None:
    """Parse each, record all in one transaction, queue each one's work; off the event loop."""
    settings = get_settings()
    parsed = [(a, d) for a in batch if (d := a.parse(settings)) is not None]
    try:
        if parsed:
            record_all([d for _, d in parsed], settings)
    except Exception as exc:
        if len(parsed) == 1:
            parsed[0][0].error = exc
        else:  # again one by one, so a bad notification fails alone
            for arrival, delivery in parsed:
                try:
                    record_all([delivery], settings)
                except Exception as alone:
                    arrival.error = alone
    for arrival, delivery in parsed:
        try:
            if arrival.error is None:
                delivery.publish()
        except Exception as exc:
            arrival.error = exc


class Ingest:
    """This process's notifications on their way to the database, one batch at a time."""

    # Those that arrive while a batch is being written are written together next: one transaction and one
    # commit for all, each notification with its own audit entry and receipts. A request is answered once
    # its notification is committed and its work queued.
    MAX_BATCH = 64

    def __init__(self) -> None:
        self.waiting: list[Arrival] = []
        self.writer: asyncio.Task[None] | None = None

    async def submit(
        self, raw: bytes, path_focus: str | None, action: str
    ) -> tuple[Notification, DispatchResult]:
        """The parsed notification and what it led to, once committed; its error otherwise."""
        loop = asyncio.get_running_loop()
        arrival = Arrival(raw, path_focus, action, loop.create_future())
        self.waiting.append(arrival)
        if self.writer is None or self.writer.done():
            self.writer = loop.create_task(self._drain())
        return await arrival.done

    async def _drain(self) -> None:
        """Write batches until none is waiting, settling each request's future."""
        while self.waiting:
            batch, self.waiting = self.waiting[: self.MAX_BATCH], self.waiting[self.MAX_BATCH :]
            try:
                await asyncio.to_thread(_write, batch)
            except Exception as exc:  # _write settles each arrival's own errors; this is ours
                log.error("notification batch not written: %s", type(exc).__name__)
            for arrival in batch:
                arrival.settle()


async def _receive(request: Request, path_focus: str | None, ingest: Ingest) -> JSONResponse:
    route = getattr(request.scope.get("route"), "path", request.url.path)
    raw = await request.body()
    note, result = await ingest.submit(raw, path_focus, f"api {request.method} {route}")
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
    ingest = Ingest()
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
        return await _receive(request, None, ingest)

    async def notification_for(
        request: Request, resource_type: str, resource_id: str, _: Secret
    ) -> JSONResponse:
        """A rest-hook delivery that names the resource in the URL (PUT {endpoint}/{type}/{id})."""
        return await _receive(request, f"{resource_type}/{resource_id}", ingest)

    for method in ("PUT", "POST"):
        router.add_api_route(
            "/v1/notifications/{resource_type}/{resource_id}",
            notification_for,
            methods=[method],
            operation_id=f"notification_for_{method.lower()}",
        )
    return router
