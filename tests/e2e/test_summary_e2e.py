"""The whole path as an integrator drives it: POST /v1/summaries → worker → draft on the FHIR server."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import time
from typing import Any

import httpx
import pytest

from clinical_notes.coverage import missing, must_mention
from clinical_notes.draft import NoteDraft
from fhir_adapters.client import FhirClient
from fhir_adapters.condense import condense
from fhir_adapters.evidence import RecordEvidence
from fhir_adapters.labels import AIAST_SYSTEM
from fhir_adapters.record import PatientRecord, fetch_record
from tests.conftest import BIN, REPO, _env

PROGRESS = "11506-3"  # LOINC progress note, the type of a progress draft

pytestmark = pytest.mark.e2e


def wait_job(api: str, job_id: str, auth: dict[str, str], timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"{api}/v1/summaries/{job_id}", headers=auth, timeout=10).json()
        if job["status"] in ("succeeded", "failed"):
            return job  # type: ignore[no-any-return]
        time.sleep(1)
    raise TimeoutError(f"job {job_id} still {job['status']}")


def drafts_of(fhir: str, patient: str) -> list[dict[str, Any]]:
    params = {"patient": patient, "_security": f"{AIAST_SYSTEM}|AIAST", "_count": "1000"}
    bundle = httpx.get(f"{fhir}/DocumentReference", params=params, timeout=30).json()
    return [
        e["resource"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode", "match") == "match"
    ]


async def fetched(fhir: str, patient: str) -> PatientRecord:
    async with FhirClient(fhir) as client:
        return await fetch_record(client, patient)


def test_summary_request_ends_with_one_verified_draft(
    api: str,
    auth: dict[str, str],
    worker: subprocess.Popen[bytes],
    fhir_server: str,
    loaded_patients: list[str],
) -> None:
    patient = loaded_patients[0]
    body = {"patient": patient, "kinds": ["progress"]}
    answer = httpx.post(f"{api}/v1/summaries", json=body, headers=auth, timeout=30)
    assert answer.status_code == 202, answer.text
    job = wait_job(api, answer.json()["id"], auth)
    assert job["status"] == "succeeded", job["reason"]
    [draft_ref] = job["draft_refs"]

    doc = httpx.get(f"{fhir_server}/{draft_ref}", timeout=30).json()
    assert doc["docStatus"] == "preliminary" and doc["status"] == "current"
    assert doc["subject"]["reference"] == f"Patient/{patient}"
    assert any(s["code"] == "AIAST" for s in doc["meta"]["security"])
    markdown = base64.b64decode(doc["content"][0]["attachment"]["data"]).decode()
    assert "AI-generated draft" in markdown and "## Sources" in markdown
    # Complete whatever the model wrote: every active problem, active medication and allergy stated and cited.
    draft = NoteDraft.model_validate_json(base64.b64decode(doc["content"][1]["attachment"]["data"]))
    record = asyncio.run(fetched(fhir_server, patient))
    facts = must_mention(condense(record))
    assert {f.category for f in facts} >= {"active problem", "active medication"}
    assert missing(draft, facts, RecordEvidence(record)) == []
    provenance = httpx.get(f"{fhir_server}/Provenance", params={"target": draft_ref}, timeout=30).json()
    [prov] = [e["resource"] for e in provenance["entry"]]
    cited = {e["what"]["reference"] for e in prov["entity"]}
    assert cited and all(httpx.get(f"{fhir_server}/{ref}", timeout=30).is_success for ref in cited)

    # Re-running the same request (a retried job) writes no second draft, and ours is the one current
    # progress note (other tests of the session may have drafted other kinds for this patient).
    before = sorted(d["id"] for d in drafts_of(fhir_server, patient))
    again = httpx.post(f"{api}/v1/summaries", json={"patient": patient}, headers=auth, timeout=30).json()
    rerun = wait_job(api, again["id"], auth)
    assert rerun["status"] == "succeeded" and rerun["draft_refs"] == [draft_ref]
    after = drafts_of(fhir_server, patient)
    assert sorted(d["id"] for d in after) == before
    current = [
        d["id"] for d in after if d["status"] == "current" and d["type"]["coding"][0]["code"] == PROGRESS
    ]
    assert current == [draft_ref.split("/")[1]]


def test_unknown_patient_fails_with_reason(
    api: str, auth: dict[str, str], worker: subprocess.Popen[bytes]
) -> None:
    answer = httpx.post(f"{api}/v1/summaries", json={"patient": "nobody-here"}, headers=auth, timeout=30)
    job = wait_job(api, answer.json()["id"], auth)
    assert job["status"] == "failed" and job["reason"] == "Patient/nobody-here not found"


@pytest.mark.parametrize(
    "body", [{"kinds": ["progress"]}, {"patient": "a b"}, {"patient": "x", "kinds": ["poem"]}]
)
def test_malformed_body_is_a_422_operation_outcome(
    api: str, auth: dict[str, str], body: dict[str, Any]
) -> None:
    answer = httpx.post(f"{api}/v1/summaries", json=body, headers=auth, timeout=30)
    assert answer.status_code == 422
    assert answer.json()["resourceType"] == "OperationOutcome"


def test_unknown_job_is_a_404_operation_outcome(api: str, auth: dict[str, str]) -> None:
    answer = httpx.get(f"{api}/v1/summaries/does-not-exist", headers=auth, timeout=30)
    assert answer.status_code == 404 and answer.json()["issue"][0]["code"] == "not-found"


def test_readyz_checks_every_dependency(api: str) -> None:
    answer = httpx.get(f"{api}/readyz", timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["checks"] == {"database": "ok", "broker": "ok", "fhir": "ok", "llm": "ok"}


def test_cli_malformed_bundle_is_one_line_exit_2(tmp_path: Any) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    done = subprocess.run(
        [str(BIN / "ehrsum"), "timeline", str(bad), "--json"],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "is not JSON" in done.stderr
