"""The markdown a clinician reads: banner, flags, sections (who wrote each statement), Sources."""

from __future__ import annotations

from typing import Any

from clinical_notes.draft import Flag, NoteDraft, Statement
from clinical_notes.kinds import NoteKind
from clinical_notes.timeline import Source

BANNER = (
    "> **AI-generated draft, not reviewed.** Not a medical device: a clinician must review, edit and approve "
    "it before use. Statements marked _(model)_ were written by a language model and checked against the "
    "record; all others were composed from the record. Every statement cites its sources."
)


def render_markdown(
    note: NoteDraft, kind: NoteKind, sources: dict[str, Source], verification: dict[str, Any] | None = None
) -> str:
    """Markdown a clinician reads: statements with [n] markers and a numbered Sources list."""
    numbers: dict[str, int] = {}

    def marks(citations: list[str]) -> str:
        return "".join(f"[{numbers.setdefault(ref, len(numbers) + 1)}]" for ref in citations)

    def statement_line(s: Statement) -> str:
        author = " _(model)_" if s.author == "model" else ""
        return f"- {s.text.strip()} {marks(s.citations)}".rstrip() + author

    def flag_lines(flags: list[Flag]) -> list[str]:
        lines = ["## Flags", ""]
        for f in flags:
            lines.append(
                f"- **{f.severity.upper()}** {f.title}: {f.rationale} {marks(f.citations)} _({f.source})_"
            )
        return [*lines, ""]

    lines = [f"# {kind.title}", "", BANNER, ""]
    if note.synthesis_unavailable:
        reason = note.synthesis_unavailable
        lines += [f"_Model synthesis unavailable: {reason}. The facts below are from the record._", ""]
    critical_first = any(f.severity == "critical" for f in note.flags)
    if note.flags and critical_first:
        lines += flag_lines(note.flags)
    for section in note.sections:
        lines += [f"## {section.title}", "", *map(statement_line, section.statements), ""]
    if note.flags and not critical_first:
        lines += flag_lines(note.flags)
    if verification:
        checked, dropped = verification.get("statements_checked", 0), verification.get("dropped", 0)
        removed = (
            f"{dropped} model statements were removed for failing a check" if dropped else "none removed"
        )
        lines += [
            f"_Verification: every statement here was checked against the record ({checked}); {removed}._",
            "",
        ]
    lines += ["## Sources", ""]
    for ref, number in numbers.items():
        source = sources.get(ref, Source("not in the timeline", None))
        when = f", {source.date[:10]}" if source.date else ""
        lines.append(f"{number}. {ref.split('/')[0]}{when}: {source.label} ({ref})")
    return "\n".join(lines).rstrip() + "\n"
