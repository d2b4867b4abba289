"""Record → one Presentation per encounter: what a triage nurse sees of it.

The complaint, from every place a record keeps it: Encounter.reasonCode and reasonReference, a chief-complaint
Observation (LOINC 8661-1 and kin), the "Chief complaint:" line of an ED triage note (54094-8), and the
encounter's diagnoses (Encounter.diagnosis other than comorbidities, Conditions of category
encounter-diagnosis pointing at it). The readings: the first value of each observation code during the
encounter (linked by Observation.encounter, or, when unlinked, taken between its start and end), laboratory
results left out (a triage nurse has none). Age at the encounter's start; pregnancy when recorded.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.resource import Resource

from clinical_notes.timeline import ClinicalTimeline, Complaint, Measurement, Presentation
from clinical_notes.timeline import when as parse_when
from clinical_notes.vitals import CHIEF_COMPLAINT, PREGNANCY_STATUS, PRESENTATION_CODES
from fhir_adapters.readers import categories, code_of, iso, live, measurements, text_of
from fhir_adapters.record import PatientRecord

TRIAGE_NOTE = "54094-8"
COMORBIDITY = "CM"
OPEN_ENDED = timedelta(hours=24)
PREGNANCY_SPAN = timedelta(days=300)
PREGNANT = frozenset({"77386006", "72892002", "47200007", "16356006"})
NOT_PREGNANT = frozenset({"60001007"})
Within = Callable[[str | None, datetime | None], bool]
_COMPLAINT_LINE = re.compile(
    r"^\s*(?:chief complaint|presenting complaint|reason for visit|complaint|cc)\s*[:\-]\s*(.+?)\s*$",
    re.IGNORECASE | re.MULTILINE,
)


def _ref(reference: Reference | None) -> str | None:
    return str(reference.reference) if reference is not None and reference.reference else None


def _codes(concept: CodeableConcept | None) -> set[str]:
    return {str(c.code) for c in (concept.coding or []) if c.code} if concept is not None else set()


def presentations(record: PatientRecord, timeline: ClinicalTimeline) -> list[Presentation]:
    """Per encounter, newest first: complaints, first readings, age and pregnancy."""
    by_type: dict[str, list[Resource]] = defaultdict(list)
    for resource in record.resources.values():
        by_type[resource.get_resource_type()].append(resource)
    linked: dict[str | None, list[Observation]] = defaultdict(list)
    for obs in live(by_type["Observation"], Observation):
        codes = _codes(obs.code) | {code for c in obs.component or [] for code in _codes(c.code)}
        if codes & PRESENTATION_CODES and "laboratory" not in categories(obs):
            linked[_ref(obs.encounter)].append(obs)
    unlinked = [(o, _observed(o)) for o in linked.pop(None, [])]
    conditions = live(by_type["Condition"], Condition)
    diagnosed: dict[str | None, list[Condition]] = defaultdict(list)
    for condition in conditions:
        if any(code_of(category) == "encounter-diagnosis" for category in condition.category or []):
            diagnosed[_ref(condition.encounter)].append(condition)
    pregnancies = [c for c in conditions if _codes(c.code) & PREGNANT]
    notes = {n.ref: n.text for n in timeline.notes}
    documents = [
        d
        for d in live(by_type["DocumentReference"], DocumentReference)
        if TRIAGE_NOTE in _codes(d.type) and f"DocumentReference/{d.id}" in notes
    ]
    birth = record.patient.birthDate if record.patient is not None else None
    found = []
    for encounter in live(by_type["Encounter"], Encounter):
        ref = f"Encounter/{encounter.id}"
        period = encounter.period
        start, end = (iso(period.start), iso(period.end)) if period else (None, None)
        within = _window(ref, parse_when(start), parse_when(end))
        own = linked.get(ref, []) + [o for o, when in unlinked if within(None, when)]
        presentation = Presentation(
            encounter=ref,
            encounter_class=encounter.class_fhir.code if encounter.class_fhir else None,
            start=start,
            part_of=_ref(encounter.partOf),
            age_days=_age_days(birth, parse_when(start)),
            complaints=[
                *_reasons(encounter, record),
                *_chief_complaints(own),
                *_triage_notes(ref, documents, notes, within),
                *_diagnoses(encounter, record, diagnosed.get(ref, [])),
            ],
            readings=_first_readings(own),
        )
        unique: dict[tuple[str, str], Complaint] = {}
        for complaint in presentation.complaints:
            unique.setdefault((complaint.source, complaint.text.lower()), complaint)
        presentation.complaints = list(unique.values())
        _pregnancy(presentation, own, pregnancies, parse_when(start))
        found.append(presentation)
    return sorted(found, key=lambda p: p.start or "", reverse=True)


def _window(ref: str, start: datetime | None, end: datetime | None) -> Within:
    """A test: does a resource linked to `encounter`, taken at `when`, belong to this encounter?"""
    last = end or (start + OPEN_ENDED if start else None)

    def within(encounter: str | None, when: datetime | None) -> bool:
        if encounter is not None:
            return encounter == ref
        return start is not None and when is not None and last is not None and start <= when <= last

    return within


def _observed(obs: Observation) -> datetime | None:
    when = obs.effectiveDateTime or (obs.effectivePeriod.start if obs.effectivePeriod else None) or obs.issued
    return parse_when(iso(when))


def _age_days(birth: Any, start: datetime | None) -> int | None:
    if not isinstance(birth, date) or start is None:
        return None
    return (start.date() - birth).days


def _first_readings(observations: list[Observation]) -> dict[str, Measurement]:
    readings: dict[str, Measurement] = {}
    for obs in observations:
        if obs.status in ("cancelled", "preliminary"):
            continue
        # Triage reads the values against its own age bands, not the default adult ranges.
        for key, _, measurement in measurements(obs, adult=False):
            kept = readings.get(key)
            if kept is None or (measurement.date or "") < (kept.date or ""):
                readings[key] = measurement
    return readings


def _reasons(encounter: Encounter, record: PatientRecord) -> list[Complaint]:
    ref = f"Encounter/{encounter.id}"
    found = [
        Complaint(ref=ref, text=text_of(reason), code=code_of(reason), source="reason for visit")
        for reason in encounter.reasonCode or []
    ]
    for reference in encounter.reasonReference or []:
        target = record.resources.get(_ref(reference) or "")
        concept = getattr(target, "code", None)
        if target is not None and isinstance(concept, CodeableConcept):
            found.append(
                Complaint(
                    ref=f"{target.get_resource_type()}/{target.id}",
                    text=text_of(concept),
                    code=code_of(concept),
                    source="reason for visit",
                )
            )
    return found


def _chief_complaints(observations: list[Observation]) -> list[Complaint]:
    return [
        Complaint(ref=m.ref, text=m.text, source="chief complaint")
        for obs in observations
        if _codes(obs.code) & set(CHIEF_COMPLAINT)
        for _, _, m in measurements(obs, adult=False)
        if m.text
    ]


def _triage_notes(
    ref: str, documents: list[DocumentReference], notes: dict[str, str], within: Within
) -> list[Complaint]:
    """The labelled complaint line of each ED triage note of the encounter; the rest of a note is not read."""
    found = []
    for doc in documents:
        doc_ref = f"DocumentReference/{doc.id}"
        linked = [_ref(e) for e in (doc.context.encounter or [])] if doc.context else []
        if ref in linked or (not linked and within(None, parse_when(iso(doc.date)))):
            found += [
                Complaint(ref=doc_ref, text=line, source="triage note")
                for line in _COMPLAINT_LINE.findall(notes[doc_ref])
            ]
    return found


def _diagnoses(encounter: Encounter, record: PatientRecord, diagnosed: list[Condition]) -> list[Complaint]:
    """Encounter.diagnosis other than comorbidities, and the encounter-diagnosis Conditions pointing at it."""
    refs = [
        _ref(d.condition)
        for d in encounter.diagnosis or []
        if code_of(d.use) != COMORBIDITY and _ref(d.condition)
    ]
    refs += [f"Condition/{c.id}" for c in diagnosed]
    found = []
    for condition_ref in dict.fromkeys(r for r in refs if r):
        condition = record.resources.get(condition_ref)
        if isinstance(condition, Condition) and condition.code is not None:
            found.append(
                Complaint(
                    ref=condition_ref,
                    text=text_of(condition.code),
                    code=code_of(condition.code),
                    source="encounter diagnosis",
                )
            )
    return found


def _pregnancy(
    presentation: Presentation,
    observations: list[Observation],
    conditions: list[Condition],
    start: datetime | None,
) -> None:
    """Pregnancy: an observation of the encounter first, else a pregnancy Condition (of those given) current
    at its start."""
    for obs in observations:
        if _codes(obs.code) & set(PREGNANCY_STATUS) and obs.valueCodeableConcept is not None:
            code = code_of(obs.valueCodeableConcept)
            text = text_of(obs.valueCodeableConcept).lower()
            if code in PREGNANT or code in NOT_PREGNANT or "pregnan" in text:
                presentation.pregnant = code in PREGNANT or (code is None and "not" not in text)
                presentation.pregnancy_ref = f"Observation/{obs.id}"
                return
    if start is None:
        return
    for condition in conditions:
        onset = parse_when(iso(condition.onsetDateTime or condition.recordedDate))
        abated = parse_when(iso(condition.abatementDateTime))
        if (
            onset is not None
            and start - PREGNANCY_SPAN <= onset <= start
            and (abated is None or abated >= start)
        ):
            presentation.pregnant, presentation.pregnancy_ref = True, f"Condition/{condition.id}"
            return
