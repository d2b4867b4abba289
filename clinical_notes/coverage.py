"""What a draft must mention, and whether it does: the yardstick of completeness for tests and benches.

Must mention: every active problem, active medication and allergy, the latest abnormal result of each
lab, and (triage) every rule flag. A fact is covered when a statement cites its resource and names it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from clinical_notes.concepts import mentions
from clinical_notes.draft import Flag, NoteDraft
from clinical_notes.evidence import EvidenceSource
from clinical_notes.timeline import ClinicalTimeline


@dataclass(frozen=True)
class Fact:
    """One thing the draft must state: its category, a name for reports, the resource that records it."""

    category: str
    name: str
    ref: str


def must_mention(timeline: ClinicalTimeline) -> list[Fact]:
    """The facts every progress draft states and cites."""
    facts = [Fact("active problem", p.name, p.ref) for p in timeline.problems if p.active]
    facts += [Fact("active medication", m.name, m.ref) for m in timeline.medications if m.active]
    facts += [Fact("allergy", a.substance, a.ref) for a in timeline.allergies]
    for series in timeline.labs:
        abnormal = series.latest if series.latest.abnormal else series.latest_abnormal
        if abnormal is not None:
            facts.append(Fact("latest abnormal result", series.name, abnormal.ref))
    return facts


def missing(draft: NoteDraft, facts: list[Fact], evidence: EvidenceSource) -> list[Fact]:
    """The facts no statement of the draft both cites and names."""
    cited: dict[str, list[str]] = {}
    for section in draft.sections:
        for statement in section.statements:
            for ref in statement.citations:
                cited.setdefault(ref, []).append(statement.text)
    out = []
    for fact in facts:
        found = evidence.evidence(fact.ref)
        if found is None or not any(mentions(text, found) for text in cited.get(fact.ref, [])):
            out.append(fact)
    return out


def missing_flags(draft: NoteDraft, rules: list[Flag]) -> list[Flag]:
    """Rule flags the draft does not carry."""
    carried = Counter((f.title, tuple(f.citations)) for f in draft.flags if f.source == "rule")
    return [f for f in rules if not carried[(f.title, tuple(f.citations))]]
