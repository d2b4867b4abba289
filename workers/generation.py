"""The model's part of a draft: its answer in the kind's schema, verified, regenerated once with the
violations (unless EHRSUM_LLM_REGENERATIONS is 0), and what passed; never an exception for a bad answer."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from clinical_notes import prompts
from clinical_notes.attachments import image_parts
from clinical_notes.complaint_proposals import proposal_flag, proposal_messages, proposal_schema
from clinical_notes.draft import Flag, NoteDraft
from clinical_notes.kinds import NoteKind
from clinical_notes.language import ENGLISH, Wording
from clinical_notes.schema import answer_to_draft, model_schema
from clinical_notes.screen import UNMAPPED_TITLES
from clinical_notes.timeline import ClinicalTimeline
from clinical_notes.timeline_text import render_timeline
from clinical_notes.triage_context import TriageFlag
from clinical_notes.verifier import VerificationReport, without_failing
from services.core import tracing
from services.core.errors import LlmError, LlmPermanentError
from services.core.settings import Settings
from services.core.usage import Usage
from workers.llm_client import LlmClient, LlmOutputError
from workers.model_routing import adapter_for
from workers.prepared import PreparedRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Generated:
    """One accepted answer: the draft, its tokens and time to first token, who answered."""

    note: NoteDraft
    usage: Usage
    ttft_s: float | None
    served_model: str | None


@dataclass
class Synthesis:
    """What the model wrote for one kind, after verification, or why there is nothing."""

    note: NoteDraft | None = None
    report: VerificationReport | None = None
    first: VerificationReport | None = None
    regenerated: bool = False
    dropped: int = 0
    unavailable: str | None = None
    usage: Usage = field(default_factory=Usage)
    ttft_s: float | None = None
    served_model: str | None = None


class Synthesizer:
    """Asks the model for a kind's synthesis and keeps what the verifier accepts."""

    def __init__(self, settings: Settings, llm: LlmClient):
        self.settings = settings
        self.llm = llm

    async def generate(
        self,
        kind: NoteKind,
        timeline: ClinicalTimeline,
        feedback: str | None = None,
        first_token: asyncio.Event | None = None,
        model: str | None = None,
        words: Wording = ENGLISH,
        prepared: PreparedRecord | None = None,
    ) -> Generated:
        """The model's answer as a draft of its sections; one retry when it does not fit the schema.

        `model` names a LoRA adapter of the server (None: the base model)."""
        keys = timeline.citation_keys()
        images: list[dict[str, Any]] = []
        if prepared is not None and prepared.images:
            keys |= prepared.image_keys
            images = image_parts(prepared.images, prepared.image_keys)
        visit = prepared.visit if prepared is not None and kind.name == "soap" else None
        transcript = visit.prompt_text() if visit is not None else None
        if transcript and visit is not None:
            keys |= visit.keys()
        s = self.settings
        schema = model_schema(kind, max_statements=s.note_max_statements, max_chars=s.statement_max_chars)
        text = render_timeline(timeline)
        problem: str | None = None
        served: str | None = None
        for attempt in range(2):
            try:
                completion = await self.llm.complete_json(
                    prompts.messages(kind, text, problem or feedback, words, images, transcript),
                    schema,
                    name=f"{kind.name}_synthesis",
                    max_tokens=s.llm_max_output_tokens,
                    temperature=s.llm_temperature,
                    first_token=first_token,
                    model=model,
                )
                served = completion.model
                note = answer_to_draft(kind, completion.content).with_citations(keys)
                return Generated(note, completion.usage, completion.ttft_s, completion.model)
            except (LlmOutputError, ValidationError) as exc:
                problem = str(exc).splitlines()[0][:200]
                served = getattr(exc, "model", None) or served
                log.warning("unusable model answer (attempt %d): %s", attempt + 1, type(exc).__name__)
        raise LlmOutputError(
            f"the answer did not fit the {kind.name} schema after a retry: {problem}", served
        )

    async def synthesize(
        self, kind: NoteKind, prepared: PreparedRecord, first_token: asyncio.Event | None = None
    ) -> Synthesis:
        """Generate, verify (regenerating once with the violations), keep what passed; a transient LLM
        error still propagates, so the job is retried."""
        out = Synthesis()
        if prepared.fitted is None:
            out.unavailable = prepared.unfitted_reason
            return out
        words = prepared.words_for(kind)
        verifier = prepared.verifier(words)
        adapter = adapter_for(self.settings, kind.name, prepared.departments)
        timeline = prepared.fitted
        try:
            first = await self.generate(kind, timeline, None, first_token, adapter, words, prepared)
            out.usage, out.ttft_s, out.served_model = first.usage, first.ttft_s, first.served_model
            note = first.note
            with tracing.stage("verify", {"ehrsum.note.kind": kind.name}):
                out.first = out.report = verifier.verify(note)
            if not out.report.passed and self.settings.llm_regenerations:
                out.regenerated = True
                again = await self.generate(
                    kind, timeline, out.report.feedback(), None, adapter, words, prepared
                )
                out.usage += again.usage
                note = again.note
                with tracing.stage("verify", {"ehrsum.note.kind": kind.name}):
                    out.report = verifier.verify(note)
        except LlmPermanentError as exc:
            out.unavailable = str(exc)
            out.served_model = out.served_model or getattr(exc, "model", None)
            return out
        out.note, out.dropped = without_failing(note, out.report)
        if not out.note.sections and not out.note.flags:
            removed = f"{out.dropped} statement{'' if out.dropped == 1 else 's'} removed"
            why = out.report.summary()
            out.unavailable = f"nothing the model wrote passed verification ({removed}: {why})"
        return out

    async def propose_complaint(self, text: str) -> dict[str, Any]:
        """The model's answer: which listed complaint (or none) a complaint as written names."""
        completion = await self.llm.complete_json(
            proposal_messages(text), proposal_schema(), name="complaint_mapping", max_tokens=64
        )
        return completion.content

    async def complaint_proposals(self, prepared: PreparedRecord) -> list[Flag]:
        """The model's reading of each complaint the lexicon could not map, as info flags of the model's
        (never a level); none when the model cannot answer, which the log says without the complaint."""
        proposals = []
        for flag in prepared.rules:
            text = flag.complaint if isinstance(flag, TriageFlag) else None
            if flag.title not in UNMAPPED_TITLES or not text or not any(c.isalpha() for c in text):
                continue  # a complaint with no letters has nothing to read
            try:
                answer = await self.propose_complaint(text)
            except LlmError as exc:
                log.warning("no complaint proposal for %s: %s", flag.citations, type(exc).__name__)
                continue
            proposal = proposal_flag(text, flag.citations, answer)
            if proposal is not None:
                proposals.append(proposal)
        return proposals
