"""The model's proposal for a complaint the lexicon cannot map, against the real CPU vLLM: shown as the
model's, at info, and never a level."""

from __future__ import annotations

import pytest

from clinical_notes.complaint_proposals import NONE, TITLE, listed_names
from fhir_adapters.record import record_from_bundle_json
from services.core.settings import get_settings
from tests.unit.test_triage_cli import ed_visit_bundle
from workers.clients import llm_client
from workers.pipeline import Pipeline

pytestmark = pytest.mark.integration
COMPLAINT = "dolor de pecho desde hace una hora"


async def test_a_model_proposal_is_shown_as_the_model_s_and_never_raises_the_level(llm_server: str) -> None:
    # A cut-off synthesis (8 tokens) keeps the run short on a shared CPU; the proposal has its own budget.
    settings = get_settings().model_copy(update={"triage_scale": "ctas", "llm_max_output_tokens": 8})
    record = record_from_bundle_json(ed_visit_bundle(COMPLAINT))
    async with llm_client(settings) as llm:
        pipeline = Pipeline(settings, llm=llm)
        answer = await pipeline.propose_complaint(COMPLAINT)
        result = await pipeline.run(record, ["triage"], write=False)
    assert answer["complaint"] in [*listed_names(), NONE]  # the served model answered within the list
    [outcome] = result.results
    assert outcome.note is not None and outcome.verification["triage_scale"] == "ctas"
    unread = [f for f in outcome.note.flags if f.title == "Complaint not read"]
    assert len(unread) == 1 and "appears to be in Spanish" in unread[0].rationale
    proposals = [f for f in outcome.note.flags if f.title.startswith(TITLE)]
    for proposal in proposals:
        assert proposal.source == "model" and proposal.severity == "info"
        assert "not the record's" in proposal.rationale and proposal.citations == ["Encounter/e1"]
    if answer["complaint"] != NONE:  # temperature 0: the draft asked the same question and got this answer
        assert [p.title for p in proposals] == [f"{TITLE}: {answer['complaint']}"]
    assert {f.severity for f in outcome.note.flags} == {"info"}  # quiet vital signs: nothing raised
    [findings] = [s for s in outcome.note.sections if s.title == "Findings"]
    assert "Meets no CTAS level-1 or level-2 criterion" in findings.statements[0].text
