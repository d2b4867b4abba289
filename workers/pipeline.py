"""The one data path: fetch → condense → generate → verify → write back."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from clinical_notes import prompts
from clinical_notes.budget import fit_budget
from clinical_notes.kinds import NoteDraft, NoteKind, get_kind, note_schema
from clinical_notes.render import render_markdown
from clinical_notes.timeline import ClinicalTimeline
from clinical_notes.timeline_text import render_timeline
from clinical_notes.tokens import TokenCounter, token_counter
from clinical_notes.triage import merge_flags, rule_flags
from clinical_notes.verifier import VerificationReport, Verifier, without_failing
from fhir_adapters.client import FhirClient
from fhir_adapters.condense import condense
from fhir_adapters.record import RECORD_TYPES, PatientRecord, fetch_record
from fhir_adapters.resources import preload_models
from fhir_adapters.writeback import DraftDocument, ModelDevice, draft_identifier, find_draft, write_draft
from services.core.errors import InputError, LlmPermanentError
from services.core.settings import Settings
from workers.llm_client import LlmClient, LlmOutputError

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
    report: VerificationReport | None = None
    verification: dict[str, Any] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class RunResult:
    """The outcome of one pipeline run, with per-stage wall times in seconds."""

    patient_id: str
    results: list[KindResult] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Add the wall time of the block to a stage."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - started


def warm_up(settings: Settings) -> None:
    """Load the served model's tokenizer and the FHIR model classes a record needs (once per process)."""
    token_counter(settings.tokenizer_path)
    preload_models(RECORD_TYPES)


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

    def fit(self, timeline: ClinicalTimeline, kind: NoteKind) -> ClinicalTimeline:
        """The timeline fitted to this kind's prompt budget; InputError when must-keep facts overflow it."""
        budget = self.prompt_budget(kind)
        fitted = fit_budget(timeline, budget, self.counter)
        if fitted.tokens is not None and fitted.tokens > budget:
            raise InputError(
                f"{timeline.patient.ref}: the facts that are never dropped need {fitted.tokens} tokens, "
                f"over the prompt budget of {budget}; raise EHRSUM_LLM_CONTEXT_TOKENS"
            )
        return fitted

    async def generate(
        self, kind: NoteKind, timeline: ClinicalTimeline, feedback: str | None = None
    ) -> tuple[NoteDraft, int, int]:
        """Ask the model for a note; one retry when the answer does not fit the schema."""
        keys = timeline.citation_keys()
        schema = note_schema(
            kind,
            list(keys),
            max_statements=self.settings.note_max_statements,
            max_chars=self.settings.statement_max_chars,
        )
        text = render_timeline(timeline)
        problem: str | None = None
        for attempt in range(2):
            try:
                completion = await self.llm.complete_json(
                    prompts.messages(kind, text, problem or feedback),
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
                problem = str(exc).splitlines()[0][:200]
                log.warning("unusable model answer (attempt %d): %s", attempt + 1, type(exc).__name__)
        raise LlmPermanentError(f"model output did not fit the {kind.name} schema after a retry: {problem}")

    async def draft(
        self, kind: NoteKind, record: PatientRecord, full: ClinicalTimeline, result: RunResult
    ) -> KindResult:
        """Generate, verify (regenerating once with the violations), keep only what passed, merge rules."""
        outcome = KindResult(kind=kind.name)
        with result.timed("condense"):
            timeline = self.fit(full, kind)
        verifier = Verifier(record, prompt_refs=set(timeline.refs()))
        with result.timed("generate"):
            note, outcome.prompt_tokens, outcome.completion_tokens = await self.generate(kind, timeline)
        with result.timed("verify"):
            report = first = verifier.verify(note)
        if not report.passed:
            with result.timed("generate"):
                note, prompt_tokens, completion_tokens = await self.generate(
                    kind, timeline, report.feedback()
                )
            outcome.prompt_tokens += prompt_tokens
            outcome.completion_tokens += completion_tokens
            with result.timed("verify"):
                report = verifier.verify(note)
        kept, dropped = without_failing(note, report)
        if kind.flags:
            rules, score = rule_flags(full)
            kept.flags = merge_flags(rules, kept.flags)
            outcome.verification["news2"] = score.score
        if not kept.sections and not kept.flags:
            raise LlmPermanentError(f"no statement of the {kind.name} draft passed verification")
        outcome.report = report
        outcome.verification |= {
            "status": "verified" if report.passed else "partially_verified",
            "statements_checked": report.statements,
            "dropped": dropped,
            "violations_first_answer": first.counts(),
            "violations_final_answer": report.counts(),
            "regenerated": not first.passed,
        }
        outcome.note = kept
        outcome.markdown = render_markdown(kept, kind, full.sources(), outcome.verification)
        return outcome

    async def run(self, record: PatientRecord, kinds: list[str], *, write: bool) -> RunResult:
        """Generate every kind for a fetched record, writing drafts back when asked."""
        result = RunResult(record.patient_id)
        digest = record.digest()
        with result.timed("condense"):
            full = condense(record)
        for name in kinds:
            kind = get_kind(name)
            identifier = draft_identifier(record.patient_id, name, digest)
            if write and self.fhir is not None:
                existing = await find_draft(self.fhir, identifier)
                if existing:
                    result.results.append(
                        KindResult(kind=name, draft_ref=existing)
                    )  # written by an earlier try
                    continue
            outcome = await self.draft(kind, record, full, result)
            if write and self.fhir is not None and outcome.note is not None:
                with result.timed("write"):
                    written = await write_draft(
                        self.fhir, self.document(record, kind, identifier, full, outcome)
                    )
                outcome.draft_ref, outcome.created = written.draft_ref, written.created
            result.results.append(outcome)
        return result

    def document(
        self,
        record: PatientRecord,
        kind: NoteKind,
        identifier: str,
        full: ClinicalTimeline,
        outcome: KindResult,
    ) -> DraftDocument:
        """The write-back input for one verified draft."""
        assert outcome.note is not None and outcome.markdown is not None
        latest = full.encounters[0] if full.encounters else None
        return DraftDocument(
            patient_id=record.patient_id,
            kind=kind.name,
            loinc_code=kind.loinc_code,
            loinc_display=kind.loinc_display,
            title=kind.title,
            markdown=outcome.markdown,
            structured={**outcome.note.model_dump(), "verification": outcome.verification},
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
        )

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
