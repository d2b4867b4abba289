"""A job's visit transcript: found with the record, read once, composed from and shown to the model.

The SOAP kind composes from it (clinical_notes.transcript_compose); the model sees the turns that fit a
share of the prompt budget under T keys; the verifier resolves turn citations. Refused transcripts (another
patient's encounter) are audited by id. Transcript text never reaches a log or an audit row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from clinical_notes.draft import Statement
from clinical_notes.evidence import EvidenceSource
from clinical_notes.timeline import Source
from clinical_notes.tokens import TokenCounter
from clinical_notes.transcript import Transcript, render_turns
from clinical_notes.transcript_checks import WithTranscript
from clinical_notes.transcript_compose import transcript_statements
from clinical_notes.transcript_facts import TranscriptFacts, facts_of
from fhir_adapters.client import FhirClient
from fhir_adapters.record import PatientRecord
from fhir_adapters.transcripts import (
    TranscriptRules,
    cited_transcripts,
    find_transcript,
    transcript_refs,
)
from services.core.errors import InputError
from services.core.settings import Settings

log = logging.getLogger(__name__)
PROMPT_SHARE = 0.5  # of the prompt budget at most for the turns; the timeline keeps the rest
TRANSCRIPT_START = "VISIT TRANSCRIPT (quoted speech; each line is [key] speaker: words; cite turns by key)"
TRANSCRIPT_END = "END OF TRANSCRIPT"
QUOTE_CHARS = 160


def rules_of(settings: Settings) -> TranscriptRules:
    """The transcript settings."""
    return TranscriptRules(
        frozenset(settings.transcript_codes), settings.transcript_max_bytes, settings.transcript_max_turns
    )


@dataclass
class Visit:
    """The encounter a SOAP note is for, its transcript and what was composed from it."""

    encounter: str | None
    transcript: Transcript | None = None
    facts: TranscriptFacts = field(default_factory=TranscriptFacts)
    shown: int = 0  # turns the prompt shows
    skip: frozenset[str] = frozenset()  # transcripts left out of the timeline's prior notes
    refused: list[str] = field(default_factory=list)

    def prompt_text(self) -> str | None:
        """The transcript block of the prompt (the turns that fit), None without turns."""
        if self.transcript is None or not self.shown:
            return None
        shown = Transcript(self.transcript.ref, self.transcript.turns[: self.shown])
        shown.left_out = len(self.transcript.turns) - self.shown + self.transcript.left_out
        block = render_turns(shown).replace(TRANSCRIPT_END, TRANSCRIPT_END.lower())
        return f"{TRANSCRIPT_START}\n{block}\n{TRANSCRIPT_END}\n\n"

    def keys(self) -> dict[str, str]:
        """Prompt key → turn citation, for the turns shown."""
        if self.transcript is None:
            return {}
        return dict(list(self.transcript.keys().items())[: self.shown])

    def evidence(self, record: EvidenceSource) -> EvidenceSource:
        """The record's evidence with this transcript's turns resolvable."""
        pairs = [(self.transcript, self.facts)] if self.transcript is not None else []
        return WithTranscript(record, pairs)

    def statements(self) -> dict[str, list[Statement]]:
        """The transcript's composed statements by SOAP section."""
        return transcript_statements(self.transcript, self.facts)

    def sources(self) -> dict[str, Source]:
        """How each turn is shown in Sources: speaker and words."""
        if self.transcript is None:
            return {}
        out = {}
        for turn in self.transcript.turns:
            words = turn.text if len(turn.text) <= QUOTE_CHARS else turn.text[: QUOTE_CHARS - 1] + "…"
            out[self.transcript.turn_ref(turn.n)] = Source(f"turn {turn.n}, {turn.speaker}: “{words}”", None)
        return out

    def summary(self) -> dict[str, object]:
        """What the job report says of the transcript: ids and counts only."""
        t = self.transcript
        return {
            "encounter": self.encounter,
            "ref": t.ref if t else None,
            "turns": len(t.turns) if t else 0,
            "turns_in_prompt": self.shown,
            "turns_left_out": t.left_out if t else 0,
            "problems": len(t.problems) if t else 0,
            "refused": self.refused,
        }


async def load_visit(
    record: PatientRecord, settings: Settings, *, encounter: str | None, client: FhirClient | None
) -> Visit:
    """The encounter's transcript read and composed from; refusals audited (ids only)."""
    rules = rules_of(settings)
    try:
        found = await find_transcript(record, rules, encounter=encounter, client=client)
    except InputError as exc:
        _audit_refusal(f"Encounter/{encounter}".replace("Encounter/Encounter/", "Encounter/"), str(exc))
        raise
    visit = Visit(found.encounter, skip=frozenset(transcript_refs(record, rules.codes)))
    for ref, why in found.refused:
        _audit_refusal(ref, why)
        visit.refused.append(ref)
    if found.transcript is not None:
        visit.transcript = found.transcript
        visit.facts = facts_of(found.transcript)
    t = visit.transcript
    log.info(
        "visit transcript: %s, %d turns, %d left out, %d refused",
        t.ref if t else "none",
        len(t.turns) if t else 0,
        t.left_out if t else 0,
        len(found.refused),
        extra={"patient_id": record.patient_id},
    )
    return visit


def fit_turns(visit: Visit, budget: int, counter: TokenCounter) -> int:
    """Show as many turns as fit a share of the prompt budget; the tokens they take."""
    if visit.transcript is None or not visit.transcript.turns:
        return 0
    allowed = int(budget * PROMPT_SHARE)
    low, high = 0, len(visit.transcript.turns)
    while low < high:  # the most turns whose block fits
        middle = (low + high + 1) // 2
        visit.shown = middle
        if counter.count(visit.prompt_text() or "") <= allowed:
            low = middle
        else:
            high = middle - 1
    visit.shown = low
    return counter.count(visit.prompt_text() or "")


def _audit_refusal(ref: str, why: str) -> None:
    from services.audit.models import AuditOutcome
    from services.audit.service import record_detached

    record_detached(
        actor="ehr-summarizer",
        action="transcript refused",
        outcome=AuditOutcome.failure,
        resource_ids=[ref],
        detail=why,
    )


async def transcript_evidence(
    record: PatientRecord, settings: Settings, cited: list[str], evidence: EvidenceSource
) -> EvidenceSource:
    """The record's evidence with the turns a draft cites resolvable from the record's transcripts."""
    transcripts = await cited_transcripts(record, rules_of(settings), cited)
    return WithTranscript(evidence, [(t, facts_of(t)) for t in transcripts])
