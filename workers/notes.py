"""Note kinds, the draft's shape, and the JSON schema the model must follow."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from services.core.errors import InputError


class Statement(BaseModel):
    """One sentence of a note and the FHIR resources it rests on."""

    text: str
    citations: list[str] = Field(default_factory=list)


class Section(BaseModel):
    """A titled group of statements."""

    title: str
    statements: list[Statement]


class NoteDraft(BaseModel):
    """The minimum shape every kind shares."""

    kind: str
    sections: list[Section]

    def with_citations(self, mapping: dict[str, str]) -> NoteDraft:
        """A copy with each citation key replaced by what it maps to (unknown keys stay as they are)."""
        copy = self.model_copy(deep=True)
        for section in copy.sections:
            for statement in section.statements:
                statement.citations = [mapping.get(c, c) for c in statement.citations]
        return copy

    def cited(self) -> list[str]:
        """Every cited reference, in order of first citation."""
        return list(dict.fromkeys(c for s in self.sections for st in s.statements for c in st.citations))


@dataclass(frozen=True)
class NoteKind:
    """What distinguishes one kind of note: its title, LOINC type, sections and instructions."""

    name: str
    title: str
    loinc_code: str
    loinc_display: str
    sections: tuple[str, ...]
    instructions: str


KINDS: dict[str, NoteKind] = {
    "progress": NoteKind(
        name="progress",
        title="Progress note summary (AI draft)",
        loinc_code="11506-3",
        loinc_display="Progress note",
        sections=("Active problems", "Medications and allergies", "Recent results", "Recent care"),
        instructions=(
            "Write an interval progress summary for the treating clinician: the active problems, current "
            "medications and allergies, the most recent results (abnormal ones first) and recent encounters."
        ),
    ),
}


def get_kind(name: str) -> NoteKind:
    """The kind of that name; InputError lists the known ones."""
    if name not in KINDS:
        raise InputError(f"unknown note kind {name!r}; known: {', '.join(sorted(KINDS))}")
    return KINDS[name]


def note_schema(
    kind: NoteKind, allowed_refs: list[str], *, max_statements: int, max_chars: int
) -> dict[str, Any]:
    """The JSON schema for one kind, with citations restricted to the timeline's references."""
    citation: dict[str, Any] = (
        {"type": "string", "enum": allowed_refs} if allowed_refs else {"type": "string"}
    )
    statement = {
        "type": "object",
        "properties": {
            "text": {"type": "string", "minLength": 1, "maxLength": max_chars},
            "citations": {"type": "array", "items": citation, "minItems": 1, "maxItems": 4},
        },
        "required": ["text", "citations"],
        "additionalProperties": False,
    }
    section = {
        "type": "object",
        "properties": {
            "title": {"type": "string", "enum": list(kind.sections)},
            "statements": {"type": "array", "items": statement, "minItems": 1, "maxItems": max_statements},
        },
        "required": ["title", "statements"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {
            "kind": {"type": "string", "enum": [kind.name]},
            "sections": {"type": "array", "items": section, "minItems": 1, "maxItems": len(kind.sections)},
        },
        "required": ["kind", "sections"],
        "additionalProperties": False,
    }
