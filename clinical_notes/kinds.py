"""Note kinds, the draft's shape, and the JSON schema the model must follow.

LOINC document types (the DocumentReference.type of each kind's draft):
- progress: 11506-3 "Progress note": an interval summary is what this code names.
- soap: 34109-9 "Note": SOAP is a layout, not a document kind; the Document Ontology's generic note leaves
  setting and author role unasserted, which is right for a model-written draft of any encounter.
- triage: 51848-0 "Evaluation note": the flags are an assessment of risk (C-CDA's Assessment section code),
  not an ED triage note (54094-8), which documents a nurse's triage encounter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from services.core.errors import InputError

Severity = Literal["critical", "warning", "info"]


class Statement(BaseModel):
    """One sentence of a note and the FHIR resources it rests on."""

    text: str
    citations: list[str] = Field(default_factory=list)


class Section(BaseModel):
    """A titled group of statements."""

    title: str
    statements: list[Statement]


class Flag(BaseModel):
    """A triage flag (severity as CDS Hooks card indicators); `source` says who raised it."""

    severity: Severity
    title: str
    rationale: str
    citations: list[str] = Field(default_factory=list)
    source: Literal["rule", "model"] = "model"


class NoteDraft(BaseModel):
    """The minimum shape every kind shares; `flags` only for triage."""

    kind: str
    sections: list[Section]
    flags: list[Flag] = Field(default_factory=list)

    def with_citations(self, mapping: dict[str, str]) -> NoteDraft:
        """A copy with each citation key replaced by what it maps to (unknown keys stay as they are)."""
        copy = self.model_copy(deep=True)
        for section in copy.sections:
            for statement in section.statements:
                statement.citations = [mapping.get(c, c) for c in statement.citations]
        for flag in copy.flags:
            flag.citations = [mapping.get(c, c) for c in flag.citations]
        return copy

    def cited(self) -> list[str]:
        """Every cited reference, in order of first citation."""
        statements = [c for s in self.sections for st in s.statements for c in st.citations]
        return list(dict.fromkeys([*statements, *(c for f in self.flags for c in f.citations)]))


@dataclass(frozen=True)
class NoteKind:
    """What distinguishes one kind of note: its title, LOINC type, sections and instructions."""

    name: str
    title: str
    loinc_code: str
    loinc_display: str
    sections: tuple[str, ...]
    instructions: str
    flags: bool = False


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
    "soap": NoteKind(
        name="soap",
        title="SOAP note (AI draft)",
        loinc_code="34109-9",
        loinc_display="Note",
        sections=("Subjective", "Objective", "Assessment", "Plan"),
        instructions=(
            "Write a SOAP note for the most recent encounter. Subjective: what prior notes report. "
            "Objective: vital signs and results. Assessment: hedged (suggests, consistent with, consider), "
            "never a new "
            "diagnosis. Plan: follow-up items the record supports (for example results to recheck)."
        ),
    ),
    "triage": NoteKind(
        name="triage",
        title="Triage flags (AI draft)",
        loinc_code="51848-0",
        loinc_display="Evaluation note",
        sections=("Summary",),
        instructions=(
            "Flag what needs a clinician's attention: abnormal or critical results, worrying vital signs, "
            "allergy conflicts. Each flag has a severity (critical, warning or info), a short title and a "
            "rationale citing its sources. Add a one- or two-statement summary."
        ),
        flags=True,
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
    """The JSON schema for one kind, with citations restricted to the timeline's citation keys."""
    citation: dict[str, Any] = (
        {"type": "string", "enum": allowed_refs} if allowed_refs else {"type": "string"}
    )
    citations = {"type": "array", "items": citation, "minItems": 1, "maxItems": 4}
    text = {"type": "string", "minLength": 1, "maxLength": max_chars}
    statement = {
        "type": "object",
        "properties": {"text": text, "citations": citations},
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
    properties: dict[str, Any] = {
        "kind": {"type": "string", "enum": [kind.name]},
        "sections": {"type": "array", "items": section, "minItems": 1, "maxItems": len(kind.sections)},
    }
    if kind.flags:
        flag = {
            "type": "object",
            "properties": {
                "severity": {"type": "string", "enum": ["critical", "warning", "info"]},
                "title": {"type": "string", "minLength": 1, "maxLength": 80},
                "rationale": text,
                "citations": citations,
                "source": {"type": "string", "enum": ["model"]},
            },
            "required": ["severity", "title", "rationale", "citations", "source"],
            "additionalProperties": False,
        }
        properties["flags"] = {"type": "array", "items": flag, "minItems": 0, "maxItems": max_statements + 2}
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
