"""Note kinds: their sections in the order a clinician reads them, who writes each, and the LOINC type.

The record writes the facts (problems, medications, allergies, results, vital signs, recent care), composed
by code (clinical_notes.compose); the model writes only what needs synthesis.

LOINC document types (the DocumentReference.type of each kind's draft):
- progress: 11506-3 "Progress note": an interval summary is what this code names.
- soap: 34109-9 "Note": SOAP is a layout, not a document type; the Document Ontology's generic note leaves
  setting and author role unasserted, which is right for a model-written draft of any encounter.
- triage: 51848-0 "Evaluation note": the flags are an assessment of risk (C-CDA's Assessment section code),
  not an ED triage note (54094-8), which documents a nurse's triage encounter.
- discharge-medications: 8653-8 "Hospital Discharge instructions": what the patient is told to do at
  discharge; the medication guide is such an instruction, written for the patient (clinical_notes.discharge).
"""

from __future__ import annotations

from dataclasses import dataclass

from clinical_notes.draft import Author
from services.core.errors import InputError

SUMMARY = "One sentence: age, sex, the two or three problems that matter most, and why the latest encounter."
INTERVAL = (
    "What changed since the previous encounter or note: new or resolved problems, started or stopped "
    "medications, results that moved. Name each thing you cite."
)
ASSESSMENT = (
    "Hedged clinical reasoning (suggests, consistent with, consider), never a new diagnosis; name the "
    "problem or result each statement rests on."
)
PLAN = (
    "Follow-up the record supports: results to recheck, monitoring, medications to review. Considerations "
    "for the clinician, not orders; name what each rests on."
)

EXPLAIN = (
    "For each medicine started, changed or stopped at discharge: what it is for and what the change means "
    "for the patient, in plain words; name the medicine you cite."
)
WATCH = (
    "Side effects or warning signs the patient may notice with the new or changed medicines and when to call "
    "the care team; hedged (may, can), never a diagnosis; name the medicine you cite."
)


@dataclass(frozen=True)
class SectionSpec:
    """A section of a kind: its title, who writes it, and (for the model) what belongs in it."""

    title: str
    author: Author
    guidance: str = ""
    max_statements: int | None = None


@dataclass(frozen=True)
class NoteKind:
    """What distinguishes one kind of note: its title, LOINC type, sections and instructions."""

    name: str
    title: str
    loinc_code: str
    loinc_display: str
    sections: tuple[SectionSpec, ...]
    task: str
    flags: bool = False
    for_patient: bool = False  # written for the patient: in their language, readability measured

    def model_sections(self) -> tuple[SectionSpec, ...]:
        """The sections the model writes."""
        return tuple(s for s in self.sections if s.author == "model")

    def titles(self) -> tuple[str, ...]:
        """Every section title, in order."""
        return tuple(s.title for s in self.sections)


KINDS: dict[str, NoteKind] = {
    "progress": NoteKind(
        name="progress",
        title="Progress note summary (AI draft)",
        loinc_code="11506-3",
        loinc_display="Progress note",
        sections=(
            SectionSpec("Summary", "model", SUMMARY, max_statements=1),
            SectionSpec("Interval changes", "model", INTERVAL),
            SectionSpec("Active problems", "record"),
            SectionSpec("Medications", "record"),
            SectionSpec("Allergies", "record"),
            SectionSpec("Recent results", "record"),
            SectionSpec("Recent care", "record"),
            SectionSpec("Assessment", "model", ASSESSMENT),
            SectionSpec("Plan considerations", "model", PLAN),
        ),
        task="an interval progress summary for the treating clinician",
    ),
    "soap": NoteKind(
        name="soap",
        title="SOAP note (AI draft)",
        loinc_code="34109-9",
        loinc_display="Note",
        sections=(
            SectionSpec(
                "Subjective",
                "model",
                "What the prior notes and the latest encounter report (symptoms, reason for visit).",
            ),
            SectionSpec("Objective", "record"),
            SectionSpec("Assessment", "model", ASSESSMENT),
            SectionSpec("Plan", "model", PLAN),
        ),
        task="a SOAP note for the most recent encounter",
    ),
    "triage": NoteKind(
        name="triage",
        title="Triage flags (AI draft)",
        loinc_code="51848-0",
        loinc_display="Evaluation note",
        sections=(
            SectionSpec(
                "Summary",
                "model",
                "One or two statements: who the patient is and what needs a clinician's attention now.",
                max_statements=2,
            ),
            SectionSpec("Findings", "record"),
        ),
        task=(
            "triage flags: what needs a clinician's attention (abnormal or critical results, worrying vital "
            "signs, allergy conflicts); each flag has a severity (critical, warning or info), a short title "
            "naming the finding and a rationale citing the abnormal values it rests on"
        ),
        flags=True,
    ),
    "discharge-medications": NoteKind(
        name="discharge-medications",
        title="Your medicines after leaving hospital (AI draft: the care team approves it before you get it)",
        loinc_code="8653-8",
        loinc_display="Hospital Discharge instructions",
        sections=(
            SectionSpec("Your hospital stay", "record"),
            SectionSpec("What changed, in plain words", "model", EXPLAIN, max_statements=4),
            SectionSpec("New medicines", "record"),
            SectionSpec("Changed medicines", "record"),
            SectionSpec("Stopped medicines", "record"),
            SectionSpec("Continue as before", "record"),
            SectionSpec("What to watch for", "model", WATCH, max_statements=4),
        ),
        task=(
            "a medication guide for the patient leaving hospital, in short sentences and everyday words a "
            "patient understands (no abbreviations), about the medicines listed under DISCHARGE MEDICATIONS"
        ),
        for_patient=True,
    ),
}

ALL_TITLES = frozenset(t for kind in KINDS.values() for t in kind.titles()) | {"Flags", "Sources"}


def get_kind(name: str) -> NoteKind:
    """The kind of that name; InputError lists the known ones."""
    if name not in KINDS:
        raise InputError(f"unknown note kind {name!r}; known: {', '.join(sorted(KINDS))}")
    return KINDS[name]


def known_kinds(names: list[str]) -> list[str]:
    """The kinds named, each once and in order; InputError naming the unknown ones."""
    unknown = sorted(set(names) - set(KINDS))
    if unknown:
        raise InputError(f"unknown kinds {unknown}; known: {sorted(KINDS)}")
    return list(dict.fromkeys(names))
