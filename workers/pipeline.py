"""The one data path: fetch → condense → compose → generate → verify → write back.

The record's facts are composed by code for every kind; the model writes only the synthesis. The kinds
of one job share their prompt's prefix (system text + timeline): the first kind's request goes alone and
the others follow as soon as its first token arrives, so the server prefills the timeline once and batches
the rest from its prefix cache. A weak or failing model never empties a draft: when its answer is
unusable the record's facts and the rule flags go out, marked "model synthesis unavailable" with the reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from clinical_notes.kinds import NoteKind, get_kind
from clinical_notes.tokens import TokenCounter, token_counter
from fhir_adapters.client import FhirClient
from fhir_adapters.record import RECORD_TYPES, PatientRecord
from fhir_adapters.resources import preload_models, ref_of
from fhir_adapters.review_drafts import stored_verification
from fhir_adapters.writeback import draft_identifier, find_draft, write_drafts
from services.core import tracing
from services.core.settings import Settings
from services.core.usage import Usage
from workers.assembly import JobContext, KindResult, assemble, draft_document, run_record
from workers.generation import Synthesizer
from workers.llm_client import LlmClient
from workers.model_routing import check_routes
from workers.prepared import PreparedRecord, guideline_library, prepare
from workers.record_pull import keep_snapshot, pull_for_job
from workers.transcripts import load_visit

NO_DISCHARGE = "does not apply: no encounter in the record ended in a discharge"


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

    @property
    def usage(self) -> Usage:
        """The tokens every kind's model calls cost."""
        return sum((r.usage for r in self.results), Usage())


def warm_up(settings: Settings) -> None:
    """Load the served model's tokenizer and the FHIR model classes a record needs (once per process)."""
    token_counter(settings.tokenizer_path)
    preload_models(RECORD_TYPES)


