"""The one data path: fetch → condense → compose → generate → verify → write back.

The record's facts are composed by code for every kind; the model writes only the synthesis. The kinds
of one job share their prompt's prefix (system text + timeline): the first kind's request goes alone and
the others follow as soon as its first token arrives, so the server prefills the timeline once and batches
the rest from its prefix cache. A weak or failing model never empties a draft: when its answer is
unusable the record's facts and the rule flags go out, marked "model synthesis unavailable" with the reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from clinical_notes import prompts
from clinical_notes.attachments import ImageAttachment, image_keys, image_parts
from clinical_notes.budget import fit_budget
from clinical_notes.complaint_proposals import proposal_flag, proposal_messages, proposal_schema
from clinical_notes.compose import compose, sections
from clinical_notes.discharge import draft_language
from clinical_notes.draft import Flag, NoteDraft, Statement
from clinical_notes.guidelines import Library, WithGuidelines, attach, is_guideline
from clinical_notes.kinds import NoteKind, get_kind
from clinical_notes.language import ENGLISH, Wording, wording
from clinical_notes.readability import readability
from clinical_notes.render import render_markdown
from clinical_notes.rules import merge_flags, rule_flags
from clinical_notes.schema import answer_to_draft, model_schema
from clinical_notes.screen import UNMAPPED_TITLES
from clinical_notes.timeline import ClinicalTimeline, Source
from clinical_notes.timeline_text import render_timeline
from clinical_notes.tokens import TokenCounter, token_counter
from clinical_notes.triage_context import TriageFlag
from clinical_notes.verifier import VerificationReport, Verifier, flag_backing, without_failing
from fhir_adapters.audit_events import RunRecord
from fhir_adapters.client import FhirClient
from fhir_adapters.condense import condense
from fhir_adapters.departments import departments
from fhir_adapters.evidence import RecordEvidence
from fhir_adapters.guidelines import library_for, load_library, server_passages
from fhir_adapters.images import record_images
from fhir_adapters.record import RECORD_TYPES, PatientRecord
from fhir_adapters.resources import preload_models
from fhir_adapters.writeback import DraftDocument, ModelDevice, draft_identifier, find_draft, write_drafts
from services.core import tracing
from services.core.errors import InputError, LlmError, LlmPermanentError
from services.core.model_profiles import get_profile
from services.core.settings import Language, Settings, TriageScale
from workers.llm_client import LlmClient, LlmOutputError
from workers.record_pull import pull_with_snapshot
from workers.routing import adapter_for, check_routes, language_for, scale_for

log = logging.getLogger(__name__)
TEMPLATE_MARGIN_TOKENS = 48  # chat-template control tokens and rounding
NO_DISCHARGE = "does not apply: no encounter in the record ended in a discharge"


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
    ttft_s: float | None = None
    served_model: str | None = None


@dataclass
class RunResult:
    """The outcome of one pipeline run, with per-stage wall times in seconds."""

    patient_id: str
    results: list[KindResult] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """A stage of this run: its span, and its wall time (with the stages run inside it) in timings."""
        with tracing.collecting(self.timings), tracing.stage(stage):
            yield


@dataclass
class Synthesis:
    """What the model wrote for one kind, after verification, or why there is nothing."""

    note: NoteDraft | None = None
    report: VerificationReport | None = None
    first: VerificationReport | None = None
    dropped: int = 0
    unavailable: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_s: float | None = None
    served_model: str | None = None


@dataclass(frozen=True)
class Generated:
    """One accepted answer: the draft, its token counts and time to first token, who answered."""

    note: NoteDraft
    prompt_tokens: int
    completion_tokens: int
    ttft_s: float | None
    served_model: str | None


@dataclass
class Job:
    """Everything the kinds of one run share: the record, its timelines, evidence and rule flags."""

    record: PatientRecord
    full: ClinicalTimeline
    fitted: ClinicalTimeline | None
    unfitted_reason: str | None
    evidence: WithGuidelines
    rules: list[Flag]
    news2: int | None
    departments: list[str] = field(default_factory=list)
    language: Language = "en"
    scale: TriageScale = "esi"
    images: list[ImageAttachment] = field(default_factory=list)
    image_keys: dict[str, str] = field(default_factory=dict)
    images_left_out: list[str] = field(default_factory=list)

    @property
    def words(self) -> Wording:
        """The wording of the job's language."""
        return wording(self.language)

    def words_for(self, kind: NoteKind) -> Wording:
        """A kind's wording: the patient's preferred language for a guide written for them (when drafts are
        written in it; else the job's, and the guide says why), the job's language otherwise."""
        if kind.for_patient:
            return wording(draft_language(self.full.patient.language) or self.language)
        return self.words

    def verifier(self, words: Wording | None = None) -> Verifier:
        """A verifier knowing what the model saw, what can back a flag, and the draft's language."""
        shown = set(self.fitted.refs()) | set(self.image_keys.values()) if self.fitted is not None else set()
        backing = flag_backing(self.full, self.rules)
        return Verifier(self.evidence, prompt_refs=shown, backing=backing, wording=words or self.words)


