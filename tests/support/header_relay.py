"""A real HTTP relay in front of the real LLM server that records the headers each request came with."""

from __future__ import annotations

from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

import httpx

from tests.support.loopback import Loopback

HOP = {"host", "content-length", "transfer-encoding", "connection"}


@dataclass
class HeaderRelay(Loopback):
    """Forwards to `upstream` (streamed answers included); keeps (path, headers) of every request."""

    upstream: str
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    @property
    def url(self) -> str:
        """This relay's base URL (the upstream's path kept)."""
        path = httpx.URL(self.upstream).path.rstrip("/")
        return f"{self.origin}{path}"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        """Requests go to this object."""
        return _handler(self)


def _handler(relay: HeaderRelay) -> type[BaseHTTPRequestHandler]:
    origin = str(httpx.URL(relay.upstream).copy_with(path="/", query=None)).rstrip("/")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            return

        def _relay(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            relay.seen.append((self.path, headers))
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            sent = {k: v for k, v in headers.items() if k not in HOP}
            with (
                httpx.Client(timeout=600) as client,
                client.stream(self.command, f"{origin}{self.path}", headers=sent, content=body) as answer,
            ):
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in HOP:
                        self.send_header(key, value)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for chunk in answer.iter_raw():
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")

        do_GET = do_POST = _relay  # noqa: N815

    return Handler
