"""Prompts, schema, rendering, grounding and write-back builders: pure code."""

from __future__ import annotations

from typing import Any

import pytest

from clinical_notes import prompts
from clinical_notes.kinds import NoteDraft, get_kind, note_schema
from clinical_notes.render import BANNER, render_markdown
from clinical_notes.timeline import Source
from fhir_adapters.client import retry_after_seconds
from fhir_adapters.record import record_from_bundle_json
from fhir_adapters.writeback import DraftDocument, ModelDevice, build_transaction, draft_identifier

KIND = get_kind("progress")


def test_system_prompt_is_first_and_identical_across_patients() -> None:
    first = prompts.messages(KIND, "PATIENT [Patient/1] female, 70 years")
    second = prompts.messages(KIND, "PATIENT [Patient/2] male, 40 years", feedback="not JSON")
    assert first[0]["role"] == "system" and first[0] == second[0]
    assert "Patient/1" not in first[0]["content"] and "Patient/1" in first[1]["content"]


def test_schema_restricts_citations_to_timeline_refs() -> None:
    schema = note_schema(KIND, ["Condition/1", "Observation/2"], max_statements=3, max_chars=100)
    statement = schema["properties"]["sections"]["items"]["properties"]["statements"]
    assert statement["maxItems"] == 3
    citation = statement["items"]["properties"]["citations"]
    assert citation["items"]["enum"] == ["Condition/1", "Observation/2"] and citation["minItems"] == 1
    assert schema["properties"]["kind"]["enum"] == ["progress"]


def note(*citations: list[str]) -> NoteDraft:
    statements = [{"text": f"Statement {i}", "citations": c} for i, c in enumerate(citations)]
    return NoteDraft.model_validate(
        {"kind": "progress", "sections": [{"title": "Active problems", "statements": statements}]}
    )


def record() -> Any:
    return record_from_bundle_json(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                {"resource": {"resourceType": "Patient", "id": "p1"}},
                {
                    "resource": {
                        "resourceType": "Condition",
                        "id": "c1",
                        "subject": {"reference": "Patient/p1"},
                        "code": {"text": "Hypertension"},
                    }
                },
            ],
        }
    )


def test_markdown_numbers_citations_and_lists_sources() -> None:
    text = render_markdown(
        note(["Condition/c1"], ["Condition/c1", "Patient/p1"]),
        KIND,
        {
            "Condition/c1": Source("Hypertension", "2020-01-01T00:00:00"),
            "Patient/p1": Source("Patient", None),
        },
    )
    assert BANNER in text
    assert "- Statement 0 [1]" in text and "- Statement 1 [1][2]" in text
    assert "1. Condition, 2020-01-01: Hypertension (Condition/c1)" in text
    assert "2. Patient: Patient (Patient/p1)" in text


def test_transaction_is_idempotent_by_construction() -> None:
    identifier = draft_identifier("p1", "progress", "abc")
    assert (
        identifier == draft_identifier("p1", "progress", "abc") != draft_identifier("p1", "progress", "abd")
    )
    bundle = build_transaction(
        DraftDocument(
            patient_id="p1",
            kind="progress",
            loinc_code="11506-3",
            loinc_display="Progress note",
            title="t",
            markdown="m",
            structured={},
            cited_refs=["Condition/c1"],
            identifier=identifier,
            device=ModelDevice("MedGemma 27B", "google/medgemma-27b-it"),
            encounter_ref="Encounter/e1",
            period_start="2024-01-01",
        )
    )
    device, doc, prov = (e for e in bundle["entry"])
    assert device["request"]["ifNoneExist"].startswith("identifier=")
    assert doc["request"]["ifNoneExist"] == f"identifier=urn:ehr-summarizer:draft|{identifier}"
    assert prov["request"] == {"method": "PUT", "url": f"Provenance/ehrsum-{identifier}"}
    d = doc["resource"]
    assert d["docStatus"] == "preliminary" and d["status"] == "current"
    assert (
        d["author"][0]["reference"] == device["fullUrl"] == prov["resource"]["agent"][0]["who"]["reference"]
    )
    assert prov["resource"]["target"] == [{"reference": doc["fullUrl"]}]
    assert d["context"] == {"encounter": [{"reference": "Encounter/e1"}], "period": {"start": "2024-01-01"}}


@pytest.mark.parametrize(
    ("header", "expected"),
    [("3", 3.0), ("999", 60.0), (None, None), ("soon", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)
def test_retry_after_parsing(header: str | None, expected: float | None) -> None:
    assert retry_after_seconds(header) == expected
