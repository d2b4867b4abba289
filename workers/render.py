"""The readable markdown of a draft: banner, sections with numbered citations, Sources."""

from __future__ import annotations

from fhir_adapters.timeline import Source
from workers.notes import NoteDraft, NoteKind

BANNER = (
    "> **AI-generated draft, not reviewed.** Written by a language model from the FHIR record; "
    "every statement cites its sources. A clinician must review, edit and approve it before use."
)


def render_markdown(note: NoteDraft, kind: NoteKind, sources: dict[str, Source]) -> str:
    """Markdown a clinician reads: statements with [n] markers and a numbered Sources list."""
    numbers: dict[str, int] = {}
    lines = [f"# {kind.title}", "", BANNER, ""]
    for section in note.sections:
        lines += [f"## {section.title}", ""]
        for statement in section.statements:
            marks = "".join(f"[{numbers.setdefault(ref, len(numbers) + 1)}]" for ref in statement.citations)
            lines.append(f"- {statement.text.strip()} {marks}".rstrip())
        lines.append("")
    lines += ["## Sources", ""]
    for ref, number in numbers.items():
        source = sources.get(ref, Source("not in the timeline", None))
        when = f", {source.date[:10]}" if source.date else ""
        lines.append(f"{number}. {ref.split('/')[0]}{when}: {source.label} ({ref})")
    return "\n".join(lines).rstrip() + "\n"
