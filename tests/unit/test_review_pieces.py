"""The review app's pure parts: a cited resource's facts, the clinician's replacement document, PKCE."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from fhir_adapters.citation_facts import citation_facts
from fhir_adapters.lifecycle import draft_identifier_of, replacement_decision
from fhir_adapters.replacement import replacement_document
from fhir_adapters.review_drafts import DECIDED_SHOWN, structured_of, to_show
from fhir_adapters.smart_launch import pkce_pair
from services.core.errors import InputError

CLINICIAN = "Practitioner/dr-1"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def draft() -> dict[str, Any]:
    structured = {
        "kind": "progress",
        "sections": [
            {
                "title": "Results",
                "statements": [
                    {
                        "text": "Potassium 6.2 mmol/L on 2026-11-20.",
                        "citations": ["Observation/k"],
                        "author": "record",
                    },
                    {"text": "Potassium may be rising.", "citations": ["Observation/k"], "author": "model"},
                ],
            }
        ],
        "flags": [],
        "verification": {"status": "verified"},
    }
    markdown = (
        "# Progress note\n\n## Results\n\n- Potassium 6.2 mmol/L on 2026-11-20. [1]\n"
        "- Potassium may be rising. [1] _(model)_\n"
    )
    return {
        "resourceType": "DocumentReference",
        "id": "d1",
        "meta": {"versionId": "3", "security": [{"code": "AIAST"}]},
        "identifier": [{"system": "urn:ehr-summarizer:draft", "value": "progress-x"}],
        "status": "current",
        "docStatus": "preliminary",
        "subject": {"reference": "Patient/p1"},
        "type": {"text": "Progress note"},
        "description": "Progress note summary (AI draft)",
        "content": [
            {"attachment": {"contentType": "text/markdown; charset=utf-8", "data": b64(markdown)}},
            {"attachment": {"contentType": "application/json", "data": b64(json.dumps(structured))}},
        ],
    }


def test_an_observation_shows_value_unit_range_date_status() -> None:
    facts = dict(
        citation_facts(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"code": "2823-3", "display": "Potassium"}]},
                "valueQuantity": {"value": 6.2, "unit": "mmol/L"},
                "referenceRange": [{"low": {"value": 3.5, "unit": "mmol/L"}, "high": {"value": 5.1}}],
                "interpretation": [{"coding": [{"code": "H", "display": "High"}]}],
                "effectiveDateTime": "2026-11-20",
            }
        )
    )
    assert facts == {
        "What": "Potassium",
        "Value": "6.2",
        "Unit": "mmol/L",
        "Reference range": "3.5 to 5.1 mmol/L",
        "Interpretation": "High",
        "Date": "2026-11-20",
        "Status": "final",
    }


def test_a_condition_and_a_patient_state_only_what_they_have() -> None:
    condition = {
        "resourceType": "Condition",
        "code": {"text": "Type 2 diabetes mellitus"},
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "onsetDateTime": "2015-03-01",
    }
    assert citation_facts(condition) == [
        ("What", "Type 2 diabetes mellitus"),
        ("Date", "2015-03-01"),
        ("Status", "active"),
    ]
    patient = {"resourceType": "Patient", "name": [{"given": ["Ada"], "family": "Quill"}], "gender": "female"}
    assert dict(citation_facts(patient))["Name"] == "Ada Quill"


def test_the_replacement_replaces_ours_and_keeps_the_edit_measurable() -> None:
    original = draft()
    edited = "Potassium 6.2 mmol/L is high; repeat today."
    new = {**replacement_document(original, {"sections[0].statements[1]": edited}, CLINICIAN), "id": "r1"}
    assert new["relatesTo"] == [{"code": "replaces", "target": {"reference": "DocumentReference/d1"}}]
    assert new["docStatus"] == "final" and new["status"] == "current"
    assert new["authenticator"] == {"reference": CLINICIAN} and new["author"] == [{"reference": CLINICIAN}]
    assert draft_identifier_of(new) is None  # not ours: the tracker reads it as a clinician's document
    statements = structured_of(new)["sections"][0]["statements"]
    assert statements[1] == {**statements[1], "text": edited, "edited_by": CLINICIAN}
    assert "edited_by" not in statements[0]
    markdown = base64.b64decode(new["content"][0]["attachment"]["data"]).decode()
    assert f"- {edited} [1] _(model)_" in markdown and "may be rising" not in markdown
    decision = replacement_decision(original, new)
    assert decision is not None and decision.state == "replaced"
    assert decision.change_ratio is not None and 0 < decision.change_ratio < 0.5
    assert original["docStatus"] == "preliminary"  # ours is untouched


@pytest.mark.parametrize(
    ("edits", "message"),
    [
        ({"sections[0].statements[9]": "x"}, "not a statement of this draft"),
        ({"sections[0].statements[0]": "  "}, "cannot be empty"),
        ({"sections[x].statements[0]": "x"}, "not a statement location"),
    ],
)
def test_an_edit_that_names_no_statement_is_refused(edits: dict[str, str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        replacement_document(draft(), edits, CLINICIAN)


def test_pkce_challenge_is_the_s256_of_the_verifier() -> None:
    verifier, challenge = pkce_pair()
    assert 43 <= len(verifier) <= 128
    digest = hashlib.sha256(verifier.encode()).digest()
    assert challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert pkce_pair()[0] != verifier


def test_pending_drafts_come_first_and_only_the_latest_decided_are_shown() -> None:
    def doc(n: int, **changes: Any) -> dict[str, Any]:
        return {**draft(), "id": f"d{n}", "date": f"2026-11-{n:02d}", **changes}

    decided = [doc(n, docStatus="final") for n in range(1, 13)]
    pending = [doc(13), doc(14)]
    replaced = doc(15)
    edit = {
        "resourceType": "DocumentReference",
        "id": "r",
        "relatesTo": [{"code": "replaces", "target": {"reference": "DocumentReference/d15"}}],
    }
    shown, replacements, older = to_show([*decided, *pending, replaced, edit, {**doc(16), "content": []}])
    refs = [ref.split("/")[1] for ref, _, _ in shown]
    assert refs[:2] == ["d14", "d13"]  # pending, newest first; d15 was replaced, d16 has no structured draft
    assert refs[2:] == ["d15", "d12", "d11", "d10", "d9", "d8", "d7", "d6", "d5", "d4"][:DECIDED_SHOWN]
    assert older == 13 - DECIDED_SHOWN and replacements == {"DocumentReference/d15": edit}
