"""How hospitals vary the model, against the real CPU vLLM: LoRA adapters routed by note kind and department,
drafts in French for a French department, and images from the record (which this text-only server refuses).

One server for the module: Gemma 3 270M with two adapters made here with peft (random, non-zero weights, so
an adapter's answer differs from the base model's), served with --enable-lora. With LoRA on, this CPU
generates at ~3-5 tokens/s, so the tests that check routing or images only cap the answer (a cut-off answer
still names the model that wrote it); the French test lets the model write.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from clinical_notes.compose import compose
from clinical_notes.kinds import get_kind
from clinical_notes.language import FRENCH
from clinical_notes.verifier import Verifier
from deploy import llm_cpu
from deploy.processes import stop
from fhir_adapters.condense import condense
from fhir_adapters.evidence import RecordEvidence
from fhir_adapters.record import PatientRecord, record_from_bundle_json
from services.core.errors import ConfigError
from services.core.settings import AdapterRoute, Settings, get_settings
from tests.conftest import start_cpu_llm
from tests.support.images import image_document, png
from tests.support.shared_llm import ADAPTERS, adapters
from workers.clients import llm_client
from workers.llm_client import ImagesRefused
from workers.pipeline import Pipeline

pytestmark = pytest.mark.integration

BASE = llm_cpu.MODEL_NAME
SHORT = 48  # output tokens where only who answered, or what was sent, is checked
ROUTES = [
    AdapterRoute(adapter="triage-notes", kinds=["triage"]),
    AdapterRoute(adapter="cardio-notes", kinds=["progress"], departments=["Cardiology"]),
]


@pytest.fixture(scope="module")
def lora_server(llm_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The CPU vLLM serving the base model and the two test LoRA adapters: the run's shared server when it
    serves them (deploy/test.sh starts it so), else one of this module's own."""
    served = {m["id"] for m in httpx.get(f"{llm_server}/models", timeout=10).json()["data"]}
    if set(ADAPTERS) <= served:
        yield llm_server
        return
    proc, url = start_cpu_llm(tmp_path_factory.mktemp("lora") / "server.log", lora=adapters())
    yield url
    stop(proc)


def cpu_settings(url: str, **update: Any) -> Settings:
    """The service's settings for the CPU server at url (its limits, its tokenizer), updated."""
    limits = {k.removeprefix("EHRSUM_").lower(): v for k, v in llm_cpu.DEMO_LIMITS.items()}
    base = Settings.model_validate(
        {**get_settings().model_dump(), **limits, "llm_base_url": url, "llm_model": BASE}
        | {"tokenizer_path": llm_cpu.model_dir()}
    )
    return base.model_copy(update=update)


def with_department(bundle: dict[str, Any], name: str) -> dict[str, Any]:
    """A copy of the bundle whose latest encounter is in the named department (its serviceType)."""
    out = copy.deepcopy(bundle)
    encounters = [e["resource"] for e in out["entry"] if e["resource"]["resourceType"] == "Encounter"]
    latest = max(encounters, key=lambda e: e.get("period", {}).get("start", ""))
    latest["serviceType"] = {"text": name}
    return out


async def run(settings: Settings, record: PatientRecord, kinds: list[str]) -> dict[str, Any]:
    """Each kind's outcome of one pipeline run, by kind."""
    async with llm_client(settings) as llm:
        result = await Pipeline(settings, llm=llm).run(record, kinds, write=False)
    return {r.kind: r for r in result.results}


def test_the_server_lists_the_adapters(lora_server: str) -> None:
    listed = httpx.get(f"{lora_server}/models", timeout=10).json()["data"]
    by_id = {m["id"]: m for m in listed}
    assert set(by_id) == {BASE, "triage-notes", "cardio-notes"}
    assert by_id["triage-notes"]["parent"] == BASE


async def test_an_adapter_answers_differently_from_the_base(lora_server: str) -> None:
    """Same prompt, greedy: the adapter's weights are in play (not just its name echoed back)."""
    body = {
        "messages": [{"role": "user", "content": "List three common causes of chest pain."}],
        "max_tokens": 24,
        "temperature": 0.0,
    }
    answers = {}
    async with httpx.AsyncClient(base_url=lora_server, timeout=120) as client:
        for model in (BASE, "triage-notes"):
            response = await client.post("/chat/completions", json={**body, "model": model})
            response.raise_for_status()
            data = response.json()
            assert data["model"] == model
            answers[model] = data["choices"][0]["message"]["content"]
    assert answers[BASE] != answers["triage-notes"]


