"""MedicationRequest and MedicationStatement → timeline medications: the drug's name, status, date, dosage."""

from __future__ import annotations

from fhir.resources.R4B.dosage import Dosage
from fhir.resources.R4B.medication import Medication as FhirMedication
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.medicationstatement import MedicationStatement

from clinical_notes.timeline import Medication
from fhir_adapters.readers import as_float, iso, text_of

ACTIVE_MEDICATION = frozenset({"active", "on-hold", "intended"})


def medication_item(
    resource: MedicationRequest | MedicationStatement, medications: dict[str, FhirMedication]
) -> Medication:
    """An order or statement as a timeline medication: the drug's name (from the Medication it names), its
    status, date and dosage as recorded."""
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
    dosage = "; ".join(dosage_text(d) for d in dosages) or None
    return Medication(
        ref=ref,
        refs=refs,
        name=name,
        active=resource.status in ACTIVE_MEDICATION,
        status=str(resource.status),
        date=when,
        dosage=dosage,
    )


_TIMES = {1: "once", 2: "twice", 3: "three times", 4: "four times"}
_PER = {"h": "hourly", "d": "daily", "wk": "weekly", "mo": "monthly", "a": "yearly"}
_EVERY = {"min": "minutes", "h": "hours", "d": "days", "wk": "weeks", "mo": "months"}


def dosage_text(dosage: Dosage) -> str:
    """A dosage as recorded: its text, else dose, frequency, route and as-needed from its structure."""
    if dosage.text:
        return str(dosage.text)
    parts = []
    dose = next((d.doseQuantity for d in dosage.doseAndRate or [] if d.doseQuantity), None)
    if dose is not None and dose.value is not None:
        unit = dose.unit or dose.code
        # Without a unit the number stays after its word, where the verifier does not read it as a quantity.
        parts.append(f"{as_float(dose.value):g} {unit}" if unit else f"dose {as_float(dose.value):g}")
    repeat = dosage.timing.repeat if dosage.timing else None
    if repeat is not None and repeat.frequency and repeat.period and repeat.periodUnit:
        period = as_float(repeat.period) or 1
        times = _TIMES.get(repeat.frequency, f"{repeat.frequency} times")
        if period == 1 and repeat.periodUnit in _PER:
            parts.append(f"{times} {_PER[repeat.periodUnit]}")
        elif repeat.periodUnit in _EVERY:
            parts.append(f"{times} every {period:g} {_EVERY[repeat.periodUnit]}")
    if dosage.route is not None:
        parts.append(text_of(dosage.route).lower())
    if dosage.asNeededBoolean or dosage.asNeededCodeableConcept is not None:
        parts.append("as needed")
    return ", ".join(parts)
