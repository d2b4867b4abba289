"""A real HTTP proxy in front of a real server that injects faults (status codes, Retry-After) on demand.

Like a reverse proxy configured for its upstream, it answers the upstream's absolute URLs (a Bundle's
next links) under its own base: the client follows links only on the server it was configured with.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


@dataclass
class Fault:
    """Answer `status` (with optional Retry-After and body) to the next `times` requests matching `path`."""

    path: str
    status: int
    times: int
    retry_after: str | None = None
    body: bytes = b""


GONE = b'{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found"}]}'


@dataclass
class FaultProxy:
    """Forwards to `upstream`; counts requests; applies faults first; can reshape a searchset's paging.

    `links`: "absolute" (as the upstream sends them), "relative" (`Observation?...`), "rooted"
    (`/fhir/Observation?...`) or "getpages" (HAPI's opaque `?_getpages=TOKEN` on the base). `expire` makes
    the next `expire` page-token requests answer 410 Gone, as a server does once it dropped its cursor.
    """

    upstream: str
    faults: list[Fault] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    links: str = "absolute"
    drop_total: bool = False
    expire: int = 0
    tokens: dict[str, str] = field(default_factory=dict)

    def reshape(self, content: bytes) -> bytes:
        """A searchset with its next link in the configured form and, if asked, no `total`."""
        try:
            bundle = json.loads(content)
        except ValueError:
            return content
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            return content
        if self.drop_total:
            bundle.pop("total", None)
        base = self.url.rstrip("/")
        for link in bundle.get("link", []):
            url = str(link.get("url", ""))
            if link.get("relation") != "next" or not url.startswith(base):
                continue
            tail = url[len(base) + 1 :]
            if self.links == "relative":
                link["url"] = tail
            elif self.links == "rooted":
                link["url"] = f"{httpx.URL(base).path}/{tail}"
            elif self.links == "getpages":
                token = uuid.uuid4().hex
                self.tokens[token] = tail
                link["url"] = f"{base}?_getpages={token}&_getpagesoffset=0&_bundletype=searchset"
        return json.dumps(bundle).encode()

    @property
    def url(self) -> str:
        """Base URL of the proxy (same path as upstream)."""
        assert self.server is not None
        path = httpx.URL(self.upstream).path
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def start(self) -> FaultProxy:
        """Serve on a free loopback port in a thread."""
        proxy = self
        upstream = httpx.URL(self.upstream)

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def _handle(self) -> None:
                proxy.seen.append(f"{self.command} {self.path}")
                for fault in proxy.faults:
                    if fault.times > 0 and re.search(fault.path, self.path):
                        fault.times -= 1
                        self.send_response(fault.status)
                        if fault.retry_after is not None:
                            self.send_header("Retry-After", fault.retry_after)
                        self.send_header("Content-Type", "application/fhir+json")
                        self.send_header("Content-Length", str(len(fault.body)))
                        self.end_headers()
                        self.wfile.write(fault.body)
                        return
                path = self.path
                token = re.search(r"_getpages=([0-9a-f]+)", path)
                if token is not None:
                    if proxy.expire > 0 or token[1] not in proxy.tokens:
                        proxy.expire = max(0, proxy.expire - 1)
                        self.send_response(410)
                        self.send_header("Content-Type", "application/fhir+json")
                        self.send_header("Content-Length", str(len(GONE)))
                        self.end_headers()
                        self.wfile.write(GONE)
                        return
                    path = f"{httpx.URL(proxy.upstream).path.rstrip('/')}/{proxy.tokens[token[1]]}"
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
                }
                target = upstream.copy_with(raw_path=path.encode())
                answer = httpx.request(self.command, target, content=body, headers=headers, timeout=30)
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in (
                        "content-length",
                        "transfer-encoding",
                        "connection",
                        "content-encoding",
                    ):
                        # Location headers too (a Bulk export's status URL): clients stay on the proxy.
                        self.send_header(key, value.replace(proxy.upstream.rstrip("/"), proxy.url))
                content = answer.content.replace(proxy.upstream.rstrip("/").encode(), proxy.url.encode())
                if self.command == "GET" and answer.status_code == 200:
                    content = proxy.reshape(content)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_DELETE = _handle  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Shut the proxy down."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
