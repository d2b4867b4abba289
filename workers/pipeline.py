"""The one data path: fetch → condense → generate → check → write back."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from pydantic import ValidationError

from fhir_adapters.budget import fit_budget
from fhir_adapters.client import FhirClient
from fhir_adapters.condense import condense
from fhir_adapters.record import PatientRecord, fetch_record
from fhir_adapters.timeline import ClinicalTimeline
from fhir_adapters.timeline_text import render_timeline
from fhir_adapters.tokens import TokenCounter, token_counter
from fhir_adapters.writeback import DraftDocument, ModelDevice, draft_identifier, find_draft, write_draft
from services.core.errors import InputError, LlmPermanentError
from services.core.settings import Settings
from workers import prompts
from workers.llm_client import LlmClient, LlmOutputError
from workers.notes import NoteDraft, NoteKind, get_kind, note_schema
from workers.render import render_markdown

log = logging.getLogger(__name__)
TEMPLATE_MARGIN_TOKENS = 48  # chat-template control tokens and rounding


@dataclass
class KindResult:
    """The outcome of one note kind."""

    kind: str
    draft_ref: str | None = None
    created: bool = False
    note: NoteDraft | None = None
    markdown: str | None = None
    dropped_statements: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class RunResult:
    """The outcome of one pipeline run, with per-stage wall times in seconds."""

    patient_id: str
    results: list[KindResult] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


class Pipeline:
    """Summarizes patients; holds the clients and settings of one run."""

    def __init__(self, settings: Settings, *, llm: LlmClient, fhir: FhirClient | None = None):
        self.settings = settings
        self.llm = llm
        self.fhir = fhir
        self.counter: TokenCounter = token_counter(settings.tokenizer_path)

    def prompt_budget(self, kind: NoteKind) -> int:
        """Tokens left for the timeline once the system prompt, wrapper and answer are reserved."""
        fixed = self.counter.count(prompts.system_prompt(kind) + prompts.user_prompt(""))
        s = self.settings
        return s.llm_context_tokens - s.llm_max_output_tokens - fixed - TEMPLATE_MARGIN_TOKENS

    def timeline(self, record: PatientRecord, kind: NoteKind) -> ClinicalTimeline:
        """The record condensed and fitted to this kind's prompt budget; InputError when it cannot fit."""
        budget = self.prompt_budget(kind)
        fitted = fit_budget(condense(record), budget, self.counter)
        if fitted.tokens is not None and fitted.tokens > budget:
            raise InputError(
                f"Patient/{record.patient_id}: the facts that are never dropped need {fitted.tokens} tokens, "
                f"over the prompt budget of {budget}; raise EHRSUM_LLM_CONTEXT_TOKENS"
            )
        return fitted

    async def generate(self, kind: NoteKind, timeline: ClinicalTimeline) -> tuple[NoteDraft, int, int]:
        """Ask the model for a note; one retry with feedback when the answer does not fit the schema."""
        keys = timeline.citation_keys()
        schema = note_schema(
            kind,
            list(keys),
            max_statements=self.settings.note_max_statements,
            max_chars=self.settings.statement_max_chars,
        )
        text = render_timeline(timeline)
        feedback: str | None = None
        for attempt in range(2):
            try:
                completion = await self.llm.complete_json(
                    prompts.messages(kind, text, feedback),
                    schema,
                    name=f"{kind.name}_note",
                    max_tokens=self.settings.llm_max_output_tokens,
                    temperature=self.settings.llm_temperature,
                )
                note = NoteDraft.model_validate(completion.content)
                if note.kind != kind.name:
                    raise LlmOutputError(f"answer is a {note.kind!r} note")
                return note.with_citations(keys), completion.prompt_tokens, completion.completion_tokens
            except (LlmOutputError, ValidationError) as exc:
                feedback = str(exc).splitlines()[0][:200]
                log.warning("unusable model answer (attempt %d): %s", attempt + 1, type(exc).__name__)
        raise LlmPermanentError(f"model output did not fit the {kind.name} schema after a retry: {feedback}")

    async def run(self, record: PatientRecord, kinds: list[str], *, write: bool) -> RunResult:
        """Generate every kind for a fetched record, writing drafts back when asked."""
        result = RunResult(record.patient_id)
        digest = record.digest()
        for name in kinds:
            kind = get_kind(name)
            outcome = KindResult(kind=name)
            identifier = draft_identifier(record.patient_id, name, digest)
            if write and self.fhir is not None:
                outcome.draft_ref = await find_draft(self.fhir, identifier)
                if outcome.draft_ref:
                    result.results.append(outcome)  # an earlier attempt already wrote it
                    continue
            started = time.perf_counter()
            timeline = self.timeline(record, kind)
            result.timings["condense"] = result.timings.get("condense", 0.0) + time.perf_counter() - started
            started = time.perf_counter()
            note, outcome.prompt_tokens, outcome.completion_tokens = await self.generate(kind, timeline)
            result.timings["generate"] = result.timings.get("generate", 0.0) + time.perf_counter() - started
            outcome.note, outcome.dropped_statements = keep_grounded(note, record)
            sources = timeline.sources()
            outcome.markdown = render_markdown(outcome.note, kind, sources)
            if write and self.fhir is not None:
                started = time.perf_counter()
                latest = timeline.encounters[0] if timeline.encounters else None
                written = await write_draft(
                    self.fhir,
                    DraftDocument(
                        patient_id=record.patient_id,
                        kind=name,
                        loinc_code=kind.loinc_code,
                        loinc_display=kind.loinc_display,
                        title=kind.title,
                        markdown=outcome.markdown,
                        structured=outcome.note.model_dump(),
                        cited_refs=outcome.note.cited(),
                        identifier=identifier,
                        device=ModelDevice(
                            self.settings.model_device_name,
                            self.settings.model_version,
                            self.settings.model_weights_digest,
                        ),
                        encounter_ref=latest.ref if latest else None,
                        period_start=latest.start if latest else None,
                        period_end=latest.end if latest else None,
                    ),
                )
                outcome.draft_ref, outcome.created = written.draft_ref, written.created
                result.timings["write"] = result.timings.get("write", 0.0) + time.perf_counter() - started
            result.results.append(outcome)
        return result

    async def summarize(self, patient_id: str, kinds: list[str], *, write: bool = True) -> RunResult:
        """Fetch a patient's record from the FHIR server and run every kind."""
        if self.fhir is None:
            raise RuntimeError("Pipeline.summarize needs a FHIR client")
        started = time.perf_counter()
        record = await fetch_record(self.fhir, patient_id)
        fetch_s = time.perf_counter() - started
        result = await self.run(record, kinds, write=write)
        result.timings["fetch"] = fetch_s
        return result


def keep_grounded(note: NoteDraft, record: PatientRecord) -> tuple[NoteDraft, int]:
    """Drop statements whose citations are missing or do not resolve into the record."""
    kept = note.model_copy(deep=True)
    dropped = 0
    for section in kept.sections:
        grounded = [
            s for s in section.statements if s.citations and all(c in record.resources for c in s.citations)
        ]
        dropped += len(section.statements) - len(grounded)
        section.statements = grounded
    kept.sections = [s for s in kept.sections if s.statements]
    if not kept.sections:
        raise LlmPermanentError("no statement of the model's answer cites the record")
    return kept, dropped
