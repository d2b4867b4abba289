"""A SOAP note from a visit transcript, as an integrator drives it: the transcript on the FHIR server (a
Binary its DocumentReference points at), POST /v1/summaries with the encounter, a worker, the draft citing
turns; and offline, `ehrsum summarize --record --encounter` then `ehrsum verify` on what it wrote."""

from __future__ import annotations

import base64
import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.aci_bundles import bundle
from clinical_notes.draft import NoteDraft
from tests.conftest import BIN, REPO, _env
from tests.e2e.test_summary_e2e import wait_job
from tests.unit.test_transcripts import VISIT

pytestmark = pytest.mark.e2e


def _put(fhir: str, resource: dict[str, Any]) -> None:
    url = f"{fhir}/{resource['resourceType']}/{resource['id']}"
    answer = httpx.put(url, json=resource, timeout=30)
    assert answer.is_success, answer.text


def _load(fhir: str, patient: str, name: str) -> tuple[str, str]:
    """Patient, encounter and a transcript DocumentReference whose text is a Binary; (encounter, document)."""
    data = bundle(name, VISIT, patient_id=patient, url=f"Binary/bin-{name}")
    binary = {
        "resourceType": "Binary",
        "id": f"bin-{name}",
        "contentType": "text/plain",
        "data": base64.b64encode(VISIT.encode()).decode(),
    }
    _put(fhir, binary)
    for entry in data["entry"]:
        _put(fhir, entry["resource"])
    return data["entry"][1]["resource"]["id"], data["entry"][2]["resource"]["id"]


def _draft(fhir: str, ref: str) -> tuple[NoteDraft, str]:
    doc = httpx.get(f"{fhir}/{ref}", timeout=30).json()
    markdown = base64.b64decode(doc["content"][0]["attachment"]["data"]).decode()
    return NoteDraft.model_validate_json(base64.b64decode(doc["content"][1]["attachment"]["data"])), markdown


def test_soap_job_for_an_encounter_composes_and_cites_its_transcript(
    api: str, auth: dict[str, str], worker: subprocess.Popen[bytes], fhir_server: str
) -> None:
    patient = f"tx-{uuid.uuid4().hex[:12]}"
    encounter, document = _load(fhir_server, patient, patient)
    body = {"patient": patient, "kinds": ["soap"], "encounter": f"Encounter/{encounter}"}
    answer = httpx.post(f"{api}/v1/summaries", json=body, headers=auth, timeout=30)
    assert answer.status_code == 202, answer.text
    assert answer.json()["encounter_id"] == encounter
    job = wait_job(api, answer.json()["id"], auth, timeout=900)  # one model call, on a shared 2-core CPU
    assert job["status"] == "succeeded", job["reason"]
    report = job["report"]["soap"]["transcript"]
    assert report["ref"] == f"DocumentReference/{document}" and report["turns"] == len(VISIT.splitlines())
    draft, markdown = _draft(fhir_server, job["draft_refs"][0])
    said = {
        s.text: s.citations for section in draft.sections for s in section.statements if s.author == "record"
    }
    turn = f"DocumentReference/{document}#turn-"
    assert said["Denies fever and chills."] == [f"{turn}3", f"{turn}4"]
    assert said['Reports knee pain ("for about two weeks").'] == [f"{turn}2"]
    assert any(t.startswith("Takes ibuprofen 400 mg twice a day") for t in said)
    assert "turn 4, patient: “no .”" in markdown  # Sources show the speaker and the words
    doc = httpx.get(f"{fhir_server}/{job['draft_refs'][0]}", timeout=30).json()
    assert doc["context"]["encounter"][0]["reference"] == f"Encounter/{encounter}"
    provenance = httpx.get(f"{fhir_server}/Provenance", params={"target": job["draft_refs"][0]}, timeout=30)
    cited = {e["what"]["reference"] for e in provenance.json()["entry"][0]["resource"]["entity"]}
    assert f"DocumentReference/{document}" in cited and not any("#" in ref for ref in cited)


def test_an_encounter_of_another_patient_fails_the_job_with_its_reason(
    api: str, auth: dict[str, str], worker: subprocess.Popen[bytes], fhir_server: str
) -> None:
    mine, other = f"tx-{uuid.uuid4().hex[:12]}", f"tx-{uuid.uuid4().hex[:12]}"
    _load(fhir_server, mine, mine)
    their_encounter, _ = _load(fhir_server, other, other)
    body = {"patient": mine, "kinds": ["soap"], "encounter": their_encounter}
    job = wait_job(
        api, httpx.post(f"{api}/v1/summaries", json=body, headers=auth, timeout=30).json()["id"], auth
    )
    assert job["status"] == "failed" and "is not an encounter of Patient/" in job["reason"]
    for bad in ("../Patient/x", "a" * 65, {"x": 1}):
        answer = httpx.post(f"{api}/v1/summaries", json={**body, "encounter": bad}, headers=auth, timeout=30)
        assert answer.status_code == 422 and answer.json()["resourceType"] == "OperationOutcome"


def test_offline_summarize_with_an_encounter_then_verify(tmp_path: Path, llm_server: str) -> None:
    record = tmp_path / "visit.json"
    record.write_text(json.dumps(bundle("offline", VISIT)))
    out = tmp_path / "draft.json"
    command = [str(BIN / "ehrsum"), "summarize", "--record", str(record), "--kind", "soap"]
    done = subprocess.run(
        [*command, "--encounter", "enc-offline", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=_env(),
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "VISIT" not in done.stderr and "ibuprofen" not in done.stderr  # transcript text never logged
    verify = [str(BIN / "ehrsum"), "verify", "--record", str(record), "--draft", str(out)]
    checked = subprocess.run(verify, capture_output=True, text=True, cwd=REPO, check=False)
    assert checked.returncode == 0, checked.stdout
    draft = json.loads(out.read_text())
    for section in draft["sections"]:
        for statement in section["statements"]:
            if statement["text"] == "Denies fever and chills.":
                statement["text"] = "Reports fever and chills."
    out.write_text(json.dumps(draft))
    flipped = subprocess.run(verify, capture_output=True, text=True, cwd=REPO, check=False)
    assert flipped.returncode == 1 and "negation_contradicted" in flipped.stdout
