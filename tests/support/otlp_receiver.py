"""A real OTLP/HTTP trace receiver (protobuf, `POST /v1/traces`): the collector an operator would name."""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.support.loopback import Loopback


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as the collector got it: ids in hex, attributes as plain values, its service."""

    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    kind: str
    attributes: dict[str, Any]
    status: str


def _value(value: dict[str, Any]) -> Any:
    if "arrayValue" in value:
        return [_value(v) for v in value["arrayValue"].get("values", [])]
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in value:
            return value[key]
    if "intValue" in value:
        return int(value["intValue"])
    return None


def _hex(value: str) -> str:
    return base64.b64decode(value).hex() if value else ""


@dataclass
class OtlpReceiver(Loopback):
    """Serves on a free loopback port; keeps every span it is sent, and the requests' content types."""

    spans: list[ReceivedSpan] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def endpoint(self) -> str:
        """The base URL to configure (the exporter appends /v1/traces)."""
        return self.origin

    def add(self, body: bytes) -> None:
        """Decode one ExportTraceServiceRequest."""
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        found = []
        for resource_spans in MessageToDict(request).get("resourceSpans", []):
            named = resource_spans["resource"].get("attributes", [])
            resource = {a["key"]: _value(a["value"]) for a in named}
            for scope in resource_spans.get("scopeSpans", []):
                for span in scope.get("spans", []):
                    found.append(
                        ReceivedSpan(
                            service=str(resource.get("service.name")),
                            name=span["name"],
                            trace_id=_hex(span["traceId"]),
                            span_id=_hex(span["spanId"]),
                            parent_id=_hex(span.get("parentSpanId", "")),
                            kind=span.get("kind", ""),
                            attributes={a["key"]: _value(a["value"]) for a in span.get("attributes", [])},
                            status=span.get("status", {}).get("code", ""),
                        )
                    )
        with self.lock:
            self.spans.extend(found)

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        """The spans of one trace received so far."""
        with self.lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def handler(self) -> type[BaseHTTPRequestHandler]:
        """Requests go to this object."""
        return _handler(self)


def _handler(receiver: OtlpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            return

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            receiver.content_types.append(self.headers.get("Content-Type", ""))
            if self.path != "/v1/traces":
                self.send_response(404)
                self.end_headers()
                return
            receiver.add(body)
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    return Handler
