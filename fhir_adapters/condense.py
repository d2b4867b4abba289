"""Record → ClinicalTimeline: pick, flag and order what a note needs; drop entered-in-error."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime
from typing import TypeVar

from fhir.resources.R4B.allergyintolerance import AllergyIntolerance
from fhir.resources.R4B.attachment import Attachment
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.immunization import Immunization
from fhir.resources.R4B.medication import Medication as FhirMedication
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.procedure import Procedure
from fhir.resources.R4B.resource import Resource

from clinical_notes.reference_ranges import VITAL_SIGNS
from clinical_notes.timeline import (
    Allergy,
    ClinicalTimeline,
    EncounterItem,
    Event,
    Measurement,
    Medication,
    Note,
    PatientFacts,
    Problem,
    Series,
    assign_keys,
)
from fhir_adapters.discharge import discharge_of, preferred_language
from fhir_adapters.labels import is_ai_draft
from fhir_adapters.medications import medication_item
from fhir_adapters.presentation import presentations
from fhir_adapters.readers import (
    LOINC,
    categories,
    code_of,
    iso,
    live,
    measurements,
    text_of,
)
from fhir_adapters.record import PatientRecord

ACTIVE_CONDITION = frozenset({"active", "recurrence", "relapse"})
ADULT_AGE = 18
# Identifying answers some sources file as laboratory results (56799-0 Address): never a note's business.
NOT_FOR_NOTES = frozenset({"56799-0"})
NOTE_TYPES = frozenset({"text/plain", "text/markdown", "text/html"})
_TAGS = re.compile(r"<[^>]+>")
T = TypeVar("T")


def condense(
    record: PatientRecord, today: date | None = None, *, skip: frozenset[str] = frozenset()
) -> ClinicalTimeline:
    """Build the full (unbudgeted) timeline of a record; `skip`: documents left out of its notes (visit
    transcripts, which a prompt shows as turns)."""
    by_type: dict[str, list[Resource]] = defaultdict(list)
    for resource in record.resources.values():
        by_type[resource.get_resource_type()].append(resource)
    medications = {f"Medication/{m.id}": m for m in by_type["Medication"] if isinstance(m, FhirMedication)}
    patient = _patient(record, today or date.today())
    adult = patient.age_years is None or patient.age_years >= ADULT_AGE
    observations = [
        o for o in live(by_type["Observation"], Observation) if code_of(o.code, LOINC) not in NOT_FOR_NOTES
    ]
    timeline = ClinicalTimeline(
        patient=patient,
        problems=_merge_problems(
            _newest([_problem(c) for c in live(by_type["Condition"], Condition)], lambda p: p.onset)
        ),
        medications=_merge_medications(
            _newest(
                [
                    medication_item(m, medications)
                    for m in live(by_type["MedicationRequest"], MedicationRequest)
                ]
                + [
                    medication_item(m, medications)
                    for m in live(by_type["MedicationStatement"], MedicationStatement)
                ],
                lambda m: m.date,
            )
        ),
        allergies=[_allergy(a) for a in live(by_type["AllergyIntolerance"], AllergyIntolerance)],
        vitals=_series([o for o in observations if _is_vital(o)], adult),
        labs=_series([o for o in observations if "laboratory" in categories(o) and not _is_vital(o)], adult),
        encounters=_newest([_encounter(e) for e in live(by_type["Encounter"], Encounter)], lambda e: e.start),
        procedures=_newest([_procedure(p) for p in live(by_type["Procedure"], Procedure)], lambda p: p.date),
        immunizations=_newest(
            [_immunization(i) for i in live(by_type["Immunization"], Immunization)], lambda i: i.date
        ),
        notes=_newest(
            [
                n
                for n in _notes(by_type["DocumentReference"], by_type["DiagnosticReport"])
                if n.text and n.ref not in skip
            ],
            lambda n: n.date,
        ),
        rejected=sorted(record.rejected),
    )
    timeline.presentations = presentations(record, timeline)
    timeline.discharge = discharge_of(record)
    timeline.patient.language, timeline.patient.language_name = preferred_language(record.patient)
    timeline.keys = assign_keys(timeline.refs())
    return timeline


def _newest(items: list[T], key: Callable[[T], str | None]) -> list[T]:
    return sorted(items, key=lambda item: key(item) or "", reverse=True)


def _patient(record: PatientRecord, today: date) -> PatientFacts:
    patient = record.patient
    facts = PatientFacts(ref=f"Patient/{record.patient_id}")
    if patient is None:
        return facts
    facts.sex = patient.gender
    birth = patient.birthDate
    if isinstance(birth, date):
        end = today
        if isinstance(patient.deceasedDateTime, datetime):
            end = patient.deceasedDateTime.date()
        facts.age_years = end.year - birth.year - ((end.month, end.day) < (birth.month, birth.day))
    facts.deceased = bool(patient.deceasedBoolean or patient.deceasedDateTime)
    return facts


def _problem(condition: Condition) -> Problem:
    status = code_of(condition.clinicalStatus)
    return Problem(
        ref=f"Condition/{condition.id}",
        name=text_of(condition.code),
        code=code_of(condition.code),
        active=status in ACTIVE_CONDITION if status else condition.abatementDateTime is None,
        clinical_status=status,
        onset=iso(
            condition.onsetDateTime or (condition.onsetPeriod.start if condition.onsetPeriod else None)
        ),
        abatement=iso(condition.abatementDateTime),
    )


def _merge_problems(problems: list[Problem]) -> list[Problem]:
    """One item per (code, active): the newest Condition, with every repeat's ref and the first onset."""
    merged: dict[tuple[str, bool], Problem] = {}
    for problem in problems:
        key = (problem.code or problem.name, problem.active)
        kept = merged.setdefault(
            key,
            problem.model_copy(update={"refs": [], "first_onset": problem.onset, "first_ref": problem.ref}),
        )
        kept.refs.append(problem.ref)
        if problem.onset and (kept.first_onset is None or problem.onset < kept.first_onset):
            kept.first_onset, kept.first_ref = problem.onset, problem.ref
    return list(merged.values())


