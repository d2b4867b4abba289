"""The deterministic verifier: each rule catches its error and passes clean statements."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from clinical_notes.draft import NoteDraft
from clinical_notes.verifier import Verifier, without_failing
from fhir_adapters.evidence import RecordEvidence
from fhir_adapters.record import PatientRecord, record_from_bundle_json

RESOURCES: list[dict[str, Any]] = [
    {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-06-01"},
    {
        "resourceType": "Observation",
        "id": "k1",
        "status": "final",
        "code": {"text": "Potassium"},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2024-03-01T08:00:00Z",
        "valueQuantity": {"value": 5.9, "unit": "mmol/L"},
    },
    {
        "resourceType": "Observation",
        "id": "bp1",
        "status": "final",
        "code": {"text": "Blood pressure"},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2024-03-01T08:00:00Z",
        "component": [
            {"code": {"text": "Systolic"}, "valueQuantity": {"value": 150, "unit": "mm[Hg]"}},
            {"code": {"text": "Diastolic"}, "valueQuantity": {"value": 95, "unit": "mm[Hg]"}},
        ],
    },
    {
        "resourceType": "MedicationRequest",
        "id": "m1",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "authoredOn": "2023-05-01",
        "medicationCodeableConcept": {"text": "Lisinopril 10 MG Oral Tablet"},
    },
    {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2024-02-27T09:00:00Z", "end": "2024-03-02T10:00:00Z"},
    },
    {
        "resourceType": "Condition",
        "id": "c1",
        "subject": {"reference": "Patient/p1"},
        "code": {"text": "Hypertension"},
        "onsetDateTime": "2015-01-10",
    },
]


@pytest.fixture(scope="module")
def record() -> PatientRecord:
    return record_from_bundle_json(
        {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in RESOURCES]}
    )


def check(
    record: PatientRecord,
    text: str,
    citations: list[str],
    title: str = "Recent results",
    prompt_refs: set[str] | None = None,
) -> list[str]:
    note = NoteDraft.model_validate(
        {
            "kind": "soap",
            "sections": [{"title": title, "statements": [{"text": text, "citations": citations}]}],
        }
    )
    return [v.rule for v in Verifier(RecordEvidence(record), prompt_refs).verify(note).violations]


@pytest.mark.parametrize(
    ("text", "citations"),
    [
        ("Potassium was 5.9 mmol/L on 2024-03-01.", ["Observation/k1"]),
        ("Blood pressure 150/95 mmHg.", ["Observation/bp1"]),
        ("Lisinopril 10 mg daily since 2023-05.", ["MedicationRequest/m1"]),
        ("Seen between 2024-02-27 and 2024-03-02.", ["Encounter/e1"]),
        ("Known hypertension since 2015-01-10.", ["Condition/c1"]),
    ],
)
def test_clean_statements_pass(record: PatientRecord, text: str, citations: list[str]) -> None:
    assert check(record, text, citations) == []


def test_age_is_checked_against_birth_date(record: PatientRecord) -> None:
    today = date.today()
    age = today.year - 1950 - ((today.month, today.day) < (6, 1))
    assert check(record, f"A {age} years old woman.", ["Patient/p1"]) == []
    assert check(record, f"A {age + 3} years old woman.", ["Patient/p1"]) == ["number_unsupported"]


@pytest.mark.parametrize(
    ("text", "citations", "rule"),
    [
        ("Potassium was 6.9 mmol/L.", ["Observation/k1"], "number_unsupported"),
        ("Potassium was 5.9 mg/dL.", ["Observation/k1"], "number_unsupported"),
        ("Potassium was 5.9 mmol/L on 2024-04-01.", ["Observation/k1"], "date_unsupported"),
        ("Potassium was 5.9 mmol/L.", ["Observation/nope"], "citation_unresolved"),
        ("Potassium was 5.9 mmol/L.", ["Condition/c1"], "number_unsupported"),
        ("Potassium is high.", [], "uncited_claim"),
    ],
)
def test_each_planted_error_is_caught(
    record: PatientRecord, text: str, citations: list[str], rule: str
) -> None:
    assert rule in check(record, text, citations)


def test_citation_must_have_been_in_the_prompt(record: PatientRecord) -> None:
    rules = check(record, "Potassium was 5.9 mmol/L.", ["Observation/k1"], prompt_refs={"Condition/c1"})
    assert "citation_not_in_prompt" in rules and "citation_unresolved" not in rules


def test_assessment_must_be_hedged(record: PatientRecord) -> None:
    definitive = "The patient has hypertensive heart disease."
    assert check(record, definitive, ["Condition/c1"], title="Assessment") == ["definitive_diagnosis"]
    hedged = "Findings are consistent with hypertensive heart disease."
    assert check(record, hedged, ["Condition/c1"], title="Assessment") == []
    assert check(record, definitive, ["Condition/c1"], title="Objective") == []


def test_statements_about_the_record_need_no_citation(record: PatientRecord) -> None:
    assert check(record, "No allergy records found in the record.", []) == []
    assert check(record, "12 earlier encounters are in the record, not listed.", []) == []
    assert check(record, "No new results are available.", []) == ["uncited_claim"]


def test_failing_statements_are_removed(record: PatientRecord) -> None:
    note = NoteDraft.model_validate(
        {
            "kind": "progress",
            "sections": [
                {
                    "title": "Recent results",
                    "statements": [
                        {"text": "Potassium was 5.9 mmol/L.", "citations": ["Observation/k1"]},
                        {"text": "Potassium was 7.9 mmol/L.", "citations": ["Observation/k1"]},
                    ],
                },
                {
                    "title": "Recent care",
                    "statements": [{"text": "Admitted.", "citations": ["Encounter/zzz"]}],
                },
            ],
        }
    )
    report = Verifier(RecordEvidence(record)).verify(note)
    kept, dropped = without_failing(note, report)
    assert not report.passed and report.statements == 3 and dropped == 2
    assert [s.text for sec in kept.sections for s in sec.statements] == ["Potassium was 5.9 mmol/L."]
