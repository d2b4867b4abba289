"""Statements composed from the record in a French draft: French connecting words, DD/MM/YYYY dates and
decimal commas around the record's own words, and every one accepted by the French verifier."""

from __future__ import annotations

import re
from typing import Any

from clinical_notes.compose import CAP_PROBLEMS, compose, problems, results
from clinical_notes.draft import NoteDraft, Section
from clinical_notes.kinds import get_kind
from clinical_notes.language import FRENCH
from clinical_notes.screen import SCALES, statement
from clinical_notes.timeline import Allergy, ClinicalTimeline, PatientFacts, Problem
from clinical_notes.triage_context import TriageFlag
from clinical_notes.verifier import Verifier
from fhir_adapters.condense import condense
from fhir_adapters.evidence import RecordEvidence
from fhir_adapters.record import PatientRecord, record_from_bundle_json

ACTIVE = {"coding": [{"code": "active"}]}
PATIENT = PatientFacts(ref="Patient/p1", sex="female", age_years=70)
LAB = {
    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]
}


def of_patient(type_name: str, id_: str, **fields: Any) -> dict[str, Any]:
    """A resource of patient p1."""
    return {"resourceType": type_name, "id": id_, "subject": {"reference": "Patient/p1"}, **fields}


def potassium(id_: str, value: float, when: str) -> dict[str, Any]:
    mmol = {"unit": "mmol/L"}
    return of_patient(
        "Observation",
        id_,
        status="final",
        category=[LAB],
        code={"coding": [{"system": "http://loinc.org", "code": "2823-3"}], "text": "Potassium"},
        effectiveDateTime=when,
        valueQuantity={"value": value, **mmol},
        referenceRange=[{"low": {"value": 3.5, **mmol}, "high": {"value": 5.1, **mmol}}],
    )


def french_record() -> PatientRecord:
    """A record with a problem, a medication without dosage, an allergy and a result with a change."""
    resources: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-01-01"},
        of_patient(
            "Condition",
            "c1",
            clinicalStatus=ACTIVE,
            code={"text": "Asthma (disorder)"},
            onsetDateTime="2010-03-12",
        ),
        of_patient(
            "MedicationRequest",
            "m1",
            status="active",
            intent="order",
            authoredOn="2023-05-01",
            medicationCodeableConcept={"text": "albuterol 0.83 MG/ML Inhalation Solution"},
        ),
        {
            "resourceType": "AllergyIntolerance",
            "id": "a1",
            "clinicalStatus": ACTIVE,
            "code": {"text": "Peanut"},
            "criticality": "high",
            "patient": {"reference": "Patient/p1"},
            "reaction": [{"manifestation": [{"text": "Hives"}]}],
        },
        potassium("k1", 5.9, "2024-03-01"),
        potassium("k0", 5.2, "2023-11-02"),
    ]
    return record_from_bundle_json(
        {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
    )


def test_french_sections_are_french_around_the_record_words_and_verify_clean() -> None:
    record = french_record()
    composed = compose(get_kind("progress"), condense(record), FRENCH)
    texts = {title: [s.text for s in statements] for title, statements in composed.items()}
    assert texts["Active problems"] == ["Asthma, début le 12/03/2010 (ancien)"]
    assert texts["Medications"] == [
        "albuterol 0.83 MG/ML Inhalation Solution : posologie non renseignée ; depuis le 01/05/2023"
    ]
    assert texts["Allergies"] == ["Peanut : réactions : Hives ; criticité high"]
    assert texts["Recent results"][-1] == (
        "Potassium 5,9 mmol/L (élevé ; plage 3,5 à 5,1) le 01/03/2024, en hausse de 0,7 par rapport à 5,2 "
        "le 02/11/2023"
    )
    assert re.fullmatch(r"Femme, \d+ ans\.", texts["Summary"][0])
    draft = NoteDraft(kind="progress", sections=[Section(title=t, statements=s) for t, s in composed.items()])
    report = Verifier(RecordEvidence(record), wording=FRENCH).verify(draft)
    assert report.passed, report.violations


def test_french_statements_about_the_record_and_its_no_known_allergy_entry() -> None:
    composed = compose(get_kind("progress"), ClinicalTimeline(patient=PATIENT), FRENCH)
    assert [s.text for s in composed["Allergies"]] == ["Aucune allergie enregistrée dans le dossier."]
    assert [s.text for s in composed["Medications"]] == ["Aucun traitement actif trouvé dans le dossier."]
    assert [s.text for s in composed["Active problems"]] == ["Aucun problème actif trouvé dans le dossier."]
    known = Allergy(ref="AllergyIntolerance/a1", substance="No known allergy (situation)", active=True)
    said = compose(get_kind("progress"), ClinicalTimeline(patient=PATIENT, allergies=[known]), FRENCH)
    assert said["Allergies"][0].text == "Le dossier indique : no known allergy."
    uncited = [s for statements in composed.values() for s in statements if not s.citations]
    draft = NoteDraft(kind="progress", sections=[Section(title="Allergies", statements=uncited)])
    report = Verifier(RecordEvidence(french_record()), wording=FRENCH).verify(draft)
    assert uncited and report.passed, report.violations


def test_french_caps_name_the_rest_as_et_n_autres() -> None:
    many = [
        Problem(ref=f"Condition/c{i}", refs=[f"Condition/c{i}"], name=f"Disorder {i}", active=True)
        for i in range(CAP_PROBLEMS + 3)
    ]
    more = problems(ClinicalTimeline(patient=PATIENT, problems=many), FRENCH)[-1]
    assert more.text.startswith("Et 3 autres problèmes actifs : Disorder ") and len(more.citations) == 3
    assert results(ClinicalTimeline(patient=PATIENT), words=FRENCH)[-1].text == (
        "Aucun résultat de laboratoire trouvé dans le dossier."
    )


def test_the_screen_line_is_french_around_the_rules_titles() -> None:
    met = TriageFlag(
        severity="critical",
        title="SpO2 below 90",
        rationale="SpO2 82 %",
        rule="esi",
        scale="esi",
        level=1,
        values=["SpO2 82 %"],
        citations=["Observation/o1"],
    )
    esi, ctas = SCALES["esi"], SCALES["ctas"]
    assert statement([met], esi, FRENCH.phrases) == (
        "Remplit les critères ESI niveau 1 (resuscitation) : SpO2 below 90 (SpO2 82 %).",
        ["Observation/o1"],
    )
    assert statement([met], esi)[0] == "Meets ESI level 1 (resuscitation): SpO2 below 90 (SpO2 82 %)."
    assert statement([], esi, FRENCH.phrases)[0].startswith("Ne remplit aucun critère ESI de niveau 1 ou 2")
    assert statement([], ctas, FRENCH.phrases)[0].startswith(
        "Ne remplit aucun critère CTAS de niveau 1 ou 2 d'après le dossier ; "
        "classé CTAS niveau 5 (Non urgent)"
    )


def test_a_deceased_patient_s_french_summary_is_grounded_by_the_sex_word() -> None:
    """Age at death is not the Patient's age today: "Femme" must stand for the recorded gender."""
    patient = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-01-01"}
    patient["deceasedDateTime"] = "2000-06-01T10:00:00Z"
    record = record_from_bundle_json(
        {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": patient}]}
    )
    [summary] = compose(get_kind("progress"), condense(record), FRENCH)["Summary"]
    assert summary.text == "Femme, 50 ans, décès enregistré."
    draft = NoteDraft(kind="progress", sections=[Section(title="Summary", statements=[summary])])
    report = Verifier(RecordEvidence(record), wording=FRENCH).verify(draft)
    assert report.passed, report.violations
