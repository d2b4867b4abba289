"""The latest discharge of a record and its medications, compared between admission and discharge.

The encounter: the newest finished stay (Encounter.class IMP, ACUTE, NONAC, OBSENC or SS) with an end, or any
finished encounter that records a discharge disposition. At admission: the patient's own medications, orders
that are not inpatient or discharge orders (MedicationRequest.category, HL7 medicationrequest-category) and
MedicationStatements, active or on hold when the stay began (a stopped order counts when it was written in
the year before: it may have been stopped at discharge). At discharge: the discharge orders of that encounter.
A drug is the same by RxNorm code, else by its name; it is changed when the dose or the frequency both lists
record differ. Indications: the order's reasonReference (the Condition's name) or reasonCode.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.medication import Medication as FhirMedication
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.resource import Resource

from clinical_notes.timeline import Discharge, DischargeMedication, when
from fhir_adapters.medications import medication_item
from fhir_adapters.readers import code_of, iso, live, text_of
from fhir_adapters.record import PatientRecord

STAYS = frozenset({"IMP", "ACUTE", "NONAC", "OBSENC", "SS"})
HOSPITAL = frozenset({"inpatient", "discharge"})
AT_ADMISSION = frozenset({"active", "on-hold"})
NOT_ORDERS = frozenset({"cancelled", "entered-in-error", "draft"})
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
STOPPED_WINDOW = timedelta(days=365)
Order = MedicationRequest | MedicationStatement


def preferred_language(patient: Patient | None) -> tuple[str | None, str | None]:
    """The BCP-47 code and name of the patient's preferred language (else the first one recorded)."""
    found = list(patient.communication or []) if patient is not None else []
    found.sort(key=lambda c: not c.preferred)
    for communication in found:
        codes = [c for c in communication.language.coding or [] if c.code]
        if codes:
            return str(codes[0].code), codes[0].display or communication.language.text
        if communication.language.text:
            return None, str(communication.language.text)
    return None, None


def _category(order: Order) -> str | None:
    for concept in ([order.category] if isinstance(order, MedicationStatement) else order.category) or []:
        if concept is not None:
            code = code_of(concept)
            if code:
                return code
    return None


def _encounter(order: Order) -> str | None:
    reference = order.encounter if isinstance(order, MedicationRequest) else order.context
    return str(reference.reference) if reference is not None and reference.reference else None


def _started(order: Order) -> str | None:
    if isinstance(order, MedicationRequest):
        return iso(order.authoredOn)
    return iso(order.effectiveDateTime or (order.effectivePeriod.start if order.effectivePeriod else None))


def _drug(order: Order, medications: dict[str, FhirMedication], name: str) -> str:
    concept = order.medicationCodeableConcept
    target = order.medicationReference.reference if order.medicationReference else None
    if concept is None and target in medications:
        concept = medications[str(target)].code
    code = code_of(concept, RXNORM) if concept is not None else None
    return f"rxnorm:{code}" if code else name.casefold().strip()


def _dose(order: Order) -> tuple[tuple[float, str] | None, tuple[Any, ...] | None]:
    """The first dosage's dose (value, unit) and frequency (times per period), each None when not recorded."""
    dosages = order.dosageInstruction if isinstance(order, MedicationRequest) else order.dosage
    if not dosages:
        return None, None
    first = dosages[0]
    dose = next((d.doseQuantity for d in first.doseAndRate or [] if d.doseQuantity), None)
    amount = (
        (float(dose.value), str(dose.unit or dose.code or "")) if dose and dose.value is not None else None
    )
    repeat = first.timing.repeat if first.timing else None
    frequency = None
    if repeat is not None and repeat.frequency and repeat.periodUnit:
        frequency = (repeat.frequency, float(repeat.period or 1), repeat.periodUnit)
    return amount, frequency


def _reason(order: Order, conditions: dict[str, Condition]) -> tuple[str | None, str | None]:
    """What the order is for: the Condition it names (with its reference), else its reason code's text."""
    references = order.reasonReference or []
    for reference in references:
        condition = conditions.get(str(reference.reference))
        if condition is not None:
            return text_of(condition.code), str(reference.reference)
    codes = order.reasonCode or []
    return (text_of(codes[0]), None) if codes else (None, None)


