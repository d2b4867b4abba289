"""A server span per API request, continuing the caller's `traceparent` when it sends one."""

from __future__ import annotations

from opentelemetry.trace import SpanKind
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.core import tracing


class RequestSpans:
    """Outermost ASGI layer: `{method} {route}` spans with the route template, never the path (ids)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        method = scope.get("method", "GET")
        attributes: dict[str, tracing.AttributeValue | None] = {
            "http.request.method": method,
            "url.scheme": scope.get("scheme", "http"),
        }
        status: list[int] = []

        async def recorded(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        with tracing.span(
            f"{method}", attributes, kind=SpanKind.SERVER, parent=headers.get(tracing.TRACEPARENT)
        ) as span:
            try:
                await self.app(scope, receive, recorded)
            finally:
                route = getattr(scope.get("route"), "path", None) or _static(scope)
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                if status:
                    span.set_attribute("http.response.status_code", status[0])


def _static(scope: Scope) -> str:
    """A route name for what no route matched (static files, 404s): its first path segment only."""
    first = str(scope.get("path", "/")).strip("/").split("/")[0]
    return f"/{first}/*" if first else "/"