def _merge_medications(medications: list[Medication]) -> list[Medication]:
    """One item per (drug, active): the newest order, with earlier orders' refs."""
    merged: dict[tuple[str, bool], Medication] = {}
    for med in medications:
        kept = merged.setdefault((med.name, med.active), med)
        if kept is not med:
            kept.earlier.append(med.ref)
    return list(merged.values())


def _allergy(allergy: AllergyIntolerance) -> Allergy:
    status = code_of(allergy.clinicalStatus)
    reactions = [text_of(m) for reaction in allergy.reaction or [] for m in reaction.manifestation or []]
    return Allergy(
        ref=f"AllergyIntolerance/{allergy.id}",
        substance=text_of(allergy.code),
        active=status in (None, "active"),
        criticality=allergy.criticality,
        category=[str(c) for c in allergy.category or []],
        reactions=reactions,
    )


def _is_vital(observation: Observation) -> bool:
    """Vital signs by category or by code (some sources file blood pressure under laboratory)."""
    return "vital-signs" in categories(observation) or code_of(observation.code, LOINC) in VITAL_SIGNS


def _series(observations: list[Observation], adult: bool) -> list[Series]:
    grouped: dict[str, list[tuple[str, Measurement]]] = defaultdict(list)
    names: dict[str, str] = {}
    for obs in observations:
        if obs.status in ("cancelled", "preliminary"):
            continue
        for key, name, measurement in measurements(obs, adult):
            grouped[key].append((measurement.date or "", measurement))
            names.setdefault(key, name)
    result = []
    for key, dated in grouped.items():
        values = [m for _, m in sorted(dated, key=lambda pair: pair[0], reverse=True)]
        latest, older = values[0], values[1:]
        abnormal = next((m for m in older if m.abnormal), None) if not latest.abnormal else None
        result.append(Series(name=names[key], code=key, latest=latest, latest_abnormal=abnormal, trend=older))
    return sorted(result, key=lambda s: (not s.latest.abnormal, s.name))


def _encounter(encounter: Encounter) -> EncounterItem:
    period = encounter.period
    return EncounterItem(
        ref=f"Encounter/{encounter.id}",
        encounter_class=encounter.class_fhir.code if encounter.class_fhir else None,
        type=text_of(encounter.type[0]) if encounter.type else None,
        start=iso(period.start) if period else None,
        end=iso(period.end) if period else None,
        reasons=[text_of(r) for r in encounter.reasonCode or []],
        status=encounter.status,
    )


def _procedure(procedure: Procedure) -> Event:
    when = procedure.performedDateTime or (
        procedure.performedPeriod.start if procedure.performedPeriod else None
    )
    return Event(
        ref=f"Procedure/{procedure.id}", name=text_of(procedure.code), date=iso(when), status=procedure.status
    )


def _immunization(immunization: Immunization) -> Event:
    return Event(
        ref=f"Immunization/{immunization.id}",
        name=text_of(immunization.vaccineCode),
        date=iso(immunization.occurrenceDateTime),
        status=immunization.status,
    )


def _notes(documents: list[Resource], reports: list[Resource]) -> list[Note]:
    notes = []
    for doc in live(documents, DocumentReference):
        if is_ai_draft(doc):
            continue  # never feed our own unapproved output back in as a source
        text = "\n".join(_decode(c.attachment) for c in doc.content or [] if c.attachment)
        title = text_of(doc.type) if doc.type else (doc.description or "Document")
        notes.append(
            Note(ref=f"DocumentReference/{doc.id}", title=str(title), date=iso(doc.date), text=text.strip())
        )
    for report in live(reports, DiagnosticReport):
        parts = [_decode(a) for a in report.presentedForm or []]
        if report.conclusion:
            parts.append(str(report.conclusion))
        when = report.effectiveDateTime or report.issued
        notes.append(
            Note(
                ref=f"DiagnosticReport/{report.id}",
                title=text_of(report.code),
                date=iso(when),
                text="\n".join(p for p in parts if p).strip(),
            )
        )
    return notes


def _decode(attachment: Attachment) -> str:
    if not attachment.data or (attachment.contentType or "text/plain").split(";")[0] not in NOTE_TYPES:
        return ""
    data = attachment.data  # fhir.resources has already base64-decoded it
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else str(data)
    if (attachment.contentType or "").startswith("text/html"):
        text = _TAGS.sub(" ", text)
    return text
