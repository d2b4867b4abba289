"""The discharge medication guide: admission vs discharge orders compared (started, changed, stopped,
continued, with indications), every change present and verified, in the patient's language."""

from __future__ import annotations

from typing import Any

import pytest

from clinical_notes.compose import compose, sections
from clinical_notes.discharge import CHANGED, CONTINUED, STARTED, STAY, STOPPED, draft_language
from clinical_notes.draft import NoteDraft
from clinical_notes.kinds import get_kind
from clinical_notes.language import wording
from clinical_notes.readability import readability
from clinical_notes.verifier import Verifier
from fhir_adapters.condense import condense
from fhir_adapters.evidence import RecordEvidence
from fhir_adapters.record import PatientRecord, record_from_bundle_json
from tests.unit.test_compose_french import of_patient

KIND = get_kind("discharge-medications")
STAY_ID = "stay"


def order(id_: str, drug: str, category: str, text: str, when: str, **dose: Any) -> dict[str, Any]:
    """A MedicationRequest of patient p1."""
    dosage: dict[str, Any] = {"text": text}
    if "mg" in dose:
        dosage["doseAndRate"] = [{"doseQuantity": {"value": dose["mg"], "unit": "mg"}}]
    if "times" in dose:
        dosage["timing"] = {"repeat": {"frequency": dose["times"], "period": 1, "periodUnit": "d"}}
    fields: dict[str, Any] = {
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": drug},
        "category": [{"coding": [{"code": category}]}],
        "authoredOn": when,
        "dosageInstruction": [dosage],
    }
    if category != "community":
        fields["encounter"] = {"reference": f"Encounter/{STAY_ID}"}
    if drug == "Furosemide":
        fields["reasonReference"] = [{"reference": "Condition/hf"}]
    return of_patient("MedicationRequest", id_, **fields)


