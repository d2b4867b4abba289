#!/usr/bin/env python3
"""A bare ASGI endpoint, served as `ehrsum api` serves ours: bench/ingest.py's baseline.

.venv/bin/python -m bench.bare_asgi --port PORT [--workers N]

No framework, no middleware: every request's body is read to its end, then answered 200 with the same
OperationOutcome our webhook sends. uvicorn runs it through `services.api.server.serve`, so the
protocol (the bounded httptools one), event loop, worker count, keep-alive and logging are ours.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.api.outcomes import FHIR_JSON
from services.api.server import serve
from services.core.logging import configure_logging
from services.core.settings import get_settings

BODY = json.dumps(
    {
        "resourceType": "OperationOutcome",
        "issue": [
            {"severity": "information", "code": "informational", "diagnostics": "notification received"}
        ],
    }
).encode()
HEADERS = [(b"content-type", FHIR_JSON.encode()), (b"content-length", str(len(BODY)).encode())]


async def bare(scope: Scope, receive: Receive, send: Send) -> None:
    """Read the whole body, answer 200 (lifespan events are acknowledged)."""
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        more = bool(message.get("more_body"))
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def create_app() -> ASGIApp:
    """The bare endpoint (a factory, as `ehrsum api` serves ours)."""
    return bare


def main() -> int:
    """Serve the bare endpoint on loopback with the API's server settings."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    settings = get_settings()
    configure_logging(settings.log_level)
    serve("bench.bare_asgi:create_app", settings, host="127.0.0.1", port=args.port, workers=args.workers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
