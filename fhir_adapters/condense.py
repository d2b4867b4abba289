"""Record → ClinicalTimeline: pick, flag and order what a note needs; drop entered-in-error."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from fhir.resources.R4B.allergyintolerance import AllergyIntolerance
from fhir.resources.R4B.attachment import Attachment
from fhir.resources.R4B.codeableconcept import CodeableConcept
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

from clinical_notes.reference_ranges import default_range
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
from fhir_adapters.labels import is_ai_draft
from fhir_adapters.record import PatientRecord

ERROR = "entered-in-error"
ACTIVE_CONDITION = frozenset({"active", "recurrence", "relapse"})
ACTIVE_MEDICATION = frozenset({"active", "on-hold", "intended"})
ABNORMAL_CODES = frozenset({"H", "HH", "HU", "L", "LL", "LU", "A", "AA", "<", ">", "POS", "DET", "R"})
NORMAL_CODES = frozenset({"N", "NEG", "ND", "S"})
LOINC = "http://loinc.org"
BP_PANEL = "85354-9"
NOTE_TYPES = frozenset({"text/plain", "text/markdown", "text/html"})
_TAGS = re.compile(r"<[^>]+>")
R = TypeVar("R", bound=Resource)
T = TypeVar("T")


def condense(record: PatientRecord, today: date | None = None) -> ClinicalTimeline:
    """Build the full (unbudgeted) timeline of a record."""
    by_type: dict[str, list[Resource]] = defaultdict(list)
    for resource in record.resources.values():
        by_type[resource.get_resource_type()].append(resource)
    medications = {f"Medication/{m.id}": m for m in by_type["Medication"] if isinstance(m, FhirMedication)}
    timeline = ClinicalTimeline(
        patient=_patient(record, today or date.today()),
        problems=_merge_problems(
            _newest([_problem(c) for c in _live(by_type["Condition"], Condition)], lambda p: p.onset)
        ),
        medications=_merge_medications(
            _newest(
                [_med(m, medications) for m in _live(by_type["MedicationRequest"], MedicationRequest)]
                + [_med(m, medications) for m in _live(by_type["MedicationStatement"], MedicationStatement)],
                lambda m: m.date,
            )
        ),
        allergies=[_allergy(a) for a in _live(by_type["AllergyIntolerance"], AllergyIntolerance)],
        vitals=_series(_live(by_type["Observation"], Observation), "vital-signs"),
        labs=_series(_live(by_type["Observation"], Observation), "laboratory"),
        encounters=_newest(
            [_encounter(e) for e in _live(by_type["Encounter"], Encounter)], lambda e: e.start
        ),
        procedures=_newest([_procedure(p) for p in _live(by_type["Procedure"], Procedure)], lambda p: p.date),
        immunizations=_newest(
            [_immunization(i) for i in _live(by_type["Immunization"], Immunization)], lambda i: i.date
        ),
        notes=_newest(
            [n for n in _notes(by_type["DocumentReference"], by_type["DiagnosticReport"]) if n.text],
            lambda n: n.date,
        ),
        rejected=sorted(record.rejected),
    )
    from fhir_adapters.presentation import presentations  # it builds on this module's readers

    timeline.presentations = presentations(record, timeline)
    timeline.keys = assign_keys(timeline.refs())
    return timeline


def _live(resources: Iterable[Resource], model: type[R]) -> list[R]:
    """Resources of a type that are not entered-in-error."""
    return [r for r in resources if isinstance(r, model) and not _entered_in_error(r)]


def _entered_in_error(resource: Resource) -> bool:
    for attr in ("status", "docStatus"):
        if getattr(resource, attr, None) == ERROR:
            return True
    verification = getattr(resource, "verificationStatus", None)
    return isinstance(verification, CodeableConcept) and _code(verification) == ERROR


def _newest(items: list[T], key: Callable[[T], str | None]) -> list[T]:
    return sorted(items, key=lambda item: key(item) or "", reverse=True)


def text_of(concept: CodeableConcept | None) -> str:
    """The human label of a CodeableConcept."""
    if concept is None:
        return "unknown"
    if concept.text:
        return str(concept.text)
    for coding in concept.coding or []:
        if coding.display:
            return str(coding.display)
    for coding in concept.coding or []:
        if coding.code:
            return str(coding.code)
    return "unknown"


def _code(concept: CodeableConcept | None, system: str | None = None) -> str | None:
    for coding in (concept.coding or []) if concept else []:
        if coding.code and (system is None or coding.system == system):
            return str(coding.code)
    return None


def iso(value: Any) -> str | None:
    """A FHIR date/dateTime/instant as an ISO string (dates stay dates)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _num(value: Decimal | float | int | None) -> float | None:
    return None if value is None else float(value)


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
    status = _code(condition.clinicalStatus)
    return Problem(
        ref=f"Condition/{condition.id}",
        name=text_of(condition.code),
        code=_code(condition.code),
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
        kept = merged.setdefault(key, problem.model_copy(update={"refs": [], "first_onset": problem.onset}))
        kept.refs.append(problem.ref)
        if problem.onset and (kept.first_onset is None or problem.onset < kept.first_onset):
            kept.first_onset = problem.onset
    return list(merged.values())


def _merge_medications(medications: list[Medication]) -> list[Medication]:
    """One item per (drug, active): the newest order, with earlier orders' refs."""
    merged: dict[tuple[str, bool], Medication] = {}
    for med in medications:
        kept = merged.setdefault((med.name, med.active), med)
        if kept is not med:
            kept.earlier.append(med.ref)
    return list(merged.values())


def _med(
    resource: MedicationRequest | MedicationStatement, medications: dict[str, FhirMedication]
) -> Medication:
    ref = f"{resource.get_resource_type()}/{resource.id}"
    refs = [ref]
    name = text_of(resource.medicationCodeableConcept) if resource.medicationCodeableConcept else "unknown"
    target = resource.medicationReference.reference if resource.medicationReference else None
    if target and target.startswith("#"):
        contained = {c.id: c for c in resource.contained or []}
        medication = contained.get(target[1:])
        if isinstance(medication, FhirMedication):
            name = text_of(medication.code)
    elif target:
        medication = medications.get(target)
        if medication is not None:
            name = text_of(medication.code)
            refs.append(target)
        elif resource.medicationReference and resource.medicationReference.display:
            name = str(resource.medicationReference.display)
    if isinstance(resource, MedicationRequest):
        when = iso(resource.authoredOn)
        dosages = resource.dosageInstruction or []
    else:
        when = iso(
            resource.effectiveDateTime
            or (resource.effectivePeriod.start if resource.effectivePeriod else None)
        )
        dosages = resource.dosage or []
    dosage = "; ".join(str(d.text) for d in dosages if d.text) or None
    return Medication(
        ref=ref,
        refs=refs,
        name=name,
        active=resource.status in ACTIVE_MEDICATION,
        status=str(resource.status),
        date=when,
        dosage=dosage,
    )


def _allergy(allergy: AllergyIntolerance) -> Allergy:
    status = _code(allergy.clinicalStatus)
    reactions = [text_of(m) for reaction in allergy.reaction or [] for m in reaction.manifestation or []]
    return Allergy(
        ref=f"AllergyIntolerance/{allergy.id}",
        substance=text_of(allergy.code),
        active=status in (None, "active"),
        criticality=allergy.criticality,
        category=[str(c) for c in allergy.category or []],
        reactions=reactions,
    )


def _category(observation: Observation) -> set[str]:
    return {str(c.code) for cat in observation.category or [] for c in cat.coding or [] if c.code}


def _series(observations: list[Observation], category: str) -> list[Series]:
    grouped: dict[str, list[tuple[str, Measurement]]] = defaultdict(list)
    names: dict[str, str] = {}
    for obs in observations:
        if category not in _category(obs) or obs.status in ("cancelled", "preliminary"):
            continue
        for key, name, measurement in _measurements(obs):
            grouped[key].append((measurement.date or "", measurement))
            names.setdefault(key, name)
    result = []
    for key, dated in grouped.items():
        values = [m for _, m in sorted(dated, key=lambda pair: pair[0], reverse=True)]
        latest, older = values[0], values[1:]
        abnormal = next((m for m in older if m.abnormal), None) if not latest.abnormal else None
        result.append(Series(name=names[key], code=key, latest=latest, latest_abnormal=abnormal, trend=older))
    return sorted(result, key=lambda s: (not s.latest.abnormal, s.name))


def _measurements(obs: Observation) -> list[tuple[str, str, Measurement]]:
    ref = f"Observation/{obs.id}"
    when = iso(
        obs.effectiveDateTime or (obs.effectivePeriod.start if obs.effectivePeriod else None) or obs.issued
    )
    parts: list[tuple[CodeableConcept, Any, list[Any], list[Any]]] = []
    if obs.component and (_code(obs.code, LOINC) == BP_PANEL or _value_of(obs) is None):
        parts = [(c.code, c, c.interpretation or [], c.referenceRange or []) for c in obs.component]
    else:
        parts = [(obs.code, obs, obs.interpretation or [], obs.referenceRange or [])]
    found = []
    for code, holder, interpretations, ranges in parts:
        value = _value_of(holder)
        if value is None:
            continue
        number, text, unit = value
        key = _code(code, LOINC) or _code(code) or text_of(code)
        m = Measurement(ref=ref, date=when, value=number, text=text, unit=unit)
        m.interpretation = next((_code(i) for i in interpretations if _code(i)), None)
        if ranges:
            m.low = _num(ranges[0].low.value) if ranges[0].low else None
            m.high = _num(ranges[0].high.value) if ranges[0].high else None
            m.range_source = "record"
        elif number is not None:
            fallback = default_range(key, unit)
            if fallback:
                m.low, m.high = fallback
                m.range_source = "default"
        m.abnormal = _is_abnormal(m)
        found.append((key, text_of(code), m))
    return found


def _value_of(holder: Any) -> tuple[float | None, str | None, str | None] | None:
    quantity = getattr(holder, "valueQuantity", None)
    if quantity is not None and quantity.value is not None:
        return _num(quantity.value), None, quantity.unit or quantity.code
    concept = getattr(holder, "valueCodeableConcept", None)
    if concept is not None:
        return None, text_of(concept), None
    for attr in ("valueString", "valueInteger", "valueBoolean"):
        value = getattr(holder, attr, None)
        if value is not None:
            return (_num(value), None, None) if attr == "valueInteger" else (None, str(value), None)
    return None


def _is_abnormal(m: Measurement) -> bool | None:
    code = (m.interpretation or "").upper()
    if code in ABNORMAL_CODES:
        return True
    if code in NORMAL_CODES:
        return False
    if m.value is None or (m.low is None and m.high is None):
        return None
    return (m.low is not None and m.value < m.low) or (m.high is not None and m.value > m.high)


def _encounter(encounter: Encounter) -> EncounterItem:
    period = encounter.period
    return EncounterItem(
        ref=f"Encounter/{encounter.id}",
        kind=encounter.class_fhir.code if encounter.class_fhir else None,
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
    for doc in _live(documents, DocumentReference):
        if is_ai_draft(doc):
            continue  # never feed our own unapproved output back in as a source
        text = "\n".join(_decode(c.attachment) for c in doc.content or [] if c.attachment)
        title = text_of(doc.type) if doc.type else (doc.description or "Document")
        notes.append(
            Note(ref=f"DocumentReference/{doc.id}", title=str(title), date=iso(doc.date), text=text.strip())
        )
    for report in _live(reports, DiagnosticReport):
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