async def test_notes_are_routed_by_kind_and_department(lora_server: str, synthea_files: list[Path]) -> None:
    """Triage goes to its adapter; progress to the cardiology adapter only in cardiology; else the base."""
    # A short prompt too: with an adapter this CPU prefills ~90 tokens/s; only who answered is checked.
    settings = cpu_settings(
        lora_server, llm_adapters=ROUTES, llm_max_output_tokens=SHORT, llm_context_tokens=2048
    )
    bundle = json.loads(synthea_files[0].read_text())
    elsewhere = await run(
        settings, record_from_bundle_json(with_department(bundle, "Dermatology")), ["progress", "triage"]
    )
    assert elsewhere["triage"].served_model == "triage-notes"
    assert elsewhere["progress"].served_model == BASE
    cardiology = record_from_bundle_json(with_department(bundle, "cardiology"))
    routed = await run(settings, cardiology, ["progress"])
    assert routed["progress"].served_model == "cardio-notes"
    assert routed["progress"].verification.served_model == "cardio-notes"
    without_routes = await run(settings.model_copy(update={"llm_adapters": []}), cardiology, ["triage"])
    assert without_routes["triage"].served_model == BASE


async def test_a_french_department_gets_french_drafts(lora_server: str, synthea_files: list[Path]) -> None:
    """Through the pipeline: the French department's drafts are framed, titled and verified in French,
    another department's stay English."""
    settings = cpu_settings(
        lora_server, department_languages={"Cardiologie": "fr"}, llm_max_output_tokens=160
    )
    bundle = json.loads(synthea_files[1].read_text())
    record = record_from_bundle_json(with_department(bundle, "Cardiologie"))
    french = await run(settings, record, ["progress", "triage"])
    progress = french["progress"]
    assert progress.verification.language == "fr" and progress.markdown is not None
    assert progress.markdown.startswith("# Synthèse d'évolution (brouillon IA)\n")
    assert FRENCH.banner in progress.markdown
    assert "## Problèmes actifs" in progress.markdown and "## Sources" in progress.markdown
    assert "## Active problems" not in progress.markdown
    # The statements composed from the record are French around the record's own words.
    composed = compose(get_kind("progress"), condense(record), FRENCH)["Active problems"][0].text
    assert ", début le " in composed and composed in progress.markdown
    assert ", onset " not in progress.markdown and "Vital signs on " not in progress.markdown
    assert french["triage"].markdown is not None
    assert french["triage"].markdown.startswith("# Alertes de tri (brouillon IA)\n")
    for outcome in french.values():
        assert outcome.note is not None
        assert Verifier(RecordEvidence(record), wording=FRENCH).verify(outcome.note).passed
    english = await run(
        settings, record_from_bundle_json(with_department(bundle, "Cardiology")), ["progress"]
    )
    assert english["progress"].verification.language == "en"
    assert (english["progress"].markdown or "").startswith("# Progress note summary (AI draft)\n")


def with_image(bundle: dict[str, Any], image: bytes) -> PatientRecord:
    """The bundle's record with a wound photograph (inline PNG) added."""
    out = copy.deepcopy(bundle)
    patient = next(e["resource"]["id"] for e in out["entry"] if e["resource"]["resourceType"] == "Patient")
    out["entry"].append({"resource": image_document("wound-photo", patient, image)})
    return record_from_bundle_json(out)


async def test_images_are_not_sent_to_a_text_only_profile(
    lora_server: str, synthea_files: list[Path]
) -> None:
    """The stand-in's profile is text-only: the photo stays out of the request and the draft says why."""
    record = with_image(json.loads(synthea_files[2].read_text()), png())
    outcome = (await run(cpu_settings(lora_server, llm_max_output_tokens=SHORT), record, ["progress"]))[
        "progress"
    ]
    assert outcome.verification.images.model_dump() == {
        "sent": [],
        "left_out": ["DocumentReference/wound-photo: profile cpu-stand-in is text-only"],
    }


async def test_a_text_only_model_refusing_images_fails_the_job_clearly(
    lora_server: str, synthea_files: list[Path]
) -> None:
    """A multimodal profile configured against this text-only server: vLLM refuses the image part and the
    run fails with what to change (a ConfigError: the job fails, no retry); an image over the size cap is
    never sent, so the same run then succeeds."""
    settings = cpu_settings(lora_server, llm_profile="medgemma-4b", llm_max_output_tokens=SHORT)
    bundle = json.loads(synthea_files[2].read_text())
    with pytest.raises(ImagesRefused) as refused:
        await run(settings, with_image(bundle, png()), ["progress"])
    message = str(refused.value)
    assert message.startswith("the LLM server refused a request with images (400")
    assert "is not a multimodal model" in message  # vLLM's own reason (seen: "gemma3-270m is not a ...")
    assert f"served model {BASE} cannot take images; set EHRSUM_LLM_PROFILE" in message
    assert isinstance(refused.value, ConfigError) and not refused.value.transient
    capped = settings.model_copy(update={"image_max_bytes": 64})
    outcome = (await run(capped, with_image(bundle, png()), ["progress"]))["progress"]
    assert outcome.verification.images.sent == []
    assert "over the 64-byte cap" in outcome.verification.images.left_out[0]
