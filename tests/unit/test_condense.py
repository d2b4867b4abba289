"""Condensation rules: exclusions, must-keep items, medication shapes, urn:uuid resolution."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from clinical_notes.budget import fit_budget
from clinical_notes.timeline_text import render_timeline
from clinical_notes.tokens import EstimateCounter
from fhir_adapters.condense import condense
from fhir_adapters.record import record_from_bundle, record_from_bundle_json
from services.core.errors import InputError

LOINC = "http://loinc.org"
LAB = {
    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]
}
VITAL = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}
    ]
}


def concept(code: str, display: str, system: str = "http://snomed.info/sct") -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}]}


def status(code: str) -> dict[str, Any]:
    return {"coding": [{"code": code}]}


def bundle(*resources: dict[str, Any], bundle_type: str = "collection") -> dict[str, Any]:
    patient = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-06-01"}
    entries = [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in (patient, *resources)]
    return {"resourceType": "Bundle", "type": bundle_type, "entry": entries}


def condition(
    rid: str,
    code: str,
    name: str,
    clinical: str = "active",
    verification: str = "confirmed",
    onset: str = "2020-01-01",
) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": rid,
        "subject": {"reference": "Patient/p1"},
        "clinicalStatus": status(clinical),
        "verificationStatus": status(verification),
        "code": concept(code, name),
        "onsetDateTime": onset,
    }


def lab(
    rid: str,
    value: float,
    when: str,
    code: str = "2823-3",
    name: str = "Potassium",
    interpretation: str | None = None,
    ranged: bool = True,
    status_: str = "final",
) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": rid,
        "status": status_,
        "category": [LAB],
        "code": concept(code, name, LOINC),
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": when,
        "valueQuantity": {
            "value": value,
            "unit": "mmol/L",
            "system": "http://unitsofmeasure.org",
            "code": "mmol/L",
        },
    }
    if ranged:
        obs["referenceRange"] = [
            {"low": {"value": 3.5, "unit": "mmol/L"}, "high": {"value": 5.1, "unit": "mmol/L"}}
        ]
    if interpretation:
        obs["interpretation"] = [status(interpretation)]
    return obs


def timeline_of(*resources: dict[str, Any]):  # type: ignore[no-untyped-def]
    return condense(record_from_bundle_json(bundle(*resources)))


def test_entered_in_error_is_dropped_everywhere() -> None:
    t = timeline_of(
        condition("c1", "38341003", "Hypertension", verification="entered-in-error"),
        lab("o1", 4.0, "2024-01-01", status_="entered-in-error"),
        {
            "resourceType": "MedicationRequest",
            "id": "m1",
            "status": "entered-in-error",
            "intent": "order",
            "subject": {"reference": "Patient/p1"},
            "medicationCodeableConcept": concept("1", "Lisinopril"),
        },
        {
            "resourceType": "AllergyIntolerance",
            "id": "a1",
            "patient": {"reference": "Patient/p1"},
            "verificationStatus": status("entered-in-error"),
            "code": concept("2", "Penicillin"),
        },
        {
            "resourceType": "Encounter",
            "id": "e1",
            "status": "entered-in-error",
            "class": {"code": "AMB"},
            "subject": {"reference": "Patient/p1"},
        },
    )
    assert (
        t.problems == [] and t.labs == [] and t.medications == [] and t.allergies == [] and t.encounters == []
    )


def test_active_and_past_problems_are_split_and_repeats_merged() -> None:
    t = timeline_of(
        condition("c1", "38341003", "Hypertension", onset="2015-01-01"),
        condition("c2", "38341003", "Hypertension", onset="2021-01-01"),
        condition("c3", "195662009", "Acute viral pharyngitis", clinical="resolved"),
    )
    active = [p for p in t.problems if p.active]
    past = [p for p in t.problems if not p.active]
    assert [p.name for p in active] == ["Hypertension"]
    assert active[0].ref == "Condition/c2" and active[0].refs == ["Condition/c2", "Condition/c1"]
    assert active[0].first_onset == "2015-01-01T00:00:00" or active[0].first_onset.startswith("2015-01-01")
    assert [p.ref for p in past] == ["Condition/c3"]


@pytest.mark.parametrize("shape", ["codeable", "reference", "contained"])
def test_each_medication_shape_gives_the_drug_name(shape: str) -> None:
    request: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": "m1",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "authoredOn": "2023-05-01",
    }
    extra: list[dict[str, Any]] = []
    if shape == "codeable":
        request["medicationCodeableConcept"] = concept("314076", "Lisinopril 10 MG Oral Tablet")
    elif shape == "reference":
        extra.append(
            {
                "resourceType": "Medication",
                "id": "med1",
                "code": concept("314076", "Lisinopril 10 MG Oral Tablet"),
            }
        )
        request["medicationReference"] = {"reference": "urn:uuid:med1"}
    else:
        request["contained"] = [
            {
                "resourceType": "Medication",
                "id": "c",
                "code": concept("314076", "Lisinopril 10 MG Oral Tablet"),
            }
        ]
        request["medicationReference"] = {"reference": "#c"}
    t = timeline_of(request, *extra)
    assert len(t.medications) == 1
    med = t.medications[0]
    assert med.name == "Lisinopril 10 MG Oral Tablet" and med.active
    assert med.refs == (
        ["MedicationRequest/m1", "Medication/med1"] if shape == "reference" else ["MedicationRequest/m1"]
    )


def test_stopped_medication_is_past_and_statement_is_read() -> None:
    t = timeline_of(
        {
            "resourceType": "MedicationRequest",
            "id": "m1",
            "status": "stopped",
            "intent": "order",
            "subject": {"reference": "Patient/p1"},
            "medicationCodeableConcept": concept("1", "Amoxicillin"),
        },
        {
            "resourceType": "MedicationStatement",
            "id": "s1",
            "status": "active",
            "subject": {"reference": "Patient/p1"},
            "medicationCodeableConcept": concept("2", "Metformin"),
            "effectiveDateTime": "2022-01-01",
        },
    )
    by_name = {m.name: m for m in t.medications}
    assert not by_name["Amoxicillin"].active and by_name["Metformin"].active


def test_lab_abnormal_flag_from_range_interpretation_and_default_table() -> None:
    t = timeline_of(
        lab("o1", 5.9, "2024-03-01"),  # above the record's range
        lab("o2", 4.0, "2024-01-01", code="2951-2", name="Sodium", interpretation="L"),  # flagged by the lab
        lab("o3", 6.5, "2024-01-01", code="6298-4", name="Potassium blood", ranged=False),  # default table
        lab("o4", 4.2, "2024-02-01", code="999-9", name="Unknown test", ranged=False),
    )
    flags = {s.name: s.latest.abnormal for s in t.labs}
    assert flags == {"Potassium": True, "Sodium": True, "Potassium blood": True, "Unknown test": None}
    assert next(s for s in t.labs if s.name == "Potassium blood").latest.range_source == "default"


def test_latest_abnormal_is_kept_when_latest_is_normal() -> None:
    t = timeline_of(lab("o1", 4.0, "2024-03-01"), lab("o2", 6.1, "2023-03-01"), lab("o3", 4.1, "2022-03-01"))
    series = t.labs[0]
    assert series.latest.ref == "Observation/o1" and not series.latest.abnormal
    assert series.latest_abnormal is not None and series.latest_abnormal.ref == "Observation/o2"
    assert [m.ref for m in series.trend] == ["Observation/o2", "Observation/o3"]


def test_blood_pressure_panel_splits_into_components() -> None:
    bp = {
        "resourceType": "Observation",
        "id": "bp1",
        "status": "final",
        "category": [VITAL],
        "code": concept("85354-9", "Blood pressure panel", LOINC),
        "effectiveDateTime": "2024-01-01",
        "component": [
            {
                "code": concept("8480-6", "Systolic blood pressure", LOINC),
                "valueQuantity": {"value": 150, "unit": "mm[Hg]"},
            },
            {
                "code": concept("8462-4", "Diastolic blood pressure", LOINC),
                "valueQuantity": {"value": 95, "unit": "mm[Hg]"},
            },
        ],
    }
    t = timeline_of(bp)
    assert {s.code: s.latest.value for s in t.vitals} == {"8480-6": 150.0, "8462-4": 95.0}
    assert all(s.latest.ref == "Observation/bp1" for s in t.vitals)


def test_notes_are_decoded_and_our_own_drafts_are_not_sources() -> None:
    text = "Seen for follow-up. Doing well."
    data = base64.b64encode(text.encode()).decode()
    doc = {
        "resourceType": "DocumentReference",
        "id": "d1",
        "status": "current",
        "date": "2024-01-01T10:00:00Z",
        "type": concept("11506-3", "Progress note", LOINC),
        "content": [{"attachment": {"contentType": "text/plain", "data": data}}],
    }
    ours = {
        **doc,
        "id": "d2",
        "meta": {
            "security": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "AIAST"}
            ]
        },
    }
    report = {
        "resourceType": "DiagnosticReport",
        "id": "r1",
        "status": "final",
        "code": concept("1", "Chest X-ray"),
        "conclusion": "No acute findings.",
        "effectiveDateTime": "2024-02-01",
    }
    t = timeline_of(doc, ours, report)
    assert {n.ref: n.text for n in t.notes} == {
        "DocumentReference/d1": text,
        "DiagnosticReport/r1": "No acute findings.",
    }


def test_urn_uuid_references_resolve_to_type_and_id(tmp_path: Path) -> None:
    enc = {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": {"reference": "urn:uuid:p1"},
        "period": {"start": "2024-01-01T09:00:00Z"},
    }
    obs = lab("o1", 4.0, "2024-01-01")
    obs["encounter"] = {"reference": "urn:uuid:e1"}
    obs["subject"] = {"reference": "urn:uuid:p1"}
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bundle(enc, obs, bundle_type="transaction")))
    record = record_from_bundle(path)
    assert record.resources["Observation/o1"].encounter.reference == "Encounter/e1"  # type: ignore[attr-defined]
    assert record.resources["Observation/o1"].subject.reference == "Patient/p1"  # type: ignore[attr-defined]


def test_unknown_elements_are_tolerated_not_fatal() -> None:
    obs = lab("o1", 4.0, "2024-01-01")
    obs["extension"] = [{"url": "http://example.org/x", "valueString": "y"}]
    obs["someVendorField"] = {"a": 1}
    t = timeline_of(obs)
    assert t.labs[0].latest.ref == "Observation/o1" and t.rejected == []


@pytest.mark.parametrize(
    "content",
    ["{not json", "[]", '{"resourceType": "Patient"}', '{"resourceType": "Bundle", "type": "weird"}'],
)
def test_malformed_bundle_files_raise_input_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(InputError):
        record_from_bundle(path)


def test_budget_never_drops_must_keep_facts() -> None:
    resources: list[dict[str, Any]] = [
        condition(f"c{i}", str(1000 + i), f"Problem {i}", onset=f"20{10 + i % 10}-01-01") for i in range(8)
    ]
    resources += [
        condition(f"r{i}", str(2000 + i), f"Old problem {i}", clinical="resolved") for i in range(30)
    ]
    resources += [
        {
            "resourceType": "MedicationRequest",
            "id": f"m{i}",
            "status": "active",
            "intent": "order",
            "subject": {"reference": "Patient/p1"},
            "medicationCodeableConcept": concept(str(i), f"Drug {i}"),
        }
        for i in range(6)
    ]
    resources.append(
        {
            "resourceType": "AllergyIntolerance",
            "id": "a1",
            "patient": {"reference": "Patient/p1"},
            "code": concept("2", "Penicillin"),
            "clinicalStatus": status("active"),
        }
    )
    resources += [
        lab(f"k{i}", 4.0 if i else 6.2, f"20{10 + i}-01-01") for i in range(10)
    ]  # abnormal is oldest
    resources += [
        lab(f"n{i}", 140, f"20{10 + i}-01-01", code="2951-2", name="Sodium", ranged=False) for i in range(10)
    ]
    for i in range(40):
        resources.append(
            {
                "resourceType": "Encounter",
                "id": f"e{i}",
                "status": "finished",
                "class": {"code": "AMB"},
                "type": [concept("1", f"Visit {i}")],
                "period": {"start": f"2020-01-{1 + i % 28:02d}"},
            }
        )
    full = timeline_of(*resources)
    counter = EstimateCounter()
    before = render_timeline(full)
    fitted = fit_budget(full, 50, counter)  # far below what the must-keep facts need
    assert render_timeline(full) == before  # trimming a copy leaves the caller's timeline whole
    assert {p.ref for p in fitted.problems if p.active} == {p.ref for p in full.problems if p.active}
    assert {m.ref for m in fitted.medications if m.active} == {m.ref for m in full.medications if m.active}
    assert [a.ref for a in fitted.allergies] == ["AllergyIntolerance/a1"]
    potassium = next(s for s in fitted.labs if s.code == "2823-3")
    assert potassium.latest_abnormal is not None and potassium.latest_abnormal.ref == "Observation/k0"
    assert f"[{fitted.key('Observation/k0')}]" in render_timeline(fitted)
    assert fitted.omitted and fitted.encounters == []
    roomy = fit_budget(full, 100_000, counter)
    assert roomy.omitted == {} and len(roomy.encounters) == 40
    assert roomy.tokens is not None and roomy.tokens <= 100_000


def test_prompt_shows_short_keys_that_map_back_to_references() -> None:
    t = timeline_of(condition("c1", "38341003", "Hypertension"), lab("o1", 5.9, "2024-03-01"))
    text = render_timeline(t)
    assert t.citation_keys() == {"PT1": "Patient/p1", "C1": "Condition/c1", "O1": "Observation/o1"}
    assert "[C1] Hypertension" in text and "[O1] 5.9 mmol/L*" in text and "Condition/c1" not in text
