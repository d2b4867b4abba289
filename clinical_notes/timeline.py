"""The ClinicalTimeline: the small domain model prompts see; every item keeps its FHIR reference."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, NamedTuple

from pydantic import BaseModel, Field


class Source(NamedTuple):
    """How a cited resource is shown in a Sources list."""

    label: str
    date: str | None


class PatientFacts(BaseModel):
    """Demographics a note needs (no name, no identifiers)."""

    ref: str
    sex: str | None = None
    age_years: int | None = None
    deceased: bool = False
    language: str | None = Field(
        default=None, description="Preferred language (BCP-47) of Patient.communication."
    )
    language_name: str | None = None


class Problem(BaseModel):
    """A problem on the list: the newest Condition of its code, with the refs of repeats."""

    ref: str
    refs: list[str] = Field(default_factory=list, description="Every Condition recording it, newest first.")
    name: str
    code: str | None = None
    active: bool
    clinical_status: str | None = None
    onset: str | None = None
    abatement: str | None = None
    first_onset: str | None = None
    first_ref: str | None = Field(default=None, description="The Condition recording the first onset.")


class Medication(BaseModel):
    """The newest MedicationRequest/Statement of a drug, with the Medication it names and earlier orders."""

    ref: str
    refs: list[str] = Field(description="This order and the Medication resource it names.")
    earlier: list[str] = Field(default_factory=list, description="Earlier orders of the same drug.")
    name: str
    active: bool
    status: str
    date: str | None = None
    dosage: str | None = None


class Allergy(BaseModel):
    """An AllergyIntolerance."""

    ref: str
    substance: str
    active: bool
    criticality: str | None = None
    category: list[str] = Field(default_factory=list)
    reactions: list[str] = Field(default_factory=list)


class Measurement(BaseModel):
    """One value of a vital sign or lab test."""

    ref: str
    date: str | None = None
    value: float | None = None
    text: str | None = None
    unit: str | None = None
    low: float | None = None
    high: float | None = None
    range_source: str | None = None
    interpretation: str | None = None
    abnormal: bool | None = None


class Series(BaseModel):
    """Values of one test (by code), latest first."""

    name: str
    code: str | None = None
    latest: Measurement
    latest_abnormal: Measurement | None = Field(
        default=None, description="The newest abnormal value when it is not the latest one."
    )
    trend: list[Measurement] = Field(default_factory=list, description="Older values, newest first.")


class EncounterItem(BaseModel):
    """An Encounter."""

    ref: str
    encounter_class: str | None = None
    type: str | None = None
    start: str | None = None
    end: str | None = None
    reasons: list[str] = Field(default_factory=list)
    status: str | None = None


class Event(BaseModel):
    """A dated, named item: a procedure or an immunization."""

    ref: str
    name: str
    date: str | None = None
    status: str | None = None


class Note(BaseModel):
    """A prior note or report, decoded to text."""

    ref: str
    title: str
    date: str | None = None
    text: str
    truncated: bool = False


class Complaint(BaseModel):
    """Why the patient came, as recorded: the words, a code when there is one, and where they were read."""

    ref: str
    text: str
    code: str | None = None
    source: str = Field(description="reason for visit, chief complaint, triage note or encounter diagnosis")


class Presentation(BaseModel):
    """What a triage nurse sees of one encounter: the complaint, the first readings, age and pregnancy."""

    encounter: str
    encounter_class: str | None = Field(default=None, description="Encounter.class code (EMER, IMP, AMB...).")
    start: str | None = None
    part_of: str | None = None
    age_days: int | None = Field(default=None, description="Age at the encounter's start.")
    complaints: list[Complaint] = Field(default_factory=list)
    readings: dict[str, Measurement] = Field(
        default_factory=dict, description="The first value of each observation code during the encounter."
    )
    pregnant: bool | None = None
    pregnancy_ref: str | None = None


class DischargeMedication(BaseModel):
    """One medication compared between admission and discharge: started, changed, stopped or continued."""

    name: str
    change: Literal["started", "changed", "stopped", "continued"]
    ref: str | None = Field(default=None, description="The discharge order (none for a stopped medication).")
    before_ref: str | None = Field(default=None, description="The order the patient was on at admission.")
    dosage: str | None = None
    before_dosage: str | None = None
    indication: str | None = None
    indication_ref: str | None = None
    date: str | None = None


class Discharge(BaseModel):
    """The latest encounter that ended in a discharge, and its medications compared with admission."""

    encounter: str
    start: str | None = None
    end: str | None = None
    reasons: list[str] = Field(default_factory=list)
    disposition: str | None = None
    listed: bool = Field(default=False, description="Whether the record holds discharge medication orders.")
    medications: list[DischargeMedication] = Field(default_factory=list)
    hospital_only: list[str] = Field(default_factory=list, description="Orders given during the stay only.")

    def refs(self) -> list[str]:
        """Every order a statement about the discharge may cite, in order."""
        found = [self.encounter]
        for m in self.medications:
            found += [r for r in (m.ref, m.before_ref, m.indication_ref) if r]
        return list(dict.fromkeys(found))


class Passage(BaseModel):
    """A passage of a guideline document, which a recommendation cites (clinical_notes.guidelines)."""

    id: str = Field(description="{document}#{section}@{version}: stable while the three are.")
    document: str
    title: str
    section: str
    version: str
    text: str
    source: str | None = Field(
        default=None, description="Where the document came from: a URL or FHIR reference."
    )
    licence: str | None = None

    @property
    def ref(self) -> str:
        """How a draft cites the passage."""
        return f"Guideline/{self.id}"


class ClinicalTimeline(BaseModel):
    """A patient's record condensed for a prompt; `omitted` counts what the token budget left out."""

    patient: PatientFacts
    problems: list[Problem] = Field(default_factory=list)
    medications: list[Medication] = Field(default_factory=list)
    allergies: list[Allergy] = Field(default_factory=list)
    vitals: list[Series] = Field(default_factory=list)
    labs: list[Series] = Field(default_factory=list)
    encounters: list[EncounterItem] = Field(default_factory=list)
    procedures: list[Event] = Field(default_factory=list)
    immunizations: list[Event] = Field(default_factory=list)
    notes: list[Note] = Field(default_factory=list)
    presentations: list[Presentation] = Field(
        default_factory=list, description="Per encounter, newest first: what triage rules read."
    )
    discharge: Discharge | None = Field(
        default=None, description="The latest discharge and its medication changes, when the record has one."
    )
    guidelines: list[Passage] = Field(
        default_factory=list, description="Passages retrieved for this patient."
    )
    guideline_gaps: list[str] = Field(default_factory=list, description="Active problems no passage covers.")
    guidelines_checked: bool = Field(default=False, description="Whether a guideline library was searched.")
    omitted: dict[str, int] = Field(default_factory=dict)
    rejected: list[str] = Field(default_factory=list, description="Refs that failed validation.")
    keys: dict[str, str] = Field(
        default_factory=dict, description="Short citation key per FHIR reference, as the prompt shows it."
    )
    tokens: int | None = None
    token_budget: int | None = None

    def key(self, ref: str) -> str:
        """The citation key shown for a reference (the reference itself when it has none)."""
        return self.keys.get(ref, ref)

    def citation_keys(self) -> dict[str, str]:
        """Key → FHIR reference, for every reference the timeline shows."""
        return {self.key(ref): ref for ref in self.refs()}

    def sources(self) -> dict[str, Source]:
        """Every FHIR reference the timeline shows, with a label and date, in order of appearance."""
        found: dict[str, Source] = {self.patient.ref: Source("Patient", None)}

        def add(ref: str, label: str, when: str | None) -> None:
            found.setdefault(ref, Source(label, when))

        for p in self.problems:
            add(p.ref, p.name, p.onset)
        for a in self.allergies:
            add(a.ref, f"Allergy: {a.substance}", None)
        for med in self.medications:
            for ref in med.refs:
                add(ref, med.name, med.date)
        for series in (*self.vitals, *self.labs):
            for m in series_measurements(series):
                add(m.ref, series.name, m.date)
        for e in self.encounters:
            add(e.ref, e.type or e.encounter_class or "Encounter", e.start)
        for ev in (*self.procedures, *self.immunizations):
            add(ev.ref, ev.name, ev.date)
        for n in self.notes:
            add(n.ref, n.title, n.date)
        if self.discharge is not None:
            for change in self.discharge.medications:
                for order in (change.ref, change.before_ref):
                    if order:
                        add(order, change.name, change.date)
                if change.indication_ref:
                    add(change.indication_ref, change.indication or "Condition", None)
            add(self.discharge.encounter, "Encounter", self.discharge.start)
        for passage in self.guidelines:
            add(passage.ref, f"{passage.title}, {passage.section} ({passage.version})", None)
        return found

    def source_labels(self) -> dict[str, Source]:
        """The sources, plus the earlier records of each problem that composed statements cite."""
        found = self.sources()
        for p in self.problems:
            if p.first_ref:
                found.setdefault(p.first_ref, Source(p.name, p.first_onset))
            for ref in p.refs:
                found.setdefault(ref, Source(p.name, None))
        return found

    def refs(self) -> list[str]:
        """Every FHIR reference the timeline shows, in order of first appearance."""
        return list(self.sources())


