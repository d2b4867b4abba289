"""The readable markdown of a draft: banner, flags, cited sections, verification, Sources."""

from __future__ import annotations

from typing import Any

from clinical_notes.kinds import Flag, NoteDraft, NoteKind
from clinical_notes.timeline import Source

BANNER = (
    "> **AI-generated draft, not reviewed.** Written by a language model from the FHIR record; "
    "every statement cites its sources. A clinician must review, edit and approve it before use."
)


def render_markdown(
    note: NoteDraft, kind: NoteKind, sources: dict[str, Source], verification: dict[str, Any] | None = None
) -> str:
    """Markdown a clinician reads: statements with [n] markers and a numbered Sources list."""
    numbers: dict[str, int] = {}

    def marks(citations: list[str]) -> str:
        return "".join(f"[{numbers.setdefault(ref, len(numbers) + 1)}]" for ref in citations)

    def flag_lines(flags: list[Flag]) -> list[str]:
        lines = ["## Flags", ""]
        for f in flags:
            lines.append(
                f"- **{f.severity.upper()}** {f.title}: {f.rationale} {marks(f.citations)} _({f.source})_"
            )
        return [*lines, ""]

    lines = [f"# {kind.title}", "", BANNER, ""]
    critical_first = any(f.severity == "critical" for f in note.flags)
    if note.flags and critical_first:
        lines += flag_lines(note.flags)
    for section in note.sections:
        lines += [f"## {section.title}", ""]
        lines += [f"- {s.text.strip()} {marks(s.citations)}".rstrip() for s in section.statements]
        lines.append("")
    if note.flags and not critical_first:
        lines += flag_lines(note.flags)
    if verification:
        state = str(verification.get("status", "unknown")).replace("_", " ")
        lines += [
            f"_Verification: {state}; {verification.get('statements_checked', 0)} statements checked against "
            f"the record, {verification.get('dropped', 0)} removed for failing a check._",
            "",
        ]
    lines += ["## Sources", ""]
    for ref, number in numbers.items():
        source = sources.get(ref, Source("not in the timeline", None))
        when = f", {source.date[:10]}" if source.date else ""
        lines.append(f"{number}. {ref.split('/')[0]}{when}: {source.label} ({ref})")
    return "\n".join(lines).rstrip() + "\n"
