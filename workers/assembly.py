"""One kind's draft put together: the record's composed facts, the model's verified synthesis and the
rule flags, checked once more as a whole, with its verification block and markdown."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from clinical_notes.compose import compose, sections
from clinical_notes.draft import DraftVerification, Flag, ImagesUsed, NoteDraft, Statement
from clinical_notes.guidelines import is_guideline
from clinical_notes.kinds import NoteKind, get_kind
from clinical_notes.readability import readability
from clinical_notes.render import render_markdown
from clinical_notes.rules import merge_flags
from clinical_notes.timeline import Source
from clinical_notes.transcript import TURN_FRAGMENT
from clinical_notes.transcript_compose import with_statements
from clinical_notes.verifier import VerificationReport, without_failing
from fhir_adapters.audit_events import RunRecord
from fhir_adapters.writeback import DraftDocument, ModelDevice
from services.core import tracing
from services.core.settings import Settings
from services.core.usage import Usage
from workers.generation import Synthesis
from workers.prepared import PreparedRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobContext:
    """What a run is for beyond its patient and kinds: the encounter of a SOAP note, and the job (its id
    and start) that the run's AuditEvent records."""

    encounter: str | None = None
    job_id: str | None = None
    started: datetime | None = None


@dataclass
class KindResult:
    """The outcome of one note kind: its draft, how it was checked, what the model cost, where it went."""

    kind: str
    draft_ref: str | None = None
    created: bool = False
    note: NoteDraft | None = None
    markdown: str | None = None
    report: VerificationReport | None = None
    verification: DraftVerification | None = None
    usage: Usage = field(default_factory=Usage)
    ttft_s: float | None = None
    served_model: str | None = None
    not_applicable: str | None = None
    stored_verification: dict[str, Any] | None = None  # of a draft an earlier try wrote, as it stored it

    def verification_json(self) -> dict[str, Any]:
        """The verification block as the draft and the job store it (why the kind does not apply to the
        record; for a draft an earlier try wrote, the block that draft carries)."""
        if self.not_applicable:
            return {"not_applicable": self.not_applicable}
        if self.verification is None:
            return dict(self.stored_verification or {})
        return self.verification.as_json(flags=get_kind(self.kind).flags)


def verification_block(
    kind: NoteKind,
    note: NoteDraft,
    final: VerificationReport,
    synthesis: Synthesis,
    prepared: PreparedRecord,
    record_dropped: int,
) -> DraftVerification:
    """The draft's verification block: what was checked, who wrote what, what was removed and why, and a
    guide's reading level."""
    words = prepared.words_for(kind)
    authors = [s.author for section in note.sections for s in section.statements]
    texts = [s.text for section in note.sections for s in section.statements]
    report, first = synthesis.report, synthesis.first
    return DraftVerification(
        status="verified" if report is None or report.passed else "partially_verified",
        statements_checked=final.statements,
        record_statements=authors.count("record"),
        model_statements=authors.count("model"),
        dropped=synthesis.dropped,
        record_statements_dropped=record_dropped,
        synthesis="unavailable" if synthesis.unavailable else "model",
        synthesis_unavailable=synthesis.unavailable,
        violations_first_answer=first.counts() if first else {},
        violations_final_answer=report.counts() if report else {},
        regenerated=synthesis.regenerated,
        served_model=synthesis.served_model,
        language=words.code,
        triage_scale=prepared.scale if kind.flags else None,
        readability=readability(texts, words.code) if kind.for_patient else None,
        transcript=prepared.visit.summary() if kind.name == "soap" and prepared.visit is not None else None,
        images=ImagesUsed(sent=[i.ref for i in prepared.images], left_out=prepared.images_left_out),
        news2=prepared.news2,
    )


def ours(note: NoteDraft) -> set[str]:
    """The locations of what code wrote: composed statements and rule flags."""
    statements = {
        f"sections[{i}].statements[{j}]"
        for i, section in enumerate(note.sections)
        for j, statement in enumerate(section.statements)
        if statement.author == "record"
    }
    return statements | {f"flags[{k}]" for k, flag in enumerate(note.flags) if flag.source == "rule"}


