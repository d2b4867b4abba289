"""Deterministic checks of a draft against the fetched record: "no source, no assertion".

Every statement (and triage flag rationale) must cite resources that exist in the record (and were shown
to the model, when that is known); every number with a unit and every date in it must be found in a cited
resource; clinical statements without a citation are rejected unless they are on a small allow-list of
non-clinical phrasing; assessments must use hedged language, never a definitive new diagnosis.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Literal

from pydantic import BaseModel, Field

from clinical_notes.evidence import Evidence, dates_in, evidence_of, quantities_in
from clinical_notes.kinds import NoteDraft
from fhir_adapters.record import PatientRecord

Rule = Literal[
    "citation_unresolved",
    "citation_not_in_prompt",
    "number_unsupported",
    "date_unsupported",
    "uncited_claim",
    "definitive_diagnosis",
]

NON_CLINICAL = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"^(this|the) (draft|summary|note) (is|was) (generated|written|drafted)\b",
        r"^(see|refer to) (the )?(sources|record|chart)\b",
        r"^no (new |further |recent )?(data|information|documentation|results|notes)"
        r" (is |are |were |was )?(available|recorded|documented)\b",
    )
]
ASSESSMENT_TITLES = re.compile(r"assessment|impression|differential", re.IGNORECASE)
DEFINITIVE = re.compile(
    r"\b(diagnosed with|diagnosis (is|of)|diagnostic of|confirms?|confirmed|definitely|certainly|"
    r"is suffering from|(has|have) (an? )?([a-z-]+ ){0,3}"
    r"[a-z-]*(itis|osis|emia|aemia|oma|pathy|pneumonia|sepsis|infection|failure|infarction|fracture|"
    r"cancer|carcinoma|disease|syndrome|disorder|embolism|stroke))\b",
    re.IGNORECASE,
)
HEDGED = re.compile(
    r"\b(suggests?|suggestive|consistent with|compatible with|consider|possible|possibly|probable|likely|"
    r"may|might|could|suspect(ed)?|concern for|cannot be excluded|rule out|differential|history of|known)\b",
    re.IGNORECASE,
)


class Violation(BaseModel):
    """One failed check, located in the draft."""

    location: str = Field(description='"sections[i].statements[j]" or "flags[k]"')
    rule: Rule
    detail: str


class VerificationReport(BaseModel):
    """The verifier's verdict on a draft."""

    passed: bool
    statements: int
    violations: list[Violation] = Field(default_factory=list)

    def failing(self) -> set[str]:
        """Locations with at least one violation."""
        return {v.location for v in self.violations}

    def counts(self) -> dict[str, int]:
        """Violations per rule."""
        return dict(Counter(v.rule for v in self.violations))

    def feedback(self, limit: int = 12) -> str:
        """The violations as instructions for a corrected answer."""
        return "; ".join(f"{v.location}: {v.detail}" for v in self.violations[:limit])


def _claims(note: NoteDraft) -> Iterator[tuple[str, str, list[str], bool]]:
    """(location, text, citations, is_assessment) for every statement and flag rationale."""
    for i, section in enumerate(note.sections):
        assessment = bool(ASSESSMENT_TITLES.search(section.title))
        for j, statement in enumerate(section.statements):
            yield f"sections[{i}].statements[{j}]", statement.text, statement.citations, assessment
    for k, flag in enumerate(note.flags):
        if flag.source == "model":
            yield f"flags[{k}]", f"{flag.title}. {flag.rationale}", flag.citations, False


class Verifier:
    """Checks drafts against one record; caches what each cited resource can prove."""

    def __init__(self, record: PatientRecord, prompt_refs: set[str] | None = None):
        self.record = record
        self.prompt_refs = prompt_refs
        self._evidence: dict[str, Evidence] = {}

    def evidence(self, ref: str) -> Evidence:
        """What a cited resource can prove (computed once)."""
        if ref not in self._evidence:
            self._evidence[ref] = evidence_of(self.record.resources[ref])
        return self._evidence[ref]

    def check(self, location: str, text: str, citations: list[str], assessment: bool) -> list[Violation]:
        """Every violation of one statement."""
        found: list[Violation] = []

        def add(rule: Rule, detail: str) -> None:
            found.append(Violation(location=location, rule=rule, detail=detail))

        resolved = []
        for ref in citations:
            if ref not in self.record.resources:
                add("citation_unresolved", f"{ref} is not in the record")
            elif self.prompt_refs is not None and ref not in self.prompt_refs:
                add("citation_not_in_prompt", f"{ref} was not in the timeline the model saw")
            else:
                resolved.append(self.evidence(ref))
        if not citations and not any(p.search(text.strip()) for p in NON_CLINICAL):
            add("uncited_claim", "clinical statement without a citation")
        if citations:
            for quantity in quantities_in(text):
                if not any(e.has_quantity(quantity) for e in resolved):
                    add("number_unsupported", f"{quantity.value:g} {quantity.unit} is in no cited resource")
            for day, month_only in dates_in(text):
                if not any(e.covers(day, month_only) for e in resolved):
                    shown = day.strftime("%Y-%m") if month_only else day.isoformat()
                    add("date_unsupported", f"{shown} is outside every cited resource's dates")
        if assessment and DEFINITIVE.search(text) and not HEDGED.search(text):
            add("definitive_diagnosis", "assessment states a definitive diagnosis; use hedged language")
        return found

    def verify(self, note: NoteDraft) -> VerificationReport:
        """Check every statement and model flag of a draft."""
        violations: list[Violation] = []
        count = 0
        for location, text, citations, assessment in _claims(note):
            count += 1
            violations.extend(self.check(location, text, citations, assessment))
        return VerificationReport(passed=not violations, statements=count, violations=violations)


def without_failing(note: NoteDraft, report: VerificationReport) -> tuple[NoteDraft, int]:
    """The draft with every failing statement and model flag removed, and how many were removed."""
    failing = report.failing()
    kept = note.model_copy(deep=True)
    dropped = 0
    for i, section in enumerate(kept.sections):
        before = len(section.statements)
        section.statements = [
            s for j, s in enumerate(section.statements) if f"sections[{i}].statements[{j}]" not in failing
        ]
        dropped += before - len(section.statements)
    kept.sections = [s for s in kept.sections if s.statements]
    flags = [f for k, f in enumerate(kept.flags) if f"flags[{k}]" not in failing]
    dropped += len(kept.flags) - len(flags)
    kept.flags = flags
    return kept, dropped