_KEY_PREFIX = {
    "Patient": "PT",
    "Condition": "C",
    "AllergyIntolerance": "A",
    "MedicationRequest": "M",
    "MedicationStatement": "MS",
    "Medication": "MED",
    "Observation": "O",
    "Encounter": "E",
    "Procedure": "P",
    "Immunization": "I",
    "DocumentReference": "D",
    "DiagnosticReport": "R",
    "Guideline": "G",
}


# Every key a timeline can show, as a pattern: the same for every patient, so the server compiles the
# answer's grammar once per kind, not once per job (an enum of one patient's keys took ~5 s to compile).
_OTHER_PREFIXES = ("X", "T")  # X: a reference of no listed type; T: a visit transcript's turn
KEY_PATTERN = (
    "^(" + "|".join(sorted({*_KEY_PREFIX.values(), *_OTHER_PREFIXES}, key=len, reverse=True)) + ")[0-9]{1,5}$"
)


def assign_keys(refs: list[str]) -> dict[str, str]:
    """Short, stable keys ("O12") for references: UUID ids cost ~30 tokens each, a key about 3."""
    counts: dict[str, int] = {}
    keys = {}
    for ref in refs:
        prefix = _KEY_PREFIX.get(ref.split("/", 1)[0], "X")
        counts[prefix] = counts.get(prefix, 0) + 1
        keys[ref] = f"{prefix}{counts[prefix]}"
    return keys


def series_measurements(series: Series) -> list[Measurement]:
    """The latest, the latest abnormal (if separate) and the trend values of a series."""
    values = [series.latest]
    if series.latest_abnormal is not None:
        values.append(series.latest_abnormal)
    return values + series.trend


def when(value: str | None) -> datetime | None:
    """A timeline date or date-time as a naive datetime (None when absent or unreadable)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=None)
