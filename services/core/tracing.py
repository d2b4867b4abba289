"""Traces: spans and the pipeline's stage timings are one mechanism; OTLP export when configured.

Every process keeps a tracer provider of its own (not OpenTelemetry's global one, which can be set only
once: a forked Celery child and the tests replace it). Spans always get real ids, so a job's trace id is
stored and audited even when nothing is exported; spans leave the process only when
`EHRSUM_OTEL_ENDPOINT` names a collector (OTLP over HTTP/protobuf, `{endpoint}/v1/traces`).

No PHI in any attribute: ids of jobs and drafts, note kinds, counts, model names, token counts, status
codes, FHIR resource types. Never a patient id, a name, a value, a prompt or an answer. Context travels as
W3C `traceparent`: API request → job row and Celery message → worker → FHIR and vLLM request headers.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

SCOPE = "ehr-summarizer"
TRACEPARENT = "traceparent"
AttributeValue = str | bool | int | float | Sequence[str] | Sequence[int] | Sequence[float]

_propagator = TraceContextTextMapPropagator()
_provider: TracerProvider | None = None
_tracer: trace.Tracer | None = None  # the provider's, made once: get_tracer builds a new one per call
# The stage timings of the run in progress (seconds per stage name); None outside a run.
_timings: contextvars.ContextVar[dict[str, float] | None] = contextvars.ContextVar("timings", default=None)


def configure(
    service: str, endpoint: str | None = None, *, extra: Sequence[SpanProcessor] = ()
) -> TracerProvider:
    """Give this process a tracer provider for `service`, exporting to `endpoint` (None: no export).

    `extra` adds span processors (the tests' in-memory exporter). Calling it again replaces the provider,
    flushing the old one (a forked Celery child needs its own exporter thread)."""
    global _provider, _tracer
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        url = endpoint.rstrip("/") + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url, timeout=10)))
    for processor in extra:
        provider.add_span_processor(processor)
    old, _provider, _tracer = _provider, provider, provider.get_tracer(SCOPE)
    if old is not None:
        old.shutdown()
    return provider


def shutdown() -> None:
    """Export what is pending and stop (at process exit)."""
    if _provider is not None:
        _provider.force_flush()


def tracer() -> trace.Tracer:
    """This process's tracer (a provider without export until `configure` is called)."""
    if _tracer is None:
        configure(SCOPE)
    assert _tracer is not None
    return _tracer


@contextmanager
def span(
    name: str,
    attributes: Mapping[str, AttributeValue | None] | None = None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: str | None = None,
) -> Iterator[Span]:
    """A span around the block, child of `parent` (a traceparent) or of the current span; an exception
    marks it as an error with its type only (a message may carry PHI)."""
    context = extract({TRACEPARENT: parent}) if parent else None
    clean = {k: v for k, v in (attributes or {}).items() if v is not None}
    with tracer().start_as_current_span(
        name,
        context=context,
        kind=kind,
        attributes=clean,
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except BaseException as exc:
            current.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            current.set_attribute("error.type", type(exc).__name__)
            raise


@contextmanager
def collecting(timings: dict[str, float]) -> Iterator[dict[str, float]]:
    """Stages run inside the block add their seconds to `timings` (tasks the block starts share it)."""
    token = _timings.set(timings)
    try:
        yield timings
    finally:
        _timings.reset(token)


@contextmanager
def stage(name: str, attributes: Mapping[str, AttributeValue | None] | None = None) -> Iterator[Span]:
    """A pipeline stage: a span `stage NAME`, whose wall time is also added to the run's timings."""
    started = time.perf_counter()
    try:
        with span(f"stage {name}", {"ehrsum.stage": name, **(attributes or {})}) as current:
            yield current
    finally:
        timings = _timings.get()
        if timings is not None:
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - started


def inject(headers: dict[str, str] | None = None) -> dict[str, str]:
    """`headers` with the current span's `traceparent` added (nothing when no span is current)."""
    carrier = dict(headers or {})
    _propagator.inject(carrier)
    return carrier


def extract(carrier: Mapping[str, Any]) -> otel_context.Context:
    """The context a carrier's `traceparent` names (the empty context for a missing or malformed one)."""
    value = carrier.get(TRACEPARENT)
    return _propagator.extract({TRACEPARENT: value} if isinstance(value, str) else {})


def current_traceparent() -> str | None:
    """The current span as a `traceparent` value; None when no span is current."""
    return inject().get(TRACEPARENT)


def trace_id_of(traceparent: str | None) -> str | None:
    """The 32-hex trace id of a traceparent; None when it is not one."""
    context = trace.get_current_span(extract({TRACEPARENT: traceparent})).get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def current_trace_id() -> str | None:
    """The trace id of the current span; None when no span is current."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


@contextmanager
def attached(traceparent: str | None) -> Iterator[None]:
    """Make the span a traceparent names current for the block (to publish a job in its own trace)."""
    if not traceparent:
        yield
        return
    token = otel_context.attach(extract({TRACEPARENT: traceparent}))
    try:
        yield
    finally:
        otel_context.detach(token)