def model_device(settings: Settings) -> ModelDevice:
    """The configured model as the Device that authors drafts."""
    return ModelDevice(settings.model_device_name, settings.model_version, settings.model_weights_digest)


def warm_up(settings: Settings) -> None:
    """Load the served model's tokenizer and the FHIR model classes a record needs (once per process)."""
    token_counter(settings.tokenizer_path)
    preload_models(RECORD_TYPES)


class Pipeline:
    """Summarizes patients; holds the clients and settings of one run."""

    def __init__(self, settings: Settings, *, llm: LlmClient, fhir: FhirClient | None = None):
        check_routes(settings)
        self.settings = settings
        self.llm = llm
        self.fhir = fhir
        self.counter: TokenCounter = token_counter(settings.tokenizer_path)

    def prompt_budget(self) -> int:
        """Tokens left for the timeline once the system text, the longest task and the answer are reserved."""
        fixed = self.counter.count(prompts.fixed_text())
        s = self.settings
        return s.llm_context_tokens - s.llm_max_output_tokens - fixed - TEMPLATE_MARGIN_TOKENS

    def fit(self, timeline: ClinicalTimeline, reserve: int = 0) -> ClinicalTimeline:
        """The timeline fitted to the prompt budget less `reserve` tokens (images); InputError when
        must-keep facts overflow it."""
        budget = self.prompt_budget() - reserve
        fitted = fit_budget(timeline, budget, self.counter)
        if fitted.tokens is not None and fitted.tokens > budget:
            raise InputError(
                f"the facts that are never dropped need {fitted.tokens} tokens, over the prompt budget of "
                f"{budget}; raise EHRSUM_LLM_CONTEXT_TOKENS"
            )
        return fitted

    async def guideline_library(self) -> Library | None:
        """The hospital's guideline library: the folder's documents (rebuilt when a file changes) and, when
        asked, the FHIR server's active PlanDefinitions and Libraries; None when none is configured."""
        s = self.settings
        extra = await server_passages(self.fhir) if s.guidelines_fhir and self.fhir is not None else []
        if s.guidelines_dir is None:
            return Library(extra) if s.guidelines_fhir else None
        if extra:
            return load_library(s.guidelines_dir, s.guidelines_max_file_bytes, extra)
        return library_for(s.guidelines_dir, s.guidelines_max_file_bytes)

    def prepare(self, record: PatientRecord, library: Library | None = None) -> Job:
        """Condense once, find the guideline passages, fit once (every kind shares the fitted timeline), run
        the triage rules."""
        full = condense(record)
        if library is not None:
            attach(full, library)
        images, left_out = self.images(record)
        profile = get_profile(self.settings.llm_profile)
        try:
            fitted, reason = self.fit(full, reserve=len(images) * profile.image_tokens), None
        except InputError as exc:
            fitted, reason = None, str(exc)
        names = departments(record)
        language, scale = language_for(self.settings, names), scale_for(self.settings, names)
        rules, score = rule_flags(full, scale)
        evidence = WithGuidelines(RecordEvidence(record), full.guidelines)
        job = Job(record, full, fitted, reason, evidence, rules, score.score, names, language, scale)
        job.images_left_out = left_out
        if fitted is not None and images:
            job.images, job.image_keys = images, image_keys(fitted, images)
        return job

    def images(self, record: PatientRecord) -> tuple[list[ImageAttachment], list[str]]:
        """The record's images for a multimodal profile (EHRSUM_LLM_IMAGES=auto), and each image left out
        with why (a text-only profile, images off, over a cap)."""
        s = self.settings
        images, left_out = record_images(record, s.image_max_bytes, s.image_max_count)
        if images and s.llm_images == "off":
            return [], left_out + [f"{i.ref}: images are off (EHRSUM_LLM_IMAGES=off)" for i in images]
        if images and not get_profile(s.llm_profile).multimodal:
            return [], left_out + [f"{i.ref}: profile {s.llm_profile} is text-only" for i in images]
        return images, left_out

    async def generate(
        self,
        kind: NoteKind,
        timeline: ClinicalTimeline,
        feedback: str | None = None,
        first_token: asyncio.Event | None = None,
        model: str | None = None,
        words: Wording = ENGLISH,
        job: Job | None = None,
    ) -> Generated:
        """The model's answer as a draft of its sections; one retry when it does not fit the schema.

        `model` names a LoRA adapter of the server (None: the base model)."""
        keys = timeline.citation_keys()
        images: list[dict[str, Any]] = []
        if job is not None and job.images:
            keys |= job.image_keys
            images = image_parts(job.images, job.image_keys)
        schema = model_schema(
            kind,
            max_statements=self.settings.note_max_statements,
            max_chars=self.settings.statement_max_chars,
        )
        text = render_timeline(timeline)
        problem: str | None = None
        served: str | None = None
        for attempt in range(2):
            try:
                completion = await self.llm.complete_json(
                    prompts.messages(kind, text, problem or feedback, words, images),
                    schema,
                    name=f"{kind.name}_synthesis",
                    max_tokens=self.settings.llm_max_output_tokens,
                    temperature=self.settings.llm_temperature,
                    first_token=first_token,
                    model=model,
                )
                served = completion.model
                note = answer_to_draft(kind, completion.content).with_citations(keys)
                return Generated(
                    note,
                    completion.prompt_tokens,
                    completion.completion_tokens,
                    completion.ttft_s,
                    completion.model,
                )
            except (LlmOutputError, ValidationError) as exc:
                problem = str(exc).splitlines()[0][:200]
                served = getattr(exc, "model", None) or served
                log.warning("unusable model answer (attempt %d): %s", attempt + 1, type(exc).__name__)
        raise LlmOutputError(
            f"the answer did not fit the {kind.name} schema after a retry: {problem}", served
        )

    async def synthesize(self, kind: NoteKind, job: Job, first_token: asyncio.Event | None) -> Synthesis:
        """Generate, verify (regenerating once with the violations), keep what passed; never raise for
        an unusable answer (a transient LLM error still propagates, so the job is retried)."""
        out = Synthesis()
        if job.fitted is None:
            out.unavailable = job.unfitted_reason
            return out
        words = job.words_for(kind)
        verifier = job.verifier(words)
        adapter = adapter_for(self.settings, kind.name, job.departments)
        try:
            first = await self.generate(
                kind, job.fitted, first_token=first_token, model=adapter, words=words, job=job
            )
            out.prompt_tokens, out.completion_tokens, out.ttft_s = (
                first.prompt_tokens,
                first.completion_tokens,
                first.ttft_s,
            )
            out.served_model, note = first.served_model, first.note
            with tracing.stage("verify", {"ehrsum.note.kind": kind.name}):
                out.first = out.report = verifier.verify(note)
            if not out.report.passed:
                again = await self.generate(
                    kind, job.fitted, out.report.feedback(), model=adapter, words=words, job=job
                )
                out.prompt_tokens += again.prompt_tokens
                out.completion_tokens += again.completion_tokens
                note = again.note
                with tracing.stage("verify", {"ehrsum.note.kind": kind.name}):
                    out.report = verifier.verify(note)
        except LlmPermanentError as exc:
            out.unavailable = str(exc)
            out.served_model = out.served_model or getattr(exc, "model", None)
            return out
        out.note, out.dropped = without_failing(note, out.report)
        if not out.note.sections and not out.note.flags:
            out.unavailable = f"nothing the model wrote passed verification ({out.report.summary()})"
        return out

    async def propose_complaint(self, text: str) -> dict[str, Any]:
        """The model's answer: which listed complaint (or none) a complaint as written names."""
        completion = await self.llm.complete_json(
            proposal_messages(text), proposal_schema(), name="complaint_mapping", max_tokens=64
        )
        return completion.content

    async def complaint_proposals(self, job: Job) -> list[Flag]:
        """The model's reading of each complaint the lexicon could not map, as info flags of the model's
        (never a level); none when the model cannot answer, which the log says without the complaint."""
        proposals = []
        for flag in job.rules:
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

    async def draft(self, kind: NoteKind, job: Job, first_token: asyncio.Event | None = None) -> KindResult:
        """One kind's draft (a span of its own): the record's facts, the model's verified synthesis, the
        rule flags."""
        attributes = {"ehrsum.note.kind": kind.name}
        with tracing.span(f"generate {kind.name}", attributes) as current:
            outcome = await self._draft(kind, job, first_token)
            current.set_attribute("ehrsum.note.synthesis", outcome.verification.get("synthesis", ""))
            return outcome

    async def _draft(self, kind: NoteKind, job: Job, first_token: asyncio.Event | None) -> KindResult:
        attributes = {"ehrsum.note.kind": kind.name}
        if kind.for_patient and job.full.discharge is None:
            if first_token is not None:
                first_token.set()
            return KindResult(kind=kind.name, verification={"not_applicable": NO_DISCHARGE})
        words = job.words_for(kind)
        try:
            synthesis = await self.synthesize(kind, job, first_token)
        finally:
            if first_token is not None:
                first_token.set()
        model: dict[str, list[Statement]] = {}
        for section in synthesis.note.sections if synthesis.note else []:
            model[section.title] = section.statements
        flags = synthesis.note.flags if synthesis.note else []
        # A proposal cites the complaint a rule flag already cites: it joins after the merge, never folded.
        proposals = await self.complaint_proposals(job) if kind.flags else []
        with tracing.stage("compose", attributes):
            composed = sections(kind, compose(kind, job.full, words, job.scale), model)
        draft = NoteDraft(
            kind=kind.name,
            sections=composed,
            flags=[*merge_flags(job.rules, flags), *proposals] if kind.flags else [],
            synthesis_unavailable=synthesis.unavailable,
        )
        with tracing.stage("verify", attributes):
            final = job.verifier(words).verify(draft)
        kept, record_dropped = without_failing(draft, final)
        if record_dropped:
            # A composed statement that fails the verifier is our bug; it is left out rather than written.
            log.error(
                "composed statements failed verification: %s", final.counts(), extra={"kind": kind.name}
            )
        outcome = KindResult(
            kind=kind.name,
            note=kept,
            report=synthesis.report,
            prompt_tokens=synthesis.prompt_tokens,
            completion_tokens=synthesis.completion_tokens,
            ttft_s=synthesis.ttft_s,
            served_model=synthesis.served_model,
        )
        authors = [s.author for section in kept.sections for s in section.statements]
        outcome.verification = {
            "status": "verified"
            if synthesis.report is None or synthesis.report.passed
            else "partially_verified",
            "statements_checked": final.statements,
            "record_statements": authors.count("record"),
            "model_statements": authors.count("model"),
            "dropped": synthesis.dropped,
            "record_statements_dropped": record_dropped,
            "synthesis": "unavailable" if synthesis.unavailable else "model",
            "violations_first_answer": synthesis.first.counts() if synthesis.first else {},
            "violations_final_answer": synthesis.report.counts() if synthesis.report else {},
            "regenerated": bool(synthesis.first and not synthesis.first.passed),
            "served_model": synthesis.served_model,
            "language": words.code,
            "triage_scale": job.scale if kind.flags else None,
            "images": {"sent": [i.ref for i in job.images], "left_out": job.images_left_out},
        }
        if synthesis.unavailable:
            outcome.verification["synthesis_unavailable"] = synthesis.unavailable
        if kind.flags:
            outcome.verification["news2"] = job.news2
        if kind.for_patient:
            texts = [s.text for section in kept.sections for s in section.statements]
            outcome.verification["readability"] = readability(texts, words.code)
        sources = job.full.source_labels() | {i.ref: Source(i.label, i.date) for i in job.images}
        outcome.markdown = render_markdown(kept, kind, sources, outcome.verification, words)
        return outcome

    async def draft_all(self, kinds: list[NoteKind], job: Job) -> list[KindResult]:
        """Every kind's draft: the first alone until its first token, then the rest together."""
        if not kinds:
            return []
        started = asyncio.Event()
        first = asyncio.create_task(self.draft(kinds[0], job, started))
        await started.wait()
        rest = await asyncio.gather(*(self.draft(kind, job) for kind in kinds[1:]))
        return [await first, *rest]

    async def run(
        self,
        record: PatientRecord,
        kinds: list[str],
        *,
        write: bool,
        job_id: str | None = None,
        started: datetime | None = None,
    ) -> RunResult:
        """Draft every kind for a fetched record, writing drafts back when asked: the new drafts in one
        transaction with the job's AuditEvent (`job_id` given and EHRSUM_FHIR_AUDIT_EVENTS on)."""
        started = started or datetime.now(UTC)
        result = RunResult(record.patient_id)
        digest = record.digest()
        library = await self.guideline_library()
        with result.timed("condense"):
            job = self.prepare(record, library)
        identifiers = {name: draft_identifier(record.patient_id, name, digest) for name in kinds}
        existing: dict[str, str] = {}
        if write and self.fhir is not None:
            for name, identifier in identifiers.items():
                found = await find_draft(self.fhir, identifier)
                if found:
                    existing[name] = found  # written by an earlier try
        todo = [get_kind(name) for name in kinds if name not in existing]
        with result.timed("generate"):
            drafted = {r.kind: r for r in await self.draft_all(todo, job)}
        new = [drafted[kind.name] for kind in todo if drafted[kind.name].note is not None]
        if write and self.fhir is not None and new:
            with result.timed("write"):
                documents = [
                    self.document(record, get_kind(o.kind), identifiers[o.kind], job, o) for o in new
                ]
                run = self.run_record(job_id, record, job, kinds, existing, drafted, started)
                for outcome, written in zip(new, await write_drafts(self.fhir, documents, run), strict=True):
                    outcome.draft_ref, outcome.created = written.draft_ref, written.created
        for name in kinds:
            result.results.append(drafted.get(name) or KindResult(kind=name, draft_ref=existing[name]))
        return result

    def run_record(
        self,
        job_id: str | None,
        record: PatientRecord,
        job: Job,
        kinds: list[str],
        existing: dict[str, str],
        drafted: dict[str, KindResult],
        started: datetime,
    ) -> RunRecord | None:
        """What the job's AuditEvent records (None without a job, or with AuditEvents off)."""
        if job_id is None or not self.settings.fhir_audit_events:
            return None
        unavailable = sorted(
            k for k, r in drafted.items() if r.verification.get("synthesis") == "unavailable"
        )
        detail = f"model synthesis unavailable: {', '.join(unavailable)}" if unavailable else None
        device = model_device(self.settings)
        latest = job.full.encounters[0] if job.full.encounters else None
        return RunRecord(
            job_id=job_id,
            patient_id=record.patient_id,
            device={"display": device.name},  # the transaction names the Device it writes
            outcome="4" if unavailable else "0",
            started=started,
            drafts=list(existing.values()),
            encounter_ref=latest.ref if latest else None,
            kinds=kinds,
            detail=detail,
            trace_id=tracing.current_trace_id(),
        )

    def document(
        self,
        record: PatientRecord,
        kind: NoteKind,
        identifier: str,
        job: Job,
        outcome: KindResult,
    ) -> DraftDocument:
        """The write-back input for one verified draft."""
        assert outcome.note is not None and outcome.markdown is not None
        latest = job.full.encounters[0] if job.full.encounters else None
        return DraftDocument(
            patient_id=record.patient_id,
            kind=kind.name,
            loinc_code=kind.loinc_code,
            loinc_display=kind.loinc_display,
            title=job.words_for(kind).title(kind.name, kind.title),
            markdown=outcome.markdown,
            structured={
                **outcome.note.model_dump(),
                "verification": outcome.verification,
                "guidelines": [p.model_dump() for p in job.full.guidelines if p.ref in outcome.note.cited()],
            },
            cited_refs=[ref for ref in outcome.note.cited() if not is_guideline(ref)],
            identifier=identifier,
            device=model_device(self.settings),
            encounter_ref=latest.ref if latest else None,
            period_start=latest.start if latest else None,
            period_end=latest.end if latest else None,
        )

    async def summarize(
        self, patient_id: str, kinds: list[str], *, write: bool = True, job_id: str | None = None
    ) -> RunResult:
        """Fetch a patient's record from the FHIR server and run every kind."""
        if self.fhir is None:
            raise RuntimeError("Pipeline.summarize needs a FHIR client")
        started = datetime.now(UTC)
        fetched = RunResult(patient_id)
        with fetched.timed("fetch"):
            record = (await pull_with_snapshot(self.fhir, patient_id)).record
        result = await self.run(record, kinds, write=write, job_id=job_id, started=started)
        result.timings["fetch"] = fetched.timings["fetch"]
        return result
