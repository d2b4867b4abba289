"""The JSON schema of the model's answer (synthesis sections only) and its conversion into a draft."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field

from clinical_notes.draft import Flag, NoteDraft, Section, Severity, Statement
from clinical_notes.kinds import NoteKind
from clinical_notes.timeline import KEY_PATTERN


def slug(title: str) -> str:
    """The answer's key for a section title ("Interval changes" → "interval_changes")."""
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")


def model_schema(kind: NoteKind, *, max_statements: int, max_chars: int) -> dict[str, Any]:
    """The schema of one kind's answer: the same for every patient; citations are key-shaped (a key the
    timeline did not show stays unresolved and the verifier rejects its statement)."""
    citation: dict[str, Any] = {"type": "string", "pattern": KEY_PATTERN}
    citations = {"type": "array", "items": citation, "minItems": 1, "maxItems": 4}
    text = {"type": "string", "minLength": 1, "maxLength": max_chars}
    statement = {
        "type": "object",
        "properties": {"text": text, "citations": citations},
        "required": ["text", "citations"],
        "additionalProperties": False,
    }
    # The first section (the one-line summary) is always written; the others may be empty when the record
    # gives nothing to say (no interval change, nothing to plan): a forced statement is filler, and tokens.
    first = kind.model_sections()[0].title
    sections = {
        slug(spec.title): {
            "type": "array",
            "items": statement,
            "minItems": 1 if spec.title == first else 0,
            "maxItems": min(spec.max_statements or max_statements, max_statements),
        }
        for spec in kind.model_sections()
    }
    properties: dict[str, Any] = {
        "sections": {
            "type": "object",
            "properties": sections,
            "required": list(sections),
            "additionalProperties": False,
        }
    }
    if kind.flags:
        flag = {
            "type": "object",
            "properties": {
                "severity": {"type": "string", "enum": ["critical", "warning", "info"]},
                "title": {"type": "string", "minLength": 1, "maxLength": 80},
                "rationale": text,
                "citations": citations,
            },
            "required": ["severity", "title", "rationale", "citations"],
            "additionalProperties": False,
        }
        properties["flags"] = {"type": "array", "items": flag, "minItems": 0, "maxItems": max_statements}
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


class _AnswerFlag(BaseModel):
    severity: Severity
    title: str
    rationale: str
    citations: list[str] = Field(default_factory=list)


class _Answer(BaseModel):
    sections: dict[str, list[Statement]]
    flags: list[_AnswerFlag] = Field(default_factory=list)


def answer_to_draft(kind: NoteKind, content: dict[str, Any]) -> NoteDraft:
    """The model's answer as a draft of model-written sections (ValidationError when off-schema)."""
    answer = _Answer.model_validate(content)
    sections = []
    for spec in kind.model_sections():
        statements = [
            Statement(text=s.text, citations=s.citations, author="model")
            for s in answer.sections.get(slug(spec.title), [])
        ]
        if statements:
            sections.append(Section(title=spec.title, statements=statements))
    flags = [Flag(**f.model_dump(), source="model") for f in answer.flags] if kind.flags else []
    return NoteDraft(kind=kind.name, sections=sections, flags=flags)
