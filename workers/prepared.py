"""A fetched record made ready for every kind of one job: condensed once, fitted once, rules run once."""

from __future__ import annotations

from dataclasses import dataclass, field

from clinical_notes import prompts
from clinical_notes.attachments import ImageAttachment, image_keys
from clinical_notes.budget import fit_budget
from clinical_notes.discharge import draft_language
from clinical_notes.draft import Flag
from clinical_notes.evidence import EvidenceSource
from clinical_notes.guidelines import Library, WithGuidelines, attach
from clinical_notes.kinds import NoteKind
from clinical_notes.language import Wording, wording
from clinical_notes.rules import rule_flags
from clinical_notes.timeline import ClinicalTimeline
from clinical_notes.tokens import TokenCounter
from clinical_notes.verifier import Verifier, flag_backing
from fhir_adapters.client import FhirClient
from fhir_adapters.condense import condense
from fhir_adapters.departments import departments
from fhir_adapters.evidence import RecordEvidence
from fhir_adapters.guidelines import library_for, load_library, server_passages
from fhir_adapters.images import record_images
from fhir_adapters.record import PatientRecord
from services.core.errors import InputError
from services.core.model_profiles import get_profile
from services.core.settings import Language, Settings, TriageScale
from workers.model_routing import language_for, scale_for
from workers.transcripts import Visit, fit_turns

TEMPLATE_MARGIN_TOKENS = 48  # chat-template control tokens and rounding


@dataclass
class PreparedRecord:
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
    visit: Visit | None = None

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

    def verifier(self, words: Wording | None = None, also_shown: set[str] | None = None) -> Verifier:
        """A verifier knowing what the model saw (the prompt's timeline and images, and `also_shown`), what
        can back a flag, and the draft's language."""
        shown = set(self.fitted.refs()) | set(self.image_keys.values()) if self.fitted is not None else set()
        shown |= also_shown or set()
        evidence: EvidenceSource = self.evidence
        if self.visit is not None:
            shown |= set(self.visit.keys().values())
            evidence = self.visit.evidence(self.evidence)
        backing = flag_backing(self.full, self.rules)
        return Verifier(evidence, prompt_refs=shown, backing=backing, wording=words or self.words)


def prompt_budget(settings: Settings, counter: TokenCounter) -> int:
    """Tokens left for the timeline once the system text, the longest task and the answer are reserved."""
    fixed = counter.count(prompts.fixed_text())
    return settings.llm_context_tokens - settings.llm_max_output_tokens - fixed - TEMPLATE_MARGIN_TOKENS


def fit(
    settings: Settings, counter: TokenCounter, timeline: ClinicalTimeline, reserve: int = 0
) -> ClinicalTimeline:
    """The timeline fitted to the prompt budget less `reserve` tokens (images); InputError when must-keep
    facts overflow it."""
    budget = prompt_budget(settings, counter) - reserve
    fitted = fit_budget(timeline, budget, counter)
    if fitted.tokens is not None and fitted.tokens > budget:
        raise InputError(
            f"the facts that are never dropped need {fitted.tokens} tokens, over the prompt budget of "
            f"{budget}; raise EHRSUM_LLM_CONTEXT_TOKENS"
        )
    return fitted


def prompt_images(settings: Settings, record: PatientRecord) -> tuple[list[ImageAttachment], list[str]]:
    """The record's images for a multimodal profile (EHRSUM_LLM_IMAGES=auto), and each image left out with
    why (a text-only profile, images off, over a cap)."""
    images, left_out = record_images(record, settings.image_max_bytes, settings.image_max_count)
    if images and settings.llm_images == "off":
        return [], left_out + [f"{i.ref}: images are off (EHRSUM_LLM_IMAGES=off)" for i in images]
    if images and not get_profile(settings.llm_profile).multimodal:
        return [], left_out + [f"{i.ref}: profile {settings.llm_profile} is text-only" for i in images]
    return images, left_out


async def guideline_library(settings: Settings, fhir: FhirClient | None) -> Library | None:
    """The hospital's guideline library: the folder's documents (rebuilt when a file changes) and, when
    asked, the FHIR server's active PlanDefinitions and Libraries; None when none is configured."""
    extra = await server_passages(fhir) if settings.guidelines_fhir and fhir is not None else []
    if settings.guidelines_dir is None:
        return Library(extra) if settings.guidelines_fhir else None
    if extra:
        return load_library(settings.guidelines_dir, settings.guidelines_max_file_bytes, extra)
    return library_for(settings.guidelines_dir, settings.guidelines_max_file_bytes)


def prepare(
    settings: Settings,
    counter: TokenCounter,
    record: PatientRecord,
    library: Library | None = None,
    visit: Visit | None = None,
) -> PreparedRecord:
    """Condense once, find the guideline passages, fit once (every kind shares the fitted timeline), run
    the triage rules; the visit's transcript turns take their share of the prompt first."""
    full = condense(record, skip=visit.skip if visit else frozenset())
    if library is not None:
        attach(full, library)
    images, left_out = prompt_images(settings, record)
    reserve = len(images) * get_profile(settings.llm_profile).image_tokens
    if visit is not None:
        reserve += fit_turns(visit, prompt_budget(settings, counter) - reserve, counter)
    try:
        fitted, reason = fit(settings, counter, full, reserve), None
    except InputError as exc:
        fitted, reason = None, str(exc)
    names = departments(record)
    language, scale = language_for(settings, names), scale_for(settings, names)
    rules, score = rule_flags(full, scale)
    evidence = WithGuidelines(RecordEvidence(record, full), full.guidelines)
    prepared = PreparedRecord(
        record, full, fitted, reason, evidence, rules, score.score, names, language, scale, visit=visit
    )
    prepared.images_left_out = left_out
    if fitted is not None and images:
        prepared.images, prepared.image_keys = images, image_keys(fitted, images)
    return prepared
