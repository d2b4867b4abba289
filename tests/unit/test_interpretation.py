"""Words that judge a value must agree with how the record judges it (issue 21, item 7), in every kind."""

from __future__ import annotations

from typing import Any

import pytest

from clinical_notes.draft import NoteDraft, Section, Statement
from clinical_notes.verifier import Verifier
from fhir_adapters.evidence import RecordEvidence
from fhir_adapters.record import record_from_bundle_json

RANGE = [{"low": {"value": 3.5, "unit": "mmol/L"}, "high": {"value": 5.1, "unit": "mmol/L"}}]
SODIUM = [{"low": {"value": 135, "unit": "mmol/L"}, "high": {"value": 145, "unit": "mmol/L"}}]


def _obs(
    oid: str,
    code: str,
    name: str,
    value: float,
    day: str,
    interpretation: str | None = None,
    ranges: Any = RANGE,
) -> Any:
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": name}], "text": name},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": f"{day}T08:00:00Z",
        "valueQuantity": {
            "value": value,
            "unit": "mmol/L",
            "system": "http://unitsofmeasure.org",
            "code": "mmol/L",
        },
        "referenceRange": ranges,
    }
    if interpretation:
        system = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
        obs["interpretation"] = [{"coding": [{"system": system, "code": interpretation}]}]
    return obs


def _record() -> Any:
    resources = [
        {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1960-01-01"},
        _obs("k-old", "2823-3", "Potassium", 4.0, "2026-10-01"),
        _obs("k-new", "2823-3", "Potassium", 6.9, "2026-11-01", "HH"),
        _obs("na-old", "2951-2", "Sodium", 128.0, "2026-10-01", "L", SODIUM),
        _obs("na-new", "2951-2", "Sodium", 133.0, "2026-11-01", "L", SODIUM),
        _obs("cl-only", "2075-0", "Chloride", 4.2, "2026-11-01"),
    ]
    return record_from_bundle_json(
        {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
    )


def _rules(text: str, *cites: str, title: str = "Assessment") -> list[str]:
    record = _record()
    note = NoteDraft(
        kind="progress",
        sections=[
            Section(title=title, statements=[Statement(text=text, citations=list(cites), author="model")])
        ],
    )
    return [v.rule for v in Verifier(RecordEvidence(record)).verify(note).violations]


@pytest.mark.parametrize(
    ("text", "cites"),
    [
        # The case: a critical potassium called normal, cited correctly.
        ("6.9 mmol/L potassium in blood, which is within the normal range.", ["Observation/k-new"]),
        ("Potassium 6.9 mmol/L is low.", ["Observation/k-new"]),
        ("Potassium improved to 6.9 mmol/L.", ["Observation/k-new", "Observation/k-old"]),
        ("Potassium stable at 6.9 mmol/L.", ["Observation/k-new"]),
        ("Potassium 6.9 mmol/L has resolved.", ["Observation/k-new"]),
        ("Sodium 133 mmol/L is worsening.", ["Observation/na-new"]),
        ("Sodium 133 mmol/L is normal.", ["Observation/na-new"]),
        ("Chloride 4.2 mmol/L improved.", ["Observation/cl-only"]),  # no earlier value to judge by
    ],
)
def test_a_judgement_the_record_contradicts_fails(text: str, cites: list[str]) -> None:
    assert "interpretation_contradicted" in _rules(text, *cites)


@pytest.mark.parametrize(
    ("text", "cites"),
    [
        ("Potassium 6.9 mmol/L is critically high; consider repeat.", ["Observation/k-new"]),
        ("Potassium was within the normal range at 4 mmol/L.", ["Observation/k-old"]),
        ("Potassium worsening, now 6.9 mmol/L.", ["Observation/k-new"]),
        ("Sodium 133 mmol/L remains low but improved.", ["Observation/na-new"]),
        ("Sodium stable and low at 133 mmol/L.", ["Observation/na-new"]),  # low before and now
        ("Sodium 133 mmol/L (low), potassium 4 mmol/L normal.", ["Observation/na-new", "Observation/k-old"]),
        ("Low density of potassium checks: 6.9 mmol/L, high.", ["Observation/k-new"]),
    ],
)
def test_a_judgement_the_record_supports_passes(text: str, cites: list[str]) -> None:
    assert "interpretation_contradicted" not in _rules(text, *cites)