def discharge_record(language: str | None = "en-US", discharged: bool = True) -> PatientRecord:
    """A heart-failure stay: furosemide changed, lisinopril started, naproxen stopped, metformin continued."""
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": "p1",
        "gender": "female",
        "birthDate": "1950-01-01",
    }
    if language:
        patient["communication"] = [
            {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": language}]}, "preferred": True}
        ]
    stay = of_patient(
        "Encounter",
        STAY_ID,
        status="finished" if discharged else "in-progress",
        **{"class": {"code": "IMP"}},
        period={"start": "2024-06-01T10:00:00Z", **({"end": "2024-06-05T12:00:00Z"} if discharged else {})},
        reasonCode=[{"text": "Heart failure"}],
    )
    resources = [
        patient,
        stay,
        of_patient(
            "Condition", "hf", code={"text": "Heart failure"}, clinicalStatus={"coding": [{"code": "active"}]}
        ),
        order("home-furo", "Furosemide", "community", "20mg PO daily", "2024-01-10", mg=20, times=1),
        order("home-nap", "Naproxen", "community", "250mg PO BID", "2024-02-01", mg=250, times=2),
        order("home-met", "Metformin", "community", "500mg PO BID", "2024-01-10", mg=500, times=2),
        order("in-furo", "Furosemide", "inpatient", "40mg IV daily", "2024-06-01", mg=40, times=1),
        order("in-enox", "Enoxaparin", "inpatient", "40mg SC daily", "2024-06-01", mg=40, times=1),
        order("out-furo", "Furosemide", "discharge", "40mg PO daily", "2024-06-05", mg=40, times=1),
        order("out-lis", "Lisinopril", "discharge", "5mg PO daily", "2024-06-05", mg=5, times=1),
        order("out-met", "Metformin", "discharge", "500mg PO BID", "2024-06-05", mg=500, times=2),
    ]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
    return record_from_bundle_json(bundle)


def test_admission_and_discharge_lists_compared() -> None:
    d = condense(discharge_record()).discharge
    assert d is not None and d.listed and d.encounter == f"Encounter/{STAY_ID}"
    changes = {m.name: (m.change, m.ref, m.before_ref) for m in d.medications}
    assert changes == {
        "Furosemide": ("changed", "MedicationRequest/out-furo", "MedicationRequest/home-furo"),
        "Lisinopril": ("started", "MedicationRequest/out-lis", None),
        "Metformin": ("continued", "MedicationRequest/out-met", "MedicationRequest/home-met"),
        "Naproxen": ("stopped", None, "MedicationRequest/home-nap"),
    }
    furosemide = next(m for m in d.medications if m.name == "Furosemide")
    assert (furosemide.indication, furosemide.indication_ref) == ("Heart failure", "Condition/hf")
    assert d.hospital_only == ["Enoxaparin"]


@pytest.mark.parametrize("language", ["en", "fr", "ko", "zh-Hant"])
def test_every_change_is_stated_cited_and_verified(language: str) -> None:
    record = discharge_record()
    words = wording(language)
    composed = compose(KIND, condense(record), words)
    note = NoteDraft(kind=KIND.name, sections=sections(KIND, composed, {}))
    report = Verifier(RecordEvidence(record), wording=words).verify(note)
    assert report.passed, report.violations
    for title, drug in (
        (STARTED, "Lisinopril"),
        (CHANGED, "Furosemide"),
        (STOPPED, "Naproxen"),
        (CONTINUED, "Metformin"),
    ):
        assert any(drug in s.text for s in composed[title]), (title, composed[title])
    changed = composed[CHANGED][0]
    assert "40mg PO daily" in changed.text and "20mg PO daily" in changed.text
    assert set(changed.citations) == {
        "MedicationRequest/out-furo",
        "MedicationRequest/home-furo",
        "Condition/hf",
    }
    if language == "en":
        assert "by mouth, once a day" in changed.text  # sig abbreviations spelled out for the patient


def test_no_discharge_list_is_said_and_nothing_invented() -> None:
    record = discharge_record()
    record.resources = {
        k: v for k, v in record.resources.items() if not k.startswith("MedicationRequest/out-")
    }
    composed = compose(KIND, condense(record), wording("en"))
    assert list(composed) == [STAY]
    assert "No discharge medication orders found in the record" in composed[STAY][-1].text


def test_no_discharge_no_guide() -> None:
    timeline = condense(discharge_record(discharged=False))
    assert timeline.discharge is None
    assert compose(KIND, timeline, wording("en")) == {}


@pytest.mark.parametrize(
    ("tag", "language"),
    [
        ("ko", "ko"),
        ("ko-KR", "ko"),
        ("zh-TW", "zh-Hant"),
        ("zh-Hant-TW", "zh-Hant"),
        ("fr-CA", "fr"),
        ("en-US", "en"),
        ("zh-CN", None),
        ("es", None),
        (None, None),
    ],
)
def test_patient_language_to_draft_language(tag: str | None, language: str | None) -> None:
    assert draft_language(tag) == language


def test_an_unsupported_patient_language_is_said() -> None:
    record = discharge_record(language="es")
    timeline = condense(record)
    assert timeline.patient.language == "es"
    stay = compose(KIND, timeline, wording("en"))[STAY]
    said = [s for s in stay if "Patient/p1" in s.citations]
    assert said and "(es)" in said[0].text and "English" in said[0].text
    note = NoteDraft(kind=KIND.name, sections=sections(KIND, {STAY: stay}, {}))
    assert Verifier(RecordEvidence(record)).verify(note).passed


def test_readability_per_language() -> None:
    english = readability(["Take one tablet by mouth every morning.", "It helps your heart."], "en")
    assert english["flesch_reading_ease"] > 60 and "flesch_kincaid_grade" in english
    assert "flesch_reading_ease" in readability(["Prenez un comprimé le matin."], "fr")
    assert readability(["하루 한 번 드십시오."], "ko")["characters_per_sentence"] > 0
