"""The guideline library: passages with stable ids from Markdown, HTML, text and FHIR resources, bad files
skipped and listed, retrieval keyed by the record, and the checks of passage-cited statements."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from clinical_notes.compose import compose
from clinical_notes.draft import NoteDraft, Section, Statement
from clinical_notes.guidelines import WithGuidelines, attach, retrieve, split_document
from clinical_notes.kinds import get_kind
from clinical_notes.render import render_markdown
from clinical_notes.timeline_text import render_timeline
from clinical_notes.verifier import Verifier
from fhir_adapters.condense import condense
from fhir_adapters.evidence import RecordEvidence
from fhir_adapters.guidelines import load_library, passages_of_resource
from fhir_adapters.record import PatientRecord, record_from_bundle_json
from fhir_adapters.review_drafts import review_draft
from services.review.pages import draft_card
from tests.unit.test_compose_french import of_patient

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "deploy" / "guidelines"
HTN = """---
id: htn-local
title: Local hypertension protocol
version: 2025-01
---

# Local hypertension protocol

## Thresholds

Start treatment for hypertension at 140/90 mmHg.

## First-line drugs

Amlodipine or lisinopril are first-line for hypertension.
"""


def test_markdown_passages_have_stable_ids() -> None:
    passages = split_document(HTN, "file-name", "md")
    assert [p.id for p in passages] == [
        "htn-local#thresholds@2025-01",
        "htn-local#first-line-drugs@2025-01",
    ]
    assert passages[0].title == "Local hypertension protocol" and passages[0].section == "Thresholds"
    again = split_document(HTN.replace("140/90", "130/80"), "other-name", "md")
    assert [p.id for p in again] == [p.id for p in passages]  # same document, section and version: same id
    assert split_document(HTN.replace("2025-01", "2026-02"), "x", "md")[0].id.endswith("@2026-02")


def test_html_text_and_long_sections() -> None:
    page = "<html><body><h1>Asthma</h1><script>x()</script><h2>Relievers</h2><p>Albuterol as needed.</p>"
    html_passages = split_document(page, "asthma-page", "html")
    assert [(p.section, p.text.strip()) for p in html_passages] == [("Relievers", "Albuterol as needed.")]
    text = "COPD care:\nLAMA first.\n\n" + "\n\n".join(f"Paragraph {n} " + "word " * 60 for n in range(3))
    ids = [p.id for p in split_document(text, "copd", "txt")]
    assert ids[0] == "copd#copd-care@unversioned" and ids[1] == "copd#copd-care-2@unversioned"


def test_fhir_plandefinition_and_library() -> None:
    plan = {
        "resourceType": "PlanDefinition",
        "id": "pd1",
        "name": "HeartFailureProtocol",
        "title": "Heart failure protocol",
        "version": "3",
        "action": [{"title": "Beta blocker", "description": "Carvedilol for heart failure with reduced EF."}],
    }
    passages = passages_of_resource(plan)
    assert (
        passages[-1].id == "heartfailureprotocol#beta-blocker@3"
        and passages[-1].source == "PlanDefinition/pd1"
    )
    data = base64.b64encode(HTN.encode()).decode()
    library = {
        "resourceType": "Library",
        "id": "l1",
        "name": "htn",
        "version": "9",
        "content": [{"contentType": "text/markdown", "data": data}],
    }
    assert next(p.id for p in passages_of_resource(library)) == "htn#thresholds@9"  # the resource's identity


def test_bad_files_are_skipped_and_listed(tmp_path: Path) -> None:
    (tmp_path / "good.md").write_text(HTN, encoding="utf-8")
    (tmp_path / "huge.md").write_text("# Big\n\n" + "word " * 1000, encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "patient.json").write_text(json.dumps({"resourceType": "Patient"}), encoding="utf-8")
    (tmp_path / "README.md").write_text("# About this folder", encoding="utf-8")
    library = load_library(tmp_path, max_bytes=3000)
    assert {p.document for p in library.passages} == {"htn-local"}
    reasons = dict(library.skipped)
    assert "over the 3000-byte limit" in reasons["huge.md"]
    assert reasons["latin1.txt"] == "not UTF-8 text"
    assert reasons["broken.json"].startswith("not JSON")
    assert "not a PlanDefinition or Library" in reasons["patient.json"]


def record_with(*problems: str) -> PatientRecord:
    """A record with these active problems and one potassium result."""
    resources: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": "p1", "gender": "male", "birthDate": "1960-01-01"}
    ]
    for n, name in enumerate(problems):
        resources.append(
            of_patient(
                "Condition",
                f"c{n}",
                code={"text": name},
                clinicalStatus={"coding": [{"code": "active"}]},
                onsetDateTime="2020-01-01",
            )
        )
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
    return record_from_bundle_json(bundle)


def test_retrieval_keyed_by_problems_and_gaps_said() -> None:
    library = load_library(SAMPLE, 2_000_000)
    timeline = condense(record_with("Essential hypertension (disorder)", "Atrial fibrillation (disorder)"))
    found = {need.name: [p.document for p, _ in hits] for need, hits in retrieve(library, timeline)}
    assert found["Essential hypertension"] and set(found["Essential hypertension"]) == {
        "who-hypertension-2021"
    }
    assert found["Atrial fibrillation"] == []  # nothing in the library: no passage, nothing invented
    attach(timeline, library)
    assert timeline.guideline_gaps == ["Condition/c1"]
    keys = [timeline.key(p.ref) for p in timeline.guidelines]
    assert keys and all(k.startswith("G") for k in keys)
    assert f"[{keys[0]}]" in render_timeline(timeline) and "GUIDELINE PASSAGES" in render_timeline(timeline)
    plan = compose(get_kind("progress"), timeline)["Plan considerations"]
    assert (
        len(plan) == 1
        and "covers Atrial fibrillation;" in plan[0].text
        and plan[0].citations == ["Condition/c1"]
    )


def test_passage_cited_statements_are_checked() -> None:
    library = load_library(SAMPLE, 2_000_000)
    record = record_with("Essential hypertension (disorder)")
    target = next(p for p in library.passages if "blood-pressure-targets" in p.id)
    verifier = Verifier(WithGuidelines(RecordEvidence(record), library.passages))

    def rules(text: str, cites: list[str]) -> set[str]:
        note = NoteDraft(
            kind="progress",
            sections=[
                Section(title="Plan considerations", statements=[Statement(text=text, citations=cites)])
            ],
        )
        return {v.rule for v in verifier.verify(note).violations}

    good = "For essential hypertension, the guideline recommends a target below 140/90 mmHg."
    assert rules(good, ["Condition/c0", target.ref]) == set()
    assert "number_unsupported" in rules(good.replace("140/90", "150/95"), ["Condition/c0", target.ref])
    assert "guideline_unsupported" in rules(good + " Add warfarin.", ["Condition/c0", target.ref])
    assert "recommendation_uncited" in rules(good, ["Condition/c0"])
    assert "citation_unresolved" in rules(good, ["Condition/c0", target.ref + "x"])
    # The record's own facts need no passage: a consideration resting on the record is not a recommendation.
    assert rules("Consider rechecking blood pressure for essential hypertension.", ["Condition/c0"]) == set()


def test_markdown_and_review_chip_keep_guidelines_apart() -> None:
    library = load_library(SAMPLE, 2_000_000)
    record = record_with("Essential hypertension (disorder)")
    timeline = attach(condense(record), library)
    passage = timeline.guidelines[0]
    kind = get_kind("progress")
    note = NoteDraft(
        kind="progress",
        sections=[
            Section(
                title="Plan considerations",
                statements=[
                    Statement(
                        text="For essential hypertension, the guideline says to assess cardiovascular risk.",
                        citations=["Condition/c0", passage.ref],
                    )
                ],
            )
        ],
    )
    markdown = render_markdown(note, kind, timeline.source_labels())
    assert "[1][G1]" in markdown and "## Guideline passages cited" in markdown and passage.id in markdown
    structured = {**note.model_dump(), "guidelines": [passage.model_dump()]}
    data = base64.b64encode(json.dumps(structured).encode()).decode()
    doc = {
        "resourceType": "DocumentReference",
        "id": "d1",
        "docStatus": "preliminary",
        "date": "2025-01-01",
        "identifier": [{"system": "urn:ehr-summarizer:draft", "value": "x"}],
        "content": [{"attachment": {"contentType": "application/json", "data": data}}],
    }
    cited = {"Condition/c0": record.resources["Condition/c0"].model_dump(mode="json", exclude_none=True)}
    reviewed = review_draft(doc, "1", cited, None)
    statement = reviewed.sections[0][1][0]
    assert statement.problems == []  # verified against the passage the draft carries
    html = draft_card(reviewed, "csrf", can_decide=False)
    assert 'class="chip guideline"' in html and passage.version in html and "a.chip" not in html


def test_cli_index_and_search(tmp_path: Path, capsys: Any) -> None:
    from services.cli import main

    (tmp_path / "htn.md").write_text(HTN, encoding="utf-8")
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe")
    assert main(["guidelines", "index", str(tmp_path), "--json"]) == 0
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    assert {"id": "htn-local#thresholds@2025-01"}.items() <= lines[0].items()
    assert {"skipped": "bad.txt", "reason": "not UTF-8 text"} in lines and "skipped bad.txt" in err
    bundle = tmp_path / "record.json"
    entries = [
        {"resource": r.model_dump(mode="json", exclude_none=True)}
        for r in record_with("Hypertension").resources.values()
    ]
    bundle.write_text(
        json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}), encoding="utf-8"
    )
    assert main(["guidelines", "search", "--record", str(bundle), "--dir", str(tmp_path), "--json"]) == 0
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (
        found[0]["need"] == "problem"
        and found[0]["passage"].startswith("htn-local#")
        and found[0]["score"] > 0
    )
    assert main(["guidelines", "index", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.strip() == f"ehrsum: error: {tmp_path / 'missing'}: not a folder"
