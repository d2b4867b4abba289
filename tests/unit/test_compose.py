"""The record's facts composed by code: complete, prioritized, capped without loss, each cited."""

from __future__ import annotations

from pathlib import Path

import pytest

from clinical_notes.compose import (
    CAP_PROBLEMS,
    compose,
    medications,
    problems,
    results,
    sections,
    vitals_statement,
)
from clinical_notes.coverage import missing, must_mention
from clinical_notes.draft import NoteDraft, Section
from clinical_notes.kinds import KINDS, get_kind
from clinical_notes.language import ENGLISH, FRENCH, Wording
from clinical_notes.rules import rule_flags
from clinical_notes.timeline import (
    Allergy,
    ClinicalTimeline,
    Measurement,
    PatientFacts,
    Problem,
    Series,
)
from clinical_notes.verifier import Verifier, flag_backing
from fhir_adapters.condense import condense
from fhir_adapters.evidence import RecordEvidence
from fhir_adapters.record import record_from_bundle, record_from_bundle_json

PATIENT = PatientFacts(ref="Patient/p1", sex="female", age_years=70)


def problem(i: int, onset: str = "2010-01-01", name: str | None = None) -> Problem:
    ref = f"Condition/c{i}"
    return Problem(
        ref=ref, refs=[ref], name=name or f"Disorder number {i} (disorder)", active=True, onset=onset
    )


def lab(code: str, name: str, values: list[tuple[float, str]], low: float, high: float) -> Series:
    ms = [
        Measurement(ref=f"Observation/{code}-{i}", date=d, value=v, unit="mmol/L", low=low, high=high)
        for i, (v, d) in enumerate(values)
    ]
    for m in ms:
        m.abnormal = m.value is not None and not low <= m.value <= high
    latest, older = ms[0], ms[1:]
    abnormal = None if latest.abnormal else next((m for m in older if m.abnormal), None)
    return Series(name=name, code=code, latest=latest, latest_abnormal=abnormal, trend=older)


def test_long_lists_are_capped_with_the_rest_named_and_cited() -> None:
    t = ClinicalTimeline(patient=PATIENT, problems=[problem(i) for i in range(CAP_PROBLEMS + 5)])
    out = problems(t)
    assert len(out) == CAP_PROBLEMS + 1
    more = out[-1]
    assert more.text.startswith("And 5 more active problems: ") and len(more.citations) == 5
    assert all(f"Disorder number {int(ref[11:])}" in more.text for ref in more.citations)
    assert all(s.author == "record" for s in out)


def test_disorders_come_before_findings_and_recent_onsets_are_marked() -> None:
    t = ClinicalTimeline(
        patient=PATIENT,
        problems=[
            problem(1, "2024-05-01", "Stress (finding)"),
            problem(2, "2024-04-20", "Asthma (disorder)"),
        ],
        labs=[lab("2823-3", "Potassium", [(4.0, "2024-05-02")], 3.5, 5.1)],
    )
    texts = [s.text for s in problems(t)]
    assert texts == [
        "Asthma, onset 2024-04-20 (recent, under 3 months)",
        "Stress, onset 2024-05-01 (recent, under 3 months)",
    ]


def test_an_empty_section_is_a_statement_about_the_record() -> None:
    composed = compose(get_kind("progress"), ClinicalTimeline(patient=PATIENT))
    assert [s.text for s in composed["Allergies"]] == ["No allergy records found in the record."]
    assert [s.text for s in composed["Medications"]] == ["No active medication records found in the record."]
    known = Allergy(ref="AllergyIntolerance/a1", substance="No known allergy (situation)", active=True)
    said = compose(get_kind("progress"), ClinicalTimeline(patient=PATIENT, allergies=[known]))["Allergies"]
    assert said[0].text == "The record states no known allergy." and said[0].citations == [
        "AllergyIntolerance/a1"
    ]


