"""The HTTP server of `ehrsum api`: uvicorn with limits on a request's head, before any of our code runs.

uvicorn's httptools protocol takes a request head of any size (16 MB were accepted) and for as long as the
client cares to send it (a connection dripping a header every few seconds was held open). Here a head over
EHRSUM_API_MAX_HEADER_BYTES (request line and headers) is answered 431 and the connection closed, and a head
not complete within EHRSUM_API_HEADER_TIMEOUT_S of the connection (or of the request's first byte, on a
kept-alive connection) is answered 408 and closed. Bodies are bounded by the guard (services.api.guard).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from services.api.outcomes import outcome_body
from services.core.settings import Settings, get_settings

PROTOCOL = "services.api.server:BoundedHttp"
REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class HeadRefused(Exception):
    """The request head broke a limit; raised inside the parser to stop it."""


class BoundedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a size and a time limit on each request's head."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self.max_head = settings.api_max_header_bytes
        self.head_timeout_s = settings.api_header_timeout_s
        self.head_bytes = 0
        self.head_timer: asyncio.TimerHandle | None = None
        self.refusal: int | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the clock on the first request's head as the connection opens."""
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the clock."""
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        """A request starts: count its head afresh, on the clock."""
        super().on_message_begin()
        self.head_bytes = 0
        self._arm()

    def on_url(self, url: bytes) -> None:
        """Count the request target."""
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        """Count one header line."""
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """The head is in: the clock stops (the body is the guard's to bound)."""
        self._disarm()
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        """A parse failure; the refusal we raised inside the parser when that is what stopped it."""
        if self.refusal is None:
            super().send_400_response(msg)
        else:
            self._refuse(self.refusal, "request headers too large")

    def _count(self, size: int) -> None:
        self.head_bytes += size
        if self.head_bytes > self.max_head:
            self.refusal = 431
            raise HeadRefused

    def _arm(self) -> None:
        if self.head_timer is None:
            self.head_timer = self.loop.call_later(self.head_timeout_s, self._timed_out)

    def _disarm(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _timed_out(self) -> None:
        self.head_timer = None
        if not self.transport.is_closing():
            self._refuse(408, f"request head not received within {self.head_timeout_s:g} s")

    def _refuse(self, status: int, message: str) -> None:
        body = json.dumps(outcome_body(status, message)).encode()
        head = [
            b"HTTP/1.1 %d %s" % (status, REASONS[status]),
            b"content-type: application/fhir+json",
            b"content-length: %d" % len(body),
            b"connection: close",
        ]
        self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        self.transport.close()


def server_options(settings: Settings, *, tls_cert: str | None, tls_key: str | None) -> dict[str, Any]:
    """uvicorn's options for the API: the bounded protocol, proxies, timeouts, and TLS when given."""
    return {
        "http": PROTOCOL,
        # uvicorn would believe X-Forwarded-For from loopback by default: only the configured proxies.
        "proxy_headers": bool(settings.api_trusted_proxies),
        "forwarded_allow_ips": settings.api_trusted_proxies,
        "server_header": False,
        "timeout_keep_alive": settings.api_keep_alive_s,
        "ssl_certfile": tls_cert,
        "ssl_keyfile": tls_key,
    }


def serve(
    factory: str,
    settings: Settings,
    *,
    host: str,
    port: int,
    workers: int,
    tls_cert: str | None = None,
    tls_key: str | None = None,
) -> None:
    """Run uvicorn on an app factory with the API's server options (bench/ingest.py's bare app runs alike)."""
    import uvicorn

    uvicorn.run(
        factory,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        **server_options(settings, tls_cert=tls_cert, tls_key=tls_key),
    )
