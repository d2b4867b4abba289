"""The draft's shape: sections of statements (each with its citations and who wrote it) and triage flags."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Severity = Literal["critical", "warning", "info"]
Author = Literal["record", "model"]
SEVERITY_ORDER: dict[str, int] = {"critical": 0, "warning": 1, "info": 2}


class Statement(BaseModel):
    """One sentence of a note, the FHIR resources it rests on, and who wrote it."""

    text: str
    citations: list[str] = Field(default_factory=list)
    author: Author = Field(default="model", description="record: composed from the record by code.")


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
    synthesis_unavailable: str | None = Field(
        default=None, description="Why the model's synthesis is missing; the record's facts are still here."
    )

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


class ImagesUsed(BaseModel):
    """The record's images: those sent to the model, and each left out with why."""

    sent: list[str] = Field(default_factory=list)
    left_out: list[str] = Field(default_factory=list)


class DraftVerification(BaseModel):
    """How a draft was checked and who wrote what: the `verification` block of the draft and the job."""

    status: Literal["verified", "partially_verified"]
    statements_checked: int
    record_statements: int
    model_statements: int
    dropped: int = Field(description="Model statements removed because they failed verification.")
    record_statements_dropped: int = 0
    synthesis: Literal["model", "unavailable"]
    synthesis_unavailable: str | None = None
    violations_first_answer: dict[str, int] = Field(default_factory=dict)
    violations_final_answer: dict[str, int] = Field(default_factory=dict)
    regenerated: bool = False
    served_model: str | None = None
    language: str = "en"
    triage_scale: str | None = None
    readability: dict[str, Any] | None = Field(
        default=None, description="Reading level of a guide for patients."
    )
    images: ImagesUsed = Field(default_factory=ImagesUsed)
    news2: int | None = None
    transcript: dict[str, Any] | None = Field(
        default=None, description="What of the visit transcript was read."
    )

    def as_json(self, *, flags: bool) -> dict[str, Any]:
        """The block as stored: NEWS2 only for kinds with flags, the reason and the reading level only when
        there is one."""
        out = self.model_dump(mode="json")
        if not flags:
            out.pop("news2")
        for optional in ("synthesis_unavailable", "readability", "transcript"):
            if out[optional] is None:
                out.pop(optional)
        return out