def assemble(
    kind: NoteKind, prepared: PreparedRecord, synthesis: Synthesis, proposals: list[Flag] | None = None
) -> KindResult:
    """The kind's draft from the record's facts, the model's synthesis, the rule flags and the model's
    proposals for complaints the lexicon could not map."""
    words = prepared.words_for(kind)
    visit = prepared.visit if kind.name == "soap" else None
    with tracing.stage("compose", {"ehrsum.note.kind": kind.name}):
        composed = compose(kind, prepared.full, words, prepared.scale)
        if visit is not None:
            composed = with_statements(composed, visit.statements())
    model: dict[str, list[Statement]] = {}
    for section in synthesis.note.sections if synthesis.note else []:
        model[section.title] = section.statements
    flags = synthesis.note.flags if synthesis.note else []
    draft = NoteDraft(
        kind=kind.name,
        sections=sections(kind, composed, model),
        # A proposal cites the complaint a rule flag already cites: it joins after the merge, never folded.
        flags=[*merge_flags(prepared.rules, flags), *(proposals or [])] if kind.flags else [],
        synthesis_unavailable=synthesis.unavailable,
    )
    # A proposal's question showed the model the complaint's own resource, which it cites.
    asked = {ref for flag in proposals or [] for ref in flag.citations}
    with tracing.stage("verify", {"ehrsum.note.kind": kind.name}):
        final = prepared.verifier(words, also_shown=asked).verify(draft)
    kept, dropped = without_failing(draft, final)
    ours_failing = ours(draft) & final.failing()
    record_dropped = len(ours_failing)
    if record_dropped:
        # A composed statement or rule flag that fails the verifier is our bug; it is left out, not written.
        # Locations and rule names only: the statements themselves are patient data.
        rules = sorted({f"{v.location}: {v.rule}" for v in final.violations if v.location in ours_failing})
        log.error("composed statements failed verification: %s", rules, extra={"kind": kind.name})
    verification = verification_block(kind, kept, final, synthesis, prepared, record_dropped)
    verification.dropped += dropped - record_dropped
    sources = prepared.full.source_labels() | {i.ref: Source(i.label, i.date) for i in prepared.images}
    sources |= visit.sources() if visit is not None else {}
    return KindResult(
        kind=kind.name,
        note=kept,
        markdown=render_markdown(kept, kind, sources, verification, words),
        report=synthesis.report,
        verification=verification,
        usage=synthesis.usage,
        ttft_s=synthesis.ttft_s,
        served_model=synthesis.served_model,
    )


def model_device(settings: Settings) -> ModelDevice:
    """The configured model as the Device that authors drafts."""
    return ModelDevice(settings.model_device_name, settings.model_version, settings.model_weights_digest)


def run_record(
    settings: Settings,
    job: JobContext,
    prepared: PreparedRecord,
    kinds: list[str],
    existing: dict[str, KindResult],
    drafted: dict[str, KindResult],
) -> RunRecord | None:
    """What the job's AuditEvent records (None outside a job, or with AuditEvents off)."""
    if job.job_id is None or not settings.fhir_audit_events:
        return None
    unavailable = sorted(
        k
        for k, r in drafted.items()
        if r.verification is not None and r.verification.synthesis == "unavailable"
    )
    latest = prepared.full.encounters[0] if prepared.full.encounters else None
    return RunRecord(
        job_id=job.job_id,
        patient_id=prepared.record.patient_id,
        device={"display": model_device(settings).name},  # the transaction names the Device it writes
        outcome="4" if unavailable else "0",
        started=job.started or datetime.now(UTC),
        drafts=[r.draft_ref for r in existing.values() if r.draft_ref],
        encounter_ref=latest.ref if latest else None,
        kinds=kinds,
        detail=f"model synthesis unavailable: {', '.join(unavailable)}" if unavailable else None,
        trace_id=tracing.current_trace_id(),
    )


def draft_document(
    settings: Settings, kind: NoteKind, identifier: str, prepared: PreparedRecord, outcome: KindResult
) -> DraftDocument:
    """The write-back input for one verified draft."""
    assert outcome.note is not None and outcome.markdown is not None and outcome.verification is not None
    latest = prepared.full.encounters[0] if prepared.full.encounters else None
    visit = prepared.visit if kind.name == "soap" else None
    if visit is not None and visit.encounter:
        latest = next((e for e in prepared.full.encounters if e.ref == visit.encounter), latest)
    return DraftDocument(
        patient_id=prepared.record.patient_id,
        kind=kind.name,
        loinc_code=kind.loinc_code,
        loinc_display=kind.loinc_display,
        title=prepared.words_for(kind).title(kind.name, kind.title),
        markdown=outcome.markdown,
        structured={
            **outcome.note.model_dump(),
            "verification": outcome.verification_json(),
            "guidelines": [p.model_dump() for p in prepared.full.guidelines if p.ref in outcome.note.cited()],
        },
        # Provenance names the transcript a turn belongs to (a reference has no turn fragment).
        cited_refs=list(
            dict.fromkeys(
                ref.partition(TURN_FRAGMENT)[0] for ref in outcome.note.cited() if not is_guideline(ref)
            )
        ),
        identifier=identifier,
        device=model_device(settings),
        encounter_ref=latest.ref if latest else None,
        period_start=latest.start if latest else None,
        period_end=latest.end if latest else None,
    )