class Pipeline:
    """Summarizes patients; holds the clients and settings of one run."""

    def __init__(self, settings: Settings, *, llm: LlmClient, fhir: FhirClient | None = None):
        check_routes(settings)
        self.settings = settings
        self.fhir = fhir
        self.counter: TokenCounter = token_counter(settings.tokenizer_path)
        self.synthesizer = Synthesizer(settings, llm)

    async def prepare(
        self, record: PatientRecord, kinds: list[str] | None = None, encounter: str | None = None
    ) -> PreparedRecord:
        """The record condensed, fitted and screened once for every kind of the run, with the passages of
        the hospital's guideline library that match it and, for a SOAP note, the transcript of `encounter`
        (the newest when None)."""
        library = await guideline_library(self.settings, self.fhir)
        visit = None
        if kinds and "soap" in kinds:
            visit = await load_visit(record, self.settings, encounter=encounter, client=self.fhir)
        return prepare(self.settings, self.counter, record, library, visit)

    async def draft(
        self, kind: NoteKind, prepared: PreparedRecord, first_token: asyncio.Event | None = None
    ) -> KindResult:
        """One kind's draft (a span of its own): the record's facts, the model's verified synthesis, the
        rule flags."""
        with tracing.span(f"generate {kind.name}", {"ehrsum.note.kind": kind.name}) as current:
            outcome = await self._draft(kind, prepared, first_token)
            synthesis = outcome.verification.synthesis if outcome.verification else ""
            current.set_attribute("ehrsum.note.synthesis", synthesis)
            return outcome

    async def _draft(
        self, kind: NoteKind, prepared: PreparedRecord, first_token: asyncio.Event | None
    ) -> KindResult:
        if kind.for_patient and prepared.full.discharge is None:
            if first_token is not None:
                first_token.set()
            return KindResult(kind=kind.name, not_applicable=NO_DISCHARGE)
        try:
            synthesis = await self.synthesizer.synthesize(kind, prepared, first_token)
        finally:
            if first_token is not None:
                first_token.set()
        proposals = await self.synthesizer.complaint_proposals(prepared) if kind.flags else []
        return assemble(kind, prepared, synthesis, proposals)

    async def draft_all(self, kinds: list[NoteKind], prepared: PreparedRecord) -> list[KindResult]:
        """Every kind's draft: the first alone until its first token, then the rest together."""
        if not kinds:
            return []
        started = asyncio.Event()
        first = asyncio.create_task(self.draft(kinds[0], prepared, started))
        await started.wait()
        rest = await asyncio.gather(*(self.draft(kind, prepared) for kind in kinds[1:]))
        return [await first, *rest]

    async def run(
        self, record: PatientRecord, kinds: list[str], *, write: bool, encounter: str | None = None
    ) -> RunResult:
        """Draft every kind for a fetched record, writing drafts back when asked; a SOAP note is for
        `encounter` (the newest when None) and composes from its transcript."""
        result = RunResult(record.patient_id)
        job = JobContext(encounter=encounter)
        await self._draft_and_write(result, lambda: record, record.digest(), kinds, job, write=write)
        return result

    async def summarize(
        self,
        patient_id: str,
        kinds: list[str],
        *,
        write: bool = True,
        encounter: str | None = None,
        job_id: str | None = None,
        started: datetime | None = None,
    ) -> RunResult:
        """Fetch a patient's record (only what changed since the last job) and run every kind. The record
        is parsed and condensed once, and not at all when nothing changed and every draft exists."""
        if self.fhir is None:
            raise RuntimeError("Pipeline.summarize needs a FHIR client")
        result = RunResult(patient_id)
        with result.timed("fetch"):
            pulled = await pull_for_job(self.fhir, patient_id)
            digest = (pulled.snapshot.record_digest if pulled.unchanged else "") or pulled.record.digest()
        job = JobContext(encounter, job_id, started or datetime.now(UTC))
        prepared = await self._draft_and_write(
            result, lambda: pulled.record, digest, kinds, job, write=write, unchanged=pulled.unchanged
        )
        with result.timed("snapshot"):
            await keep_snapshot(self.fhir.base_url, pulled, prepared.full if prepared else None)
        return result

    async def _existing(self, identifiers: dict[str, str], write: bool) -> dict[str, KindResult]:
        """The drafts an earlier try of the same record already wrote, by kind, with the verification
        each carries (the job's report shows it as if this try had drafted it)."""
        existing: dict[str, KindResult] = {}
        if write and self.fhir is not None:
            for name, identifier in identifiers.items():
                found = await find_draft(self.fhir, identifier)
                if found:
                    existing[name] = KindResult(
                        kind=name, draft_ref=ref_of(found), stored_verification=stored_verification(found)
                    )
        return existing

    async def _draft_and_write(
        self,
        result: RunResult,
        record: Callable[[], PatientRecord],
        digest: str,
        kinds: list[str],
        job: JobContext,
        *,
        write: bool,
        unchanged: bool = False,
    ) -> PreparedRecord | None:
        """Draft the kinds not written yet for the record of `digest` and write them; the prepared record,
        unless nothing needed it (`unchanged`: the record is the snapshot's, so it wants no new digest)."""
        # A SOAP note asked for one encounter is that encounter's: another encounter's note is another draft.
        scoped = {"soap": f"{digest}|Encounter/{job.encounter}"} if job.encounter else {}
        identifiers = {
            name: draft_identifier(result.patient_id, name, scoped.get(name, digest)) for name in kinds
        }
        existing = await self._existing(identifiers, write)
        todo = [get_kind(name) for name in kinds if name not in existing]
        prepared: PreparedRecord | None = None
        if todo or not unchanged:
            with result.timed("condense"):
                prepared = await self.prepare(record(), kinds, job.encounter)
        drafted: dict[str, KindResult] = {}
        if prepared is not None:
            with result.timed("generate"):
                drafted = {r.kind: r for r in await self.draft_all(todo, prepared)}
        new = [drafted[kind.name] for kind in todo if drafted[kind.name].note is not None]
        if write and self.fhir is not None and new and prepared is not None:
            with result.timed("write"):
                documents = [
                    draft_document(self.settings, get_kind(o.kind), identifiers[o.kind], prepared, o)
                    for o in new
                ]
                run = run_record(self.settings, job, prepared, kinds, existing, drafted)
                for outcome, written in zip(new, await write_drafts(self.fhir, documents, run), strict=True):
                    outcome.draft_ref, outcome.created = written.draft_ref, written.created
        for name in kinds:
            result.results.append(drafted.get(name) or existing[name])
        return prepared
