"""A test HTTP server of our own on a free loopback port, served from a thread."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class Loopback:
    """Mixin: `start()` serves `handler()` on 127.0.0.1 (a free port) until `stop()`."""

    server: ThreadingHTTPServer | None = None

    def handler(self) -> type[BaseHTTPRequestHandler]:
        """The request handler class, bound to this object."""
        raise NotImplementedError

    @property
    def origin(self) -> str:
        """http://127.0.0.1:PORT"""
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> Self:
        """Serve in a daemon thread."""
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self.server is not None:
            self.server.shutdown()