def test_results_put_abnormal_first_with_range_change_and_older_abnormal_value() -> None:
    t = ClinicalTimeline(
        patient=PATIENT,
        labs=[
            lab("2951-2", "Sodium", [(140.0, "2024-05-01"), (128.0, "2023-01-01")], 135, 145),
            lab("2823-3", "Potassium", [(5.91234, "2024-03-01"), (5.2, "2023-11-02")], 3.5, 5.1),
        ],
    )
    first, second = results(t)[:2]
    assert first.text == (
        "Potassium 5.912 mmol/L (high; range 3.5 to 5.1) on 2024-03-01, up 0.7123 from 5.2 on 2023-11-02"
    )
    assert first.citations == ["Observation/2823-3-0", "Observation/2823-3-1"]
    assert second.text == (
        "Sodium 140 mmol/L (range 135 to 145) on 2024-05-01, "
        "up 12 from 128 (low; range 135 to 145) on 2023-01-01"
    )


def test_vital_signs_of_the_newest_set_with_blood_pressure_together() -> None:
    def vital(code: str, name: str, value: float, unit: str, when: str, ref: str) -> Series:
        m = Measurement(ref=ref, date=when, value=value, unit=unit, low=90, high=139, abnormal=value > 139)
        return Series(name=name, code=code, latest=m)

    statement = vitals_statement(
        [
            vital(
                "8480-6", "Systolic blood pressure", 150, "mm[Hg]", "2024-03-01T08:00:00", "Observation/bp"
            ),
            vital(
                "8462-4", "Diastolic blood pressure", 85, "mm[Hg]", "2024-03-01T08:00:00", "Observation/bp"
            ),
            vital("8867-4", "Heart rate", 72, "/min", "2024-03-01T08:05:00", "Observation/hr"),
        ]
    )
    assert statement is not None
    assert (
        statement.text == "Vital signs on 2024-03-01: blood pressure 150/85 mmHg (high), Heart rate 72 /min"
    )
    assert statement.citations == ["Observation/bp", "Observation/hr"]


def test_medications_say_dose_frequency_and_route_as_recorded() -> None:
    record = record_from_bundle_json(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                {"resource": {"resourceType": "Patient", "id": "p1"}},
                {
                    "resource": {
                        "resourceType": "MedicationRequest",
                        "id": "m1",
                        "status": "active",
                        "intent": "order",
                        "subject": {"reference": "Patient/p1"},
                        "authoredOn": "2023-05-01",
                        "medicationCodeableConcept": {"text": "Lisinopril 10 MG Oral Tablet"},
                        "dosageInstruction": [
                            {
                                "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
                                "route": {"text": "Oral"},
                                "doseAndRate": [{"doseQuantity": {"value": 1}}],
                            }
                        ],
                    }
                },
            ],
        }
    )
    t = condense(record)
    [statement] = medications(t)
    assert statement.text == "Lisinopril 10 MG Oral Tablet: dose 1, twice daily, oral; since 2023-05-01"
    draft = NoteDraft(kind="progress", sections=[Section(title="Medications", statements=[statement])])
    assert Verifier(RecordEvidence(record)).verify(draft).passed


@pytest.mark.parametrize("words", [ENGLISH, FRENCH], ids=["en", "fr"])
def test_composed_drafts_cover_every_must_mention_fact_and_verify_clean(
    synthea_files: list[Path], words: Wording
) -> None:
    for path in synthea_files:
        record = record_from_bundle(path)
        timeline = condense(record)
        rules = rule_flags(timeline)[0]
        evidence = RecordEvidence(record)
        verifier = Verifier(evidence, backing=flag_backing(timeline, rules), wording=words)
        for kind in KINDS.values():
            draft = NoteDraft(kind=kind.name, sections=sections(kind, compose(kind, timeline, words), {}))
            report = verifier.verify(draft)
            assert report.passed, (path.name, kind.name, report.violations[:3])
            assert all(s.author == "record" for sec in draft.sections for s in sec.statements)
            if kind.name == "progress":
                assert missing(draft, must_mention(timeline), evidence) == []