def _discharge_encounter(encounters: Iterable[Encounter]) -> Encounter | None:
    ended = []
    for encounter in encounters:
        stay = encounter.class_fhir is not None and encounter.class_fhir.code in STAYS
        disposition = encounter.hospitalization is not None and encounter.hospitalization.dischargeDisposition
        if (
            encounter.status == "finished"
            and encounter.period
            and encounter.period.end
            and (stay or disposition)
        ):
            ended.append(encounter)
    return max(ended, key=lambda e: iso(e.period.end) or "", default=None)  # type: ignore[union-attr]


def discharge_of(record: PatientRecord) -> Discharge | None:
    """The latest discharge with its medications compared, or None when no encounter ended in one."""
    by_type: dict[str, list[Resource]] = {}
    for resource in record.resources.values():
        by_type.setdefault(resource.get_resource_type(), []).append(resource)
    encounter = _discharge_encounter(live(by_type.get("Encounter", []), Encounter))
    if encounter is None:
        return None
    ref = f"Encounter/{encounter.id}"
    start = iso(encounter.period.start) if encounter.period else None
    medications = {
        f"Medication/{m.id}": m for m in by_type.get("Medication", []) if isinstance(m, FhirMedication)
    }
    conditions = {f"Condition/{c.id}": c for c in live(by_type.get("Condition", []), Condition)}
    orders: list[Order] = [
        *live(by_type.get("MedicationRequest", []), MedicationRequest),
        *live(by_type.get("MedicationStatement", []), MedicationStatement),
    ]
    began = when(start)
    admission: dict[str, tuple[Order, Any]] = {}
    discharge: dict[str, tuple[Order, Any]] = {}
    hospital: dict[str, str] = {}
    for order in sorted(orders, key=lambda o: _started(o) or ""):
        if order.status in NOT_ORDERS:
            continue
        item = medication_item(order, medications)
        key = _drug(order, medications, item.name)
        category, linked = _category(order), _encounter(order)
        written = when(_started(order))
        if category == "discharge" and linked == ref:
            discharge[key] = (order, item)
        elif category == "inpatient" and linked == ref:
            hospital[key] = item.name
        elif category not in HOSPITAL and written is not None and began is not None:
            recent_stop = order.status == "stopped" and written >= began - STOPPED_WINDOW
            if (written <= began or linked == ref) and (order.status in AT_ADMISSION or recent_stop):
                admission[key] = (order, item)
    facts = Discharge(
        encounter=ref,
        start=start,
        end=iso(encounter.period.end) if encounter.period else None,
        reasons=[text_of(r) for r in encounter.reasonCode or []],
        disposition=text_of(encounter.hospitalization.dischargeDisposition)
        if encounter.hospitalization and encounter.hospitalization.dischargeDisposition
        else None,
        listed=bool(discharge),
    )
    if not discharge:
        return facts
    for key, (order, item) in discharge.items():
        before = admission.get(key)
        reason, reason_ref = _reason(order, conditions)
        if reason is None and before is not None:
            reason, reason_ref = _reason(before[0], conditions)
        change = "started"
        if before is not None:
            (dose, frequency), (old_dose, old_frequency) = _dose(order), _dose(before[0])
            moved = (dose and old_dose and dose != old_dose) or (
                frequency and old_frequency and frequency != old_frequency
            )
            change = "changed" if moved else "continued"
        facts.medications.append(
            DischargeMedication(
                name=item.name,
                change=change,
                ref=item.ref,
                before_ref=before[1].ref if before else None,
                dosage=item.dosage,
                before_dosage=before[1].dosage if before else None,
                indication=reason,
                indication_ref=reason_ref,
                date=item.date,
            )
        )
    for key, (order, item) in admission.items():
        if key not in discharge:
            reason, reason_ref = _reason(order, conditions)
            facts.medications.append(
                DischargeMedication(
                    name=item.name,
                    change="stopped",
                    before_ref=item.ref,
                    before_dosage=item.dosage,
                    indication=reason,
                    indication_ref=reason_ref,
                    date=item.date,
                )
            )
    facts.hospital_only = sorted({name for key, name in hospital.items() if key not in discharge})
    return facts
