"""One trace per job: the stages as children of the job's span, the LLM calls with the GenAI attributes,
stage timings from the same spans, and no patient data in any attribute (SDK in-memory exporter)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlmodel import select

from deploy import patients
from fhir_adapters.audit_events import run_event_id
from services.core import tracing
from services.core.db import session_scope
from services.jobs.service import create_job, get_job
from services.metrics.models import JobUsage
from workers.jobrunner import run_job

pytestmark = pytest.mark.integration
KINDS = ["progress", "triage"]


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    """This process's spans, kept in memory."""
    exporter = InMemorySpanExporter()
    tracing.configure("ehr-summarizer-test", extra=[SimpleSpanProcessor(exporter)])
    yield exporter
    tracing.configure("ehr-summarizer-test")


def record_words(bundle: Path, patient_id: str) -> set[str]:
    """What a leak would look like: the patient's id, names, birth date, address, phone, identifiers,
    and the record's coded texts and measured values."""
    words = {patient_id}
    for entry in json.loads(bundle.read_text())["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Patient":
            for name in resource.get("name", []):
                words.update([*name.get("given", []), name.get("family", "")])
            words.add(resource.get("birthDate", ""))
            words.update(line for a in resource.get("address", []) for line in a.get("line", []))
            words.update(t.get("value", "") for t in resource.get("telecom", []))
            words.update(i.get("value", "") for i in resource.get("identifier", []))
        for coding in (resource.get("code") or {}).get("coding", []):
            words.add(coding.get("display", ""))
        quantity = resource.get("valueQuantity") or {}
        if "value" in quantity and "unit" in quantity:
            words.add(f"{quantity['value']} {quantity['unit']}")
    return {w for w in words if len(w) >= 4}


@dataclass(frozen=True)
class Seen:
    """A finished span, plainly: ids in hex, attributes, seconds."""

    name: str
    trace: str
    id: str
    parent: str | None
    attributes: dict[str, Any]
    seconds: float

    @classmethod
    def of(cls, span: ReadableSpan) -> Seen:
        assert span.context is not None and span.start_time is not None and span.end_time is not None
        return cls(
            span.name,
            format(span.context.trace_id, "032x"),
            format(span.context.span_id, "016x"),
            format(span.parent.span_id, "016x") if span.parent else None,
            dict(span.attributes or {}),
            (span.end_time - span.start_time) / 1e9,
        )

    def texts(self) -> list[str]:
        """The name, and every attribute key and value as text."""
        values = [self.name]
        for key, value in self.attributes.items():
            values += [key, *(str(v) for v in value)] if isinstance(value, tuple) else [key, str(value)]
        return values


def test_one_trace_per_job_with_its_stages_llm_calls_and_no_patient_data(
    exported: InMemorySpanExporter,
    stack: dict[str, str],
    synthea_files: list[Path],
    fhir_server: str,
) -> None:
    # A copy of its own: a job whose drafts exist for an unchanged record rightly skips condense and generate.
    patient = patients.load(fhir_server, synthea_files[0])
    with session_scope() as session:
        job, _ = create_job(session=session, patient_id=patient, kinds=KINDS)
        job_id = job.id
    outcome = run_job(job_id)
    with session_scope() as session:
        job = get_job(session=session, job_id=job_id)
        usage = session.exec(select(JobUsage).where(JobUsage.job_id == job_id)).first()
    assert outcome.status.value == "succeeded", job.reason
    spans = [Seen.of(s) for s in exported.get_finished_spans()]
    assert {s.trace for s in spans if s.attributes.get("ehrsum.job.id") == job_id} == {job.trace_id}
    ours = [s for s in spans if s.trace == job.trace_id]
    by_id = {s.id: s for s in ours}

    def named(name: str) -> list[Seen]:
        return [s for s in ours if s.name == name]

    (submit,) = named("job submit")
    (run,) = named("job summarize")
    assert submit.parent is None and by_id[str(run.parent)] is submit
    for stage in ("fetch", "condense", "generate", "write"):
        (found,) = named(f"stage {stage}")
        assert found.parent == run.id, stage
    for kind in KINDS:
        (generate,) = named(f"generate {kind}")
        assert generate.parent == named("stage generate")[0].id
        children = [s for s in ours if s.parent == generate.id]
        assert {"stage compose", "stage verify"} <= {s.name for s in children}
        chats = [s for s in children if s.name == "chat gemma3-270m"]
        assert chats, kind
        for chat in chats:
            a = chat.attributes
            assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.request.model"] == "gemma3-270m"
            assert a["gen_ai.response.model"] == "gemma3-270m"
            assert a["gen_ai.usage.input_tokens"] > 100 and a["gen_ai.usage.output_tokens"] > 0
            assert a["gen_ai.response.finish_reasons"] in (("stop",), ("length",))
            assert 0 < a["gen_ai.response.time_to_first_chunk"] < chat.seconds
    # The FHIR calls are in the same trace, write-back included (one transaction for both kinds).
    writes = [s for s in ours if s.attributes.get("fhir.resource_type") == "transaction"]
    assert len(writes) == 1 and writes[0].parent == named("stage write")[0].id
    # The stage timings the job stored are the spans' durations (one mechanism).
    assert usage is not None and usage.fetch_s == pytest.approx(named("stage fetch")[0].seconds, rel=0.05)
    assert usage.verify_s > 0
    # No patient data in any attribute of any span of the process.
    leaks = record_words(synthea_files[0], patient)
    leaked = [(s.name, text) for s in spans for text in s.texts() for w in leaks if w in text]
    assert leaked == [], leaked[:5]
    # The job's AuditEvent names its trace.
    event: dict[str, Any] = httpx.get(f"{fhir_server}/AuditEvent/{run_event_id(job_id)}", timeout=30).json()
    traced = [e["what"]["identifier"]["value"] for e in event["entity"] if "trace" in str(e.get("type"))]
    assert traced == [job.trace_id]
    assert sorted(
        r
        for r in (e["what"].get("reference") for e in event["entity"])
        if r and r.startswith("DocumentReference/")
    ) == sorted(job.draft_refs)
