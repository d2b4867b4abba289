"""Deterministic checks of a draft against the fetched record: "no source, no assertion", and nothing hollow.

Every statement (and model flag) must cite resources that exist in the record, are not retracted
(entered-in-error, refuted, cancelled) and, for model statements, were shown to the model; every number
with a unit and every date in it must be found in a cited resource; it must say something (not a section
title, not filler) and mention a concept, value or date of each resource it cites; clinical statements
without a citation are rejected unless they are statements about the record itself ("No allergy records
found in the record"); assessments must be hedged, never a definitive new diagnosis. A model flag at
warning or critical must cite data that backs it (an abnormal result or vital sign, a rule finding, an
allergy conflict); otherwise it is downgraded to info with the reason.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from clinical_notes.concepts import filler, is_hollow, mentions
from clinical_notes.draft import Flag, NoteDraft
from clinical_notes.evidence import Evidence, EvidenceSource, dates_in, quantities_in
from clinical_notes.guidelines import is_guideline, uncited_recommendation, unsupported
from clinical_notes.kinds import ALL_TITLES
from clinical_notes.language import ENGLISH, Wording
from clinical_notes.timeline import ClinicalTimeline, series_measurements

Rule = Literal[
    "citation_unresolved",
    "citation_retracted",
    "citation_not_in_prompt",
    "number_unsupported",
    "date_unsupported",
    "uncited_claim",
    "hollow_statement",
    "filler",
    "ungrounded",
    "definitive_diagnosis",
    "flag_unbacked",
    "recommendation_uncited",
    "guideline_unsupported",
]

# Statements about the record itself, which need no citation.
ABOUT_THE_RECORD = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"^no [^.]*\b(found|recorded|documented)\b[^.]*\bin the record\.?$",
        r"\bare in the record,? not listed( here)?\.?$",
    )
]
ASSESSMENT_TITLES = re.compile(r"assessment|impression|differential|watch for", re.IGNORECASE)
# What each rule means to a reader of the draft ("nothing the model wrote passed: 16 citations of ...").
RULE_TEXT: dict[str, str] = {
    "citation_unresolved": "citations of nothing in the record",
    "citation_retracted": "citations of retracted resources",
    "citation_not_in_prompt": "citations of resources the model was not shown",
    "number_unsupported": "numbers no cited resource holds",
    "date_unsupported": "dates outside the cited resources",
    "uncited_claim": "uncited claims",
    "hollow_statement": "statements that say nothing",
    "filler": "filler statements",
    "ungrounded": "statements not naming what they cite",
    "definitive_diagnosis": "unhedged diagnoses",
    "flag_unbacked": "flags without abnormal data behind them",
    "recommendation_uncited": "recommendations citing no guideline passage",
    "guideline_unsupported": "guideline-cited statements naming what no cited source names",
}
UNBACKED = "downgraded to info: cites no abnormal result or vital sign, rule finding or allergy conflict"


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
        """Locations with a violation that removes them (an unbacked flag is downgraded instead)."""
        return {v.location for v in self.violations if v.rule != "flag_unbacked"}

    def counts(self) -> dict[str, int]:
        """Violations per rule."""
        return dict(Counter(v.rule for v in self.violations))

    def summary(self) -> str:
        """The violations counted in words ("16 citations of nothing in the record")."""
        counts = sorted(self.counts().items(), key=lambda kv: -kv[1])
        return "; ".join(f"{n} {RULE_TEXT.get(rule, rule)}" for rule, n in counts) or "no statements"

    def feedback(self, limit: int = 12) -> str:
        """The violations as instructions for a corrected answer."""
        return "; ".join(f"{v.location}: {v.detail}" for v in self.violations[:limit])


@dataclass(frozen=True)
class Claim:
    """One checkable statement or model flag of a draft."""

    location: str
    text: str
    citations: list[str]
    assessment: bool
    model: bool
    flag: Flag | None = None


def claims(note: NoteDraft) -> Iterator[Claim]:
    """Every statement and model flag, located."""
    for i, section in enumerate(note.sections):
        assessment = bool(ASSESSMENT_TITLES.search(section.title))
        for j, st in enumerate(section.statements):
            yield Claim(
                f"sections[{i}].statements[{j}]", st.text, st.citations, assessment, st.author == "model"
            )
    for k, flag in enumerate(note.flags):
        if flag.source == "model":
            yield Claim(f"flags[{k}]", f"{flag.title}. {flag.rationale}", flag.citations, False, True, flag)


class Verifier:
    """Checks drafts against one record.

    `prompt_refs`: what the model was shown (None when unknown). `backing`: references that back a flag
    (abnormal results and vital signs, rule findings); None skips the flag check.
    """

    def __init__(
        self,
        record: EvidenceSource,
        prompt_refs: set[str] | None = None,
        *,
        backing: set[str] | None = None,
        titles: Iterable[str] = ALL_TITLES,
        wording: Wording = ENGLISH,
    ):
        self.record = record
        self.prompt_refs = prompt_refs
        self.backing = backing
        self.titles = (*titles, *wording.section_titles.values())
        self.wording = wording

    def check(self, claim: Claim) -> list[Violation]:
        """Every violation of one statement or model flag."""
        found: list[Violation] = []

        def add(rule: Rule, detail: str) -> None:
            found.append(Violation(location=claim.location, rule=rule, detail=detail))

        words = self.wording
        text = claim.text
        resolved: list[Evidence] = []
        for ref in claim.citations:
            evidence = self.record.evidence(ref)
            if evidence is None:
                add("citation_unresolved", f"{ref} is not in the record")
            elif evidence.retracted:
                add("citation_retracted", f"{ref} was retracted ({evidence.retracted})")
            elif claim.model and self.prompt_refs is not None and ref not in self.prompt_refs:
                add("citation_not_in_prompt", f"{ref} was not in the timeline the model saw")
            else:
                resolved.append(evidence)
        statement = claim.flag.rationale if claim.flag else text
        about = any(p.search(text.strip()) for p in (*ABOUT_THE_RECORD, *words.about_the_record))
        if not about and is_hollow(words.for_checking(statement), self.titles):
            add("hollow_statement", "says nothing: a title or only generic words")
        phrase = filler(text)
        if phrase:
            add("filler", f"filler ({phrase!r}) states nothing about the patient")
        if not claim.citations and not about:
            add("uncited_claim", "clinical statement without a citation")
        checked = words.for_checking(text)
        for evidence in resolved:
            if not mentions(checked, evidence):
                add(
                    "ungrounded",
                    f"does not mention what {evidence.ref} records; name it or cite what you state",
                )
        if claim.citations:
            for quantity in quantities_in(checked):
                if not any(e.has_quantity(quantity) for e in resolved):
                    add("number_unsupported", f"{quantity.value:g} {quantity.unit} is in no cited resource")
            for day, month_only in dates_in(checked):
                if not any(e.covers(day, month_only) for e in resolved):
                    shown = day.strftime("%Y-%m") if month_only else day.isoformat()
                    add("date_unsupported", f"{shown} is outside every cited resource's dates")
        if claim.model and uncited_recommendation(text, claim.citations):
            add("recommendation_uncited", "recommends without citing the guideline passage it follows")
        if any(is_guideline(c) for c in claim.citations):
            for name in unsupported(checked, resolved):
                add("guideline_unsupported", f"names {name}, which no cited passage or resource names")
        hedged = words.hedged.search(text) or ENGLISH.hedged.search(text)
        if (
            claim.assessment
            and (words.definitive.search(text) or ENGLISH.definitive.search(text))
            and not hedged
        ):
            add("definitive_diagnosis", "assessment states a definitive diagnosis; use hedged language")
        flag = claim.flag
        backing = self.backing
        if (
            flag is not None
            and backing is not None
            and flag.severity != "info"
            and not set(flag.citations) & backing
        ):
            add("flag_unbacked", f"{flag.severity} flag {UNBACKED}")
        return found

    def verify(self, note: NoteDraft) -> VerificationReport:
        """Check every statement and model flag of a draft."""
        violations: list[Violation] = []
        count = 0
        for claim in claims(note):
            count += 1
            violations.extend(self.check(claim))
        return VerificationReport(passed=not violations, statements=count, violations=violations)


def without_failing(note: NoteDraft, report: VerificationReport) -> tuple[NoteDraft, int]:
    """The draft without failing statements and model flags (unbacked flags downgraded); how many went."""
    failing = report.failing()
    unbacked = {v.location for v in report.violations if v.rule == "flag_unbacked"}
    kept = note.model_copy(deep=True)
    dropped = 0
    for i, section in enumerate(kept.sections):
        before = len(section.statements)
        section.statements = [
            s for j, s in enumerate(section.statements) if f"sections[{i}].statements[{j}]" not in failing
        ]
        dropped += before - len(section.statements)
    kept.sections = [s for s in kept.sections if s.statements]
    flags = []
    for k, flag in enumerate(kept.flags):
        location = f"flags[{k}]"
        if location in failing:
            dropped += 1
            continue
        if location in unbacked:
            flag = flag.model_copy(update={"severity": "info", "rationale": f"{flag.rationale} ({UNBACKED})"})
        flags.append(flag)
    kept.flags = flags
    return kept, dropped


def flag_backing(timeline: ClinicalTimeline, rules: Iterable[Flag]) -> set[str]:
    """What can back a warning or critical flag: abnormal results and vital signs, rule findings."""
    found = {
        m.ref
        for series in (*timeline.labs, *timeline.vitals)
        for m in series_measurements(series)
        if m.abnormal
    }
    return found | {ref for flag in rules if flag.severity != "info" for ref in flag.citations}
