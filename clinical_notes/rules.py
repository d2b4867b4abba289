"""Every deterministic flag of a triage draft, and how model flags join them."""

from __future__ import annotations

from clinical_notes.draft import SEVERITY_ORDER, Flag
from clinical_notes.screen import NEWS2, screen
from clinical_notes.timeline import ClinicalTimeline
from clinical_notes.triage import News2, allergy_conflicts, critical_labs, news2
from clinical_notes.triage_context import ScaleName


def rule_flags(timeline: ClinicalTimeline, scale: ScaleName = "esi") -> tuple[list[Flag], News2]:
    """Every deterministic flag, and the NEWS2 result behind the first one.

    NEWS2 on the latest vital signs, critical labs, allergy conflicts, then the triage screen of the current
    encounter in the hospital's scale (clinical_notes.screen) without its own NEWS2, which scores the
    presentation's vital signs.
    """
    score = news2(timeline)
    presentation = [f for f in screen(timeline, scale=scale).flags if f.rule != NEWS2]
    return [score.flag(), *critical_labs(timeline), *allergy_conflicts(timeline), *presentation], score


def merge_flags(rules: list[Flag], model: list[Flag]) -> list[Flag]:
    """Rule flags always; model flags unless a rule flag already covers their citations; critical first."""
    covered = [set(f.citations) for f in rules]
    kept = [f for f in model if not any(set(f.citations) <= c for c in covered)]
    return sorted([*rules, *kept], key=lambda f: (SEVERITY_ORDER[f.severity], f.source != "rule"))
