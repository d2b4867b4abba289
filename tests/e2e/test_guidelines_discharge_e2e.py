"""A discharged clinosim patient through the real pipeline, sekmet-fhir and the CPU vLLM: the discharge
medication guide in the patient's preferred language (Korean) with every change, and a progress note whose
prompt held guideline passages from the folder and from a PlanDefinition on the server."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from clinical_notes.discharge import CHANGED, STARTED, STOPPED
from clinical_notes.guidelines import is_guideline
from fhir_adapters.record import record_from_bundle
from services.core.settings import get_settings
from tests.conftest import REPO
from workers.clients import fhir_client, llm_client
from workers.pipeline import Pipeline

pytestmark = pytest.mark.e2e
SAMPLE = REPO / "deploy" / "guidelines"
PLAN = {
    "resourceType": "PlanDefinition",
    "status": "active",
    "name": "WardHeartFailureProtocol",
    "title": "Ward heart failure discharge protocol",
    "version": "4",
    "action": [
        {
            "title": "Daily weights after discharge",
            "description": "Patients discharged after heart failure weigh themselves daily and call for a "
            "gain of more than 2 kg in 3 days.",
        }
    ],
}


@pytest.fixture(scope="module")
def discharged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One clinosim heart-failure admission with discharge orders; the patient prefers Korean."""
    from deploy import patients

    [path] = patients.clinosim_discharge_bundles(
        1, 23, tmp_path_factory.mktemp("discharge"), disease="heart_failure_exacerbation"
    )
    bundle = json.loads(path.read_text(encoding="utf-8"))
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Patient":
            entry["resource"]["communication"] = [
                {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "ko-KR"}]}, "preferred": True}
            ]
    path.write_text(json.dumps(bundle), encoding="utf-8")
    return path


def structured(fhir: str, ref: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The DocumentReference, its structured draft and its markdown."""
    doc = httpx.get(f"{fhir}/{ref}", timeout=30).json()
    parts = {c["attachment"]["contentType"].split(";")[0]: c["attachment"]["data"] for c in doc["content"]}
    text = {key: base64.b64decode(data).decode("utf-8") for key, data in parts.items()}
    return doc, json.loads(text["application/json"]), text["text/markdown"]


@pytest.fixture(scope="module")
def loaded(stack: dict[str, str], discharged: Path) -> tuple[str, set[str]]:
    """The patient on sekmet, a PlanDefinition there too, and the drugs of the record's discharge orders."""
    from deploy import patients

    patient = patients.load(stack["fhir"], discharged)
    assert httpx.post(f"{stack['fhir']}/PlanDefinition", json=PLAN, timeout=30).status_code == 201
    raw = json.loads(discharged.read_text(encoding="utf-8"))
    ordered = {
        e["resource"]["medicationCodeableConcept"]["text"]
        for e in raw["entry"]
        if e["resource"]["resourceType"] == "MedicationRequest"
        and any(
            c.get("code") == "discharge" for cat in e["resource"].get("category", []) for c in cat["coding"]
        )
    }
    return patient, ordered


async def test_guide_and_guidelines_through_the_pipeline(
    stack: dict[str, str], loaded: tuple[str, set[str]]
) -> None:
    fhir_server = stack["fhir"]
    patient, ordered = loaded
    settings = get_settings().model_copy(
        update={"guidelines_dir": SAMPLE, "guidelines_fhir": True, "fhir_base_url": fhir_server}
    )
    async with fhir_client(settings) as fhir, llm_client(settings) as llm:
        pipeline = Pipeline(settings, llm=llm, fhir=fhir)
        library = await pipeline.guideline_library()
        assert library is not None and any(
            p.source and p.source.startswith("PlanDefinition/") for p in library.passages
        )
        result = await pipeline.summarize(patient, ["progress", "discharge-medications"])
    progress, guide = result.results
    assert progress.draft_ref and guide.draft_ref

    # The guide: Korean, a preliminary draft of type 8653-8, every change the record holds, readability shown.
    doc, draft, markdown = await asyncio.to_thread(structured, fhir_server, guide.draft_ref)
    assert doc["docStatus"] == "preliminary" and doc["type"]["coding"][0]["code"] == "8653-8"
    assert (
        draft["verification"]["language"] == "ko"
        and "퇴원 후 복용하실 약" in doc["content"][0]["attachment"]["title"]
    )
    assert "characters_per_sentence" in draft["verification"]["readability"] and "읽기 수준" in markdown
    said = " ".join(
        s["text"]
        for sec in draft["sections"]
        if sec["title"] in (STARTED, CHANGED, STOPPED)
        for s in sec["statements"]
    )
    assert ordered and all(name in said for name in ordered)
    assert draft["verification"]["record_statements_dropped"] == 0

    # The progress note: its prompt held passages; whatever cites one is the model's, verified, and carried.
    doc, draft, markdown = await asyncio.to_thread(structured, fhir_server, progress.draft_ref)
    cited = {c for sec in draft["sections"] for s in sec["statements"] for c in s["citations"]}
    carried = {f"Guideline/{p['id']}" for p in draft["guidelines"]}
    assert {c for c in cited if is_guideline(c)} == carried
    async with httpx.AsyncClient(timeout=30) as client:
        found = await client.get(f"{fhir_server}/Provenance", params={"target": progress.draft_ref})
    provenance = found.json()
    entities = [
        e["what"]["reference"] for entry in provenance.get("entry", []) for e in entry["resource"]["entity"]
    ]
    assert entities and not any(is_guideline(r) for r in entities)
    plan = next((sec for sec in draft["sections"] if sec["title"] == "Plan considerations"), None)
    assert plan is not None and any(
        "guideline library" in s["text"] or is_guideline(c)
        for s in plan["statements"]
        for c in s["citations"] or [""]
    )


async def test_no_discharge_no_guide(llm_server: str, synthea_files: list[Path]) -> None:
    from fhir_adapters.record import PatientRecord

    record = record_from_bundle(synthea_files[0])
    stays = [r for r in record.resources if r.startswith("Encounter/")]
    record = PatientRecord(record.patient_id, {k: v for k, v in record.resources.items() if k not in stays})
    async with llm_client(get_settings()) as llm:
        result = await Pipeline(get_settings(), llm=llm).run(record, ["discharge-medications"], write=False)
    [outcome] = result.results
    assert outcome.note is None and outcome.draft_ref is None
    assert outcome.verification["not_applicable"].startswith("does not apply: no encounter")
