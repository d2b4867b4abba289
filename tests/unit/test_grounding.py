"""Grounding: a statement says something, names what it cites, cites nothing retracted; flags are backed."""

from __future__ import annotations

from typing import Any

import pytest

from clinical_notes.concepts import filler, is_hollow, mentions, stem
from clinical_notes.draft import Flag, NoteDraft
from clinical_notes.kinds import ALL_TITLES
from clinical_notes.rules import rule_flags
from clinical_notes.verifier import Verifier, flag_backing, without_failing
from fhir_adapters.condense import condense
from fhir_adapters.evidence import RecordEvidence, evidence_of
from fhir_adapters.record import PatientRecord, record_from_bundle_json


def condition(cid: str, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": cid,
        "subject": {"reference": "Patient/p1"},
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": cid, "display": text}]},
        "onsetDateTime": "2015-01-10",
        **extra,
    }


def observation(oid: str, code: str, name: str, value: float, unit: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [{"coding": [{"code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": name}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2024-03-01T08:00:00Z",
        "valueQuantity": {"value": value, "unit": unit},
        **extra,
    }


RESOURCES = [
    {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-06-01"},
    condition("c1", "Essential hypertension (disorder)"),
    condition("c2", "Diabetes mellitus type 2 (disorder)"),
    condition("c3", "Chronic kidney disease stage 3 (disorder)"),
    condition("c4", "Osteoarthritis of knee (disorder)"),
    condition(
        "c5",
        "Pneumonia (disorder)",
        verificationStatus={"coding": [{"code": "entered-in-error"}]},
    ),
    observation("k1", "2823-3", "Potassium [Moles/volume] in Serum or Plasma", 6.9, "mmol/L"),
    observation(
        "na1",
        "2951-2",
        "Sodium [Moles/volume] in Serum or Plasma",
        140,
        "mmol/L",
        referenceRange=[{"low": {"value": 135, "unit": "mmol/L"}, "high": {"value": 145, "unit": "mmol/L"}}],
    ),
    {
        "resourceType": "Observation",
        "id": "bp1",
        "status": "final",
        "category": [{"coding": [{"code": "vital-signs"}]}],
        "code": {
            "coding": [{"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure panel"}]
        },
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2024-03-01T08:00:00Z",
        "component": [
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6", "display": "Systolic"}]},
                "valueQuantity": {"value": 150, "unit": "mm[Hg]"},
            },
            {
                "code": {
                    "coding": [{"system": "http://loinc.org", "code": "8462-4", "display": "Diastolic"}]
                },
                "valueQuantity": {"value": 95, "unit": "mm[Hg]"},
            },
        ],
    },
]
CONDITIONS = ["Condition/c1", "Condition/c2", "Condition/c3", "Condition/c4"]


@pytest.fixture(scope="module")
def record() -> PatientRecord:
    return record_from_bundle_json(
        {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in RESOURCES]}
    )


@pytest.fixture(scope="module")
def verifier(record: PatientRecord) -> Verifier:
    timeline = condense(record)
    return Verifier(RecordEvidence(record), backing=flag_backing(timeline, rule_flags(timeline)[0]))


def rules_of(verifier: Verifier, text: str, citations: list[str], title: str = "Summary") -> list[str]:
    note = NoteDraft.model_validate(
        {
            "kind": "progress",
            "sections": [{"title": title, "statements": [{"text": text, "citations": citations}]}],
        }
    )
    return [v.rule for v in verifier.verify(note).violations]


def test_a_statement_citing_four_conditions_it_never_names_is_rejected(verifier: Verifier) -> None:
    assert rules_of(verifier, "Active problems", CONDITIONS).count("ungrounded") == 4
    text = "The patient has several ongoing conditions that need follow-up."
    assert rules_of(verifier, text, CONDITIONS).count("ungrounded") == 4


def test_a_statement_naming_what_it_cites_passes_with_synonyms_and_values(verifier: Verifier) -> None:
    text = "76-year-old woman with HTN, type 2 diabetes, CKD stage 3 and knee osteoarthritis."
    assert rules_of(verifier, text, ["Patient/p1", *CONDITIONS]) == []
    assert rules_of(verifier, "BP 150/95 mmHg on 2024-03-01.", ["Observation/bp1"]) == []
    assert rules_of(verifier, "K 6.9 mmol/L, raised.", ["Observation/k1"]) == []
    assert rules_of(verifier, "Hyperkalaemia (6.9) may need review.", ["Observation/k1"]) == []


def test_the_demo_critical_filler_flag_is_dropped(verifier: Verifier) -> None:
    flag = Flag(
        severity="critical",
        title="Summary",
        rationale="This is a summary of the patient's medical history, including the date of birth, date of "
        "last menstrual period, and any other relevant information. This summary",
        citations=CONDITIONS,
    )
    note = NoteDraft(kind="triage", sections=[], flags=[flag])
    report = verifier.verify(note)
    assert {"filler", "ungrounded", "flag_unbacked"} <= set(report.counts())
    kept, dropped = without_failing(note, report)
    assert kept.flags == [] and dropped == 1


def test_hollow_statements_and_section_titles_say_nothing(verifier: Verifier) -> None:
    assert "hollow_statement" in rules_of(verifier, "Active problems", ["Condition/c1"])
    assert "hollow_statement" in rules_of(verifier, "Recent results reviewed.", ["Observation/k1"])
    assert is_hollow("Plan considerations", ALL_TITLES) and not is_hollow("Recheck potassium", ALL_TITLES)
    assert filler("Please review the chart.") and filler("Potassium 6.9 mmol/L.") is None


def test_citing_a_retracted_resource_is_a_violation(verifier: Verifier) -> None:
    assert "citation_retracted" in rules_of(verifier, "History of pneumonia.", ["Condition/c5"])


def test_model_flags_need_abnormal_data_behind_them(verifier: Verifier) -> None:
    backed = Flag(
        severity="critical",
        title="Hyperkalaemia",
        rationale="Potassium 6.9 mmol/L.",
        citations=["Observation/k1"],
    )
    unbacked = Flag(
        severity="warning", title="Sodium", rationale="Sodium 140 mmol/L.", citations=["Observation/na1"]
    )
    note = NoteDraft(kind="triage", sections=[], flags=[backed, unbacked])
    report = verifier.verify(note)
    assert report.counts() == {"flag_unbacked": 1}
    kept, dropped = without_failing(note, report)
    assert dropped == 0 and [f.severity for f in kept.flags] == ["critical", "info"]
    assert "downgraded to info" in kept.flags[1].rationale


def test_stems_fold_spelling_and_endings() -> None:
    assert stem("hypertension") == stem("hypertensive") and stem("anaemia") == stem("anemic")
    assert stem("pneumonia") != stem("pneumothorax") and stem("hyperlipidemia") != stem("hypertension")


def test_a_patient_is_named_by_age_or_sex(record: PatientRecord) -> None:
    patient = evidence_of(record.resources["Patient/p1"])
    assert mentions("An elderly woman.", patient) and not mentions("Stable on treatment.", patient)


def test_a_value_may_be_rounded_but_not_invented_nor_taken_from_the_range(verifier: Verifier) -> None:
    assert rules_of(verifier, "Sodium 140 mmol/L.", ["Observation/na1"]) == []
    assert rules_of(verifier, "Sodium 139.6 mmol/L.", ["Observation/na1"]) == ["number_unsupported"]
    assert rules_of(verifier, "Sodium was 145 mmol/L.", ["Observation/na1"]) == ["number_unsupported"]
    assert rules_of(verifier, "Potassium 7 mmol/L.", ["Observation/k1"]) == []  # 6.9 rounded
