"""A summary request is one trace from the EHR's call through the API, Celery and the worker to vLLM,
exported over OTLP/HTTP to a real receiver the test starts (the collector an operator names)."""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path

import httpx
import pytest

from deploy import patients
from deploy.processes import stop, wait_for
from tests.conftest import BIN, REPO, _env, start_api
from tests.support.header_relay import HeaderRelay
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan

pytestmark = pytest.mark.e2e


def test_one_trace_from_the_api_through_celery_and_the_worker_to_vllm(
    stack: dict[str, str],
    auth: dict[str, str],
    fhir_server: str,
    synthea_files: list[Path],
    tmp_path: Path,
) -> None:
    receiver = OtlpReceiver().start()
    relay = HeaderRelay(stack["llm"]).start()
    # A queue of its own: the session's other worker (without a collector) must not take this job.
    env = {
        "EHRSUM_OTEL_ENDPOINT": receiver.endpoint,
        "EHRSUM_LLM_BASE_URL": relay.url,
        "EHRSUM_WORKER_QUEUES": json.dumps(["traced"]),
    }
    api_proc, api = start_api(tmp_path / "api.log", **env)
    with (tmp_path / "worker.log").open("wb") as log:
        worker = subprocess.Popen(
            [str(BIN / "ehrsum"), "worker", "--pool", "solo"],
            env={**_env(), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
        )
    trace, caller = secrets.token_hex(16), secrets.token_hex(8)
    # A copy of its own: the session's other tests draft the shared patients, and a job whose drafts
    # exist for an unchanged record rightly skips condense and generate.
    patient = patients.load(fhir_server, synthea_files[2])
    try:
        headers = {**auth, "traceparent": f"00-{trace}-{caller}-01"}
        created = httpx.post(
            f"{api}/v1/summaries", json={"patient": patient, "kinds": ["triage"]}, headers=headers
        )
        assert created.status_code == 202, created.text
        job = created.json()
        assert job["trace_id"] == trace  # the EHR's trace, continued

        def finished() -> dict[str, object] | None:
            state = httpx.get(f"{api}/v1/summaries/{job['id']}", headers=auth, timeout=10).json()
            return state if state["status"] in ("succeeded", "failed") else None

        state = wait_for(finished, 1200, "the traced job")  # a shared 2-core CPU vLLM can be slow
        assert state["status"] == "succeeded", state
    finally:
        stop(worker)  # a stopped process exports what it still holds
        stop(api_proc)
        relay.stop()

    def complete() -> list[ReceivedSpan] | None:
        spans = receiver.trace(trace)
        names = {s.name for s in spans}
        return spans if {"POST /v1/summaries", "job summarize", "stage write"} <= names else None

    spans = wait_for(complete, 30, "the job's spans at the collector")
    receiver.stop()
    by_id = {s.span_id: s for s in spans}
    (request,) = [s for s in spans if s.name == "POST /v1/summaries"]
    assert request.service == "ehr-summarizer-api" and request.parent_id == caller
    assert (
        request.attributes["http.route"] == "/v1/summaries"
        and request.attributes["http.response.status_code"] == 202
    )
    (submit,) = [s for s in spans if s.name == "job submit"]
    (run,) = [s for s in spans if s.name == "job summarize"]
    assert submit.parent_id == request.span_id and run.parent_id == submit.span_id
    assert run.service == "ehr-summarizer-worker" and run.attributes["ehrsum.job.id"] == job["id"]
    stages = {s.name for s in spans if s.parent_id == run.span_id}
    assert {"stage fetch", "stage condense", "stage generate", "stage write"} <= stages
    chats = [s for s in spans if s.name == "chat gemma3-270m"]
    assert chats and all(by_id[s.parent_id].name == "generate triage" for s in chats)
    for chat in chats:
        assert chat.kind == "SPAN_KIND_CLIENT"
        for key in (
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.output_tokens",
            "gen_ai.response.time_to_first_chunk",
        ):
            assert chat.attributes[key] > 0, key
        assert chat.attributes["gen_ai.response.model"] == "gemma3-270m"
    # vLLM was asked with the chat span as parent: its own spans (--otlp-traces-endpoint) join the trace.
    sent = [h["traceparent"] for path, h in relay.seen if path.endswith("/chat/completions")]
    assert sorted(p.split("-")[2] for p in sent) == sorted(c.span_id for c in chats)
    assert all(p.split("-")[1] == trace for p in sent)
    # The FHIR calls are in it too, and carried the trace on to the FHIR server.
    assert any(s.name.startswith("FHIR ") and s.service == "ehr-summarizer-worker" for s in spans)
    assert set(receiver.content_types) == {"application/x-protobuf"}
    # No patient id in any attribute of any span the collector received.
    assert not [s.name for s in receiver.spans if patient in json.dumps(s.attributes)]
