"""The markdown a clinician reads: banner, flags, sections (who wrote each statement), Sources."""

from __future__ import annotations

from typing import Any

from clinical_notes.draft import Flag, NoteDraft, Statement
from clinical_notes.guidelines import is_guideline
from clinical_notes.kinds import NoteKind
from clinical_notes.language import ENGLISH, Wording
from clinical_notes.readability import describe
from clinical_notes.timeline import Source

BANNER = ENGLISH.banner


def render_markdown(
    note: NoteDraft,
    kind: NoteKind,
    sources: dict[str, Source],
    verification: dict[str, Any] | None = None,
    words: Wording = ENGLISH,
) -> str:
    """Markdown a clinician reads, in the wording's language: statements with [n] markers and numbered
    Sources."""
    numbers: dict[str, int] = {}
    guides: dict[str, int] = {}  # guideline passages: marked [G1], listed apart from the record's sources

    def mark(ref: str) -> str:
        if is_guideline(ref):
            return f"[G{guides.setdefault(ref, len(guides) + 1)}]"
        return f"[{numbers.setdefault(ref, len(numbers) + 1)}]"

    def marks(citations: list[str]) -> str:
        return "".join(map(mark, citations))

    def statement_line(s: Statement) -> str:
        author = f" {words.model_mark}" if s.author == "model" else ""
        return f"- {s.text.strip()} {marks(s.citations)}".rstrip() + author

    def flag_lines(flags: list[Flag]) -> list[str]:
        lines = [f"## {words.flags}", ""]
        for f in flags:
            severity = words.severities.get(f.severity, f.severity.upper())
            source = words.authors.get(f.source, f.source)
            lines.append(f"- **{severity}** {f.title}: {f.rationale} {marks(f.citations)} _({source})_")
        return [*lines, ""]

    lines = [f"# {words.title(kind.name, kind.title)}", "", words.banner, ""]
    if kind.for_patient:
        lines += [words.patient_draft, ""]
    if note.synthesis_unavailable:
        lines += [words.unavailable.format(reason=note.synthesis_unavailable), ""]
    critical_first = any(f.severity == "critical" for f in note.flags)
    if note.flags and critical_first:
        lines += flag_lines(note.flags)
    for section in note.sections:
        lines += [f"## {words.section(section.title)}", "", *map(statement_line, section.statements), ""]
    if note.flags and not critical_first:
        lines += flag_lines(note.flags)
    if verification:
        checked, dropped = verification.get("statements_checked", 0), verification.get("dropped", 0)
        removed = words.removed_some.format(n=dropped) if dropped else words.removed_none
        lines += [words.verification.format(checked=checked, removed=removed), ""]
        if "readability" in verification:
            lines += [words.reading_level.format(measure=describe(verification["readability"])), ""]
    lines += [f"## {words.sources}", ""]
    for ref, number in numbers.items():
        source = sources.get(ref, Source(words.not_in_timeline, None))
        when = f", {words.day(source.date)}" if source.date else ""
        lines.append(f"{number}. {ref.split('/')[0]}{when}: {source.label} ({ref})")
    if guides:
        lines += ["", f"## {words.guidelines}", ""]
        for ref, number in guides.items():
            label = sources.get(ref, Source(words.not_in_timeline, None)).label
            lines.append(f"G{number}. {label} ({ref.removeprefix('Guideline/')})")
    return "\n".join(lines).rstrip() + "\n"
