"""The review app's pure parts: a cited resource's facts, the clinician's replacement document, PKCE."""

from __future__ import annotations

import base64
import hashlib
import json
from html import escape
from typing import Any

import pytest

from fhir_adapters.citation_facts import citation_facts
from fhir_adapters.lifecycle import draft_identifier_of, replacement_decision
from fhir_adapters.replacement import replacement_document
from fhir_adapters.review_drafts import DECIDED_SHOWN, stored_verification, structured_of, to_show
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
        ({"sections[-1].statements[-1]": "x"}, "not a statement location"),  # no counting back
        ({"sections[0].statements[0] ": "x"}, "not a statement location"),
        ({"sections[99999999999].statements[0]": "x"}, "not a statement location"),
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


def test_the_session_cookie_is_partitioned_over_https_and_lax_over_http() -> None:
    """Issue 19: over HTTPS the app runs in the EHR's frame (Starlette's partitioned= needs Python 3.14)."""
    from services.core.settings import Settings
    from services.review.app import session_cookie

    https = session_cookie("sid1", Settings(review_url="https://ehrsum.hospital.internal"))
    assert https == "ehrsum_review=sid1; Path=/review; HttpOnly; Secure; SameSite=None; Partitioned"
    plain = session_cookie("sid1", Settings(review_url="http://127.0.0.1:8400"))
    assert plain == "ehrsum_review=sid1; Path=/review; HttpOnly; SameSite=Lax"


def test_a_removed_statement_leaves_the_replacement_and_a_kept_failure_carries_its_reason() -> None:
    removed = {"sections[0].statements[1]"}
    new = replacement_document(draft(), {}, CLINICIAN, removed=removed, override_reason=" Checked with lab. ")
    statements = structured_of(new)["sections"][0]["statements"]
    assert [s["text"] for s in statements] == ["Potassium 6.2 mmol/L on 2026-11-20."]
    markdown = base64.b64decode(new["content"][0]["attachment"]["data"]).decode()
    assert "may be rising" not in markdown and "- Potassium 6.2 mmol/L on 2026-11-20. [1]" in markdown
    assert new["extension"] == [
        {"url": "urn:ehr-summarizer:approval-override-reason", "valueString": "Checked with lab."}
    ]
    with pytest.raises(InputError, match="not a statement"):
        replacement_document(draft(), {}, CLINICIAN, removed={"sections[3].statements[0]"})
    with pytest.raises(InputError, match="1 to 1000"):
        replacement_document(draft(), {}, CLINICIAN, override_reason="x" * 1001)


def test_a_source_outside_the_patients_record_is_never_rendered_from_it() -> None:
    """Issue 19: a statement citing a resource not in the compartment shows it as outside, and fails."""
    from fhir_adapters.review_drafts import OUTSIDE, review_draft
    from services.review.pages import draft_card

    potassium = {
        "resourceType": "Observation",
        "id": "k",
        "status": "final",
        "code": {"text": "Potassium"},
        "subject": {"reference": "Patient/p1"},
        "valueQuantity": {"value": 6.2, "unit": "mmol/L"},
        "effectiveDateTime": "2026-11-20",
    }
    inside = review_draft(draft(), 'W/"3"', {"Observation/k": potassium}, None)
    assert inside.outside == frozenset() and inside.sections[0][1][0].citations == [
        ("Observation/k", "Potassium")
    ]
    outside = review_draft(draft(), 'W/"3"', {}, None)  # what in_compartment answers for another patient's
    assert outside.outside == {"Observation/k"}
    assert [s.location for s in outside.failing] == ["sections[0].statements[0]", "sections[0].statements[1]"]
    assert all(s.citations == [("Observation/k", OUTSIDE)] for s in outside.sections[0][1])
    html = draft_card(outside, "token", can_decide=True)
    assert escape(OUTSIDE) in html and "/review/evidence" not in html and "Potassium</button>" not in html
    assert "Approve despite failed checks" in html and 'name="override_reason"' in html


@pytest.mark.parametrize(
    ("resource", "mine"),
    [
        ({"resourceType": "Observation", "subject": {"reference": "Patient/p1"}}, True),
        ({"resourceType": "AllergyIntolerance", "patient": {"reference": "Patient/p1"}}, True),
        ({"resourceType": "Patient", "id": "p1"}, True),
        ({"resourceType": "Observation", "subject": {"reference": "Patient/p2"}}, False),
        ({"resourceType": "Observation", "subject": {"reference": "Group/p1"}}, False),
        ({"resourceType": "Observation", "subject": "Patient/p1"}, False),
        ({"resourceType": "Observation", "subject": {"reference": 5}}, False),
        ({"resourceType": "Observation", "subject": {"reference": "Patient/../p1"}}, False),
        ({"resourceType": "Observation"}, False),
        ({"resourceType": "Patient", "id": "p2"}, False),
    ],
)
def test_only_the_patients_own_resources_are_theirs(resource: dict[str, Any], mine: bool) -> None:
    from fhir_adapters.compartment import of_patient

    assert of_patient(resource, "p1") is mine


def test_the_compartment_is_searched_by_type_and_never_for_other_patients_or_shared_resources() -> None:
    from fhir_adapters.compartment import _wanted

    refs = [
        "Observation/a",
        "Observation/b/_history/2",
        "Condition/c",
        "Patient/p1",
        "Patient/p2",
        "Practitioner/x",
        "Medication/m",
        "Observation/..",
        "nonsense",
    ]
    assert _wanted(refs, "p1") == {
        "Observation": {"a": ["Observation/a"], "b": ["Observation/b/_history/2"]},
        "Condition": {"c": ["Condition/c"]},
        "Patient": {"p1": ["Patient/p1"]},
    }


def test_a_draft_an_earlier_attempt_wrote_reports_the_verification_it_carries() -> None:
    from workers.assembly import KindResult

    stored = stored_verification(draft())
    assert stored == {"status": "verified"}
    assert (
        KindResult(
            kind="progress", draft_ref="DocumentReference/d1", stored_verification=stored
        ).verification_json()
        == stored
    )
    broken = {**draft(), "content": [{"attachment": {"contentType": "application/json", "data": b64("[1]")}}]}
    assert stored_verification(broken) == {}  # no structured draft: nothing to report, no error
    assert KindResult(kind="progress", draft_ref="DocumentReference/d1").verification_json() == {}
