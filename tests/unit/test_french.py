"""Drafts in French: the verifier reads French dates, decimal commas and hedges; the frame is rendered in
French while the structured draft keeps its English keys."""

from __future__ import annotations

import pytest

from clinical_notes import prompts
from clinical_notes.draft import DraftVerification, NoteDraft
from clinical_notes.kinds import get_kind
from clinical_notes.language import ENGLISH, FRENCH, wording
from clinical_notes.render import render_markdown
from clinical_notes.timeline import Source
from clinical_notes.verifier import Verifier
from fhir_adapters.evidence import RecordEvidence
from fhir_adapters.record import PatientRecord, record_from_bundle_json
from tests.unit.test_verifier import RESOURCES


@pytest.fixture(scope="module")
def patient() -> PatientRecord:
    """The verifier tests' record (potassium 5.9 mmol/L on 2024-03-01, hypertension, lisinopril)."""
    return record_from_bundle_json(
        {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in RESOURCES]}
    )


def rules(
    patient: PatientRecord, text: str, citations: list[str], title: str = "Recent results"
) -> list[str]:
    """The violations of one French model statement."""
    note = NoteDraft.model_validate(
        {
            "kind": "soap",
            "sections": [
                {"title": title, "statements": [{"text": text, "citations": citations, "author": "model"}]}
            ],
        }
    )
    return [v.rule for v in Verifier(RecordEvidence(patient), wording=FRENCH).verify(note).violations]


@pytest.mark.parametrize(
    "text",
    [
        "Potassium à 5,9 mmol/L le 01/03/2024, au-dessus de la normale.",
        "Potassium à 5,9 mmol/L le 1er mars 2024.",
        "Potassium à 5,9 mmol/L en mars 2024.",
    ],
)
def test_french_numbers_and_dates_are_checked(patient: PatientRecord, text: str) -> None:
    assert rules(patient, text, ["Observation/k1"]) == []


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("Potassium à 6,9 mmol/L le 01/03/2024.", "number_unsupported"),
        ("Potassium à 5,9 mmol/L le 03/01/2024.", "date_unsupported"),  # day first: 3 January, not 1 March
        ("Potassium à 5,9 mmol/L le 12 avril 2024.", "date_unsupported"),
    ],
)
def test_french_numbers_and_dates_that_the_record_does_not_hold_fail(
    patient: PatientRecord, text: str, rule: str
) -> None:
    assert rule in rules(patient, text, ["Observation/k1"])


@pytest.mark.parametrize(
    ("text", "passes"),
    [
        ("La kaliémie à 5,9 mmol/L évoque une hyperkaliémie ; Potassium à contrôler.", True),
        ("Potassium à 5,9 mmol/L compatible avec une insuffisance rénale, à envisager.", True),
        ("Potassium à 5,9 mmol/L : le patient présente une insuffisance rénale.", False),
        ("Potassium à 5,9 mmol/L confirme le diagnostic.", False),
    ],
)
def test_assessments_are_hedged_in_french(patient: PatientRecord, text: str, passes: bool) -> None:
    found = rules(patient, text, ["Observation/k1"], title="Assessment")
    assert ("definitive_diagnosis" not in found) is passes


def test_a_french_statement_about_the_record_needs_no_citation(patient: PatientRecord) -> None:
    assert rules(patient, "Aucune allergie enregistrée dans le dossier.", [], title="Allergies") == []
    assert "uncited_claim" in rules(patient, "Aucune allergie.", [], title="Allergies")


def checked_once() -> DraftVerification:
    """One record statement checked, nothing removed, no synthesis."""
    return DraftVerification(
        status="verified",
        statements_checked=1,
        record_statements=1,
        model_statements=0,
        dropped=0,
        synthesis="unavailable",
    )


def test_french_rendering_and_prompt() -> None:
    kind = get_kind("progress")
    note = NoteDraft.model_validate(
        {
            "kind": "progress",
            "sections": [
                {
                    "title": "Active problems",
                    "statements": [{"text": "Hypertension, onset 2015-01-10", "citations": ["Condition/c1"]}],
                }
            ],
            "synthesis_unavailable": "answer cut off at max_tokens=8",
        }
    )
    text = render_markdown(
        note, kind, {"Condition/c1": Source("Hypertension", "2015-01-10")}, checked_once(), FRENCH
    )
    assert text.startswith("# Synthèse d'évolution (brouillon IA)\n")
    assert FRENCH.banner in text and ENGLISH.banner not in text
    assert "## Problèmes actifs" in text and "## Active problems" not in text
    assert "_Synthèse du modèle indisponible : answer cut off at max_tokens=8." in text
    assert "1. Condition, 10/01/2015: Hypertension (Condition/c1)" in text
    assert note.sections[0].title == "Active problems"  # the structured draft keeps its keys
    french = prompts.messages(kind, "C1 Hypertension", words=FRENCH)[0]["content"]
    assert french.startswith(prompts.SYSTEM) and "in French (français)" in french
    assert prompts.messages(kind, "C1 Hypertension")[0]["content"] == prompts.SYSTEM
    assert len(prompts.fixed_text()) >= len(french)
    with pytest.raises(ValueError, match="no wording for language 'de'"):
        wording("de")
