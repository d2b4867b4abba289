"""The patient in context's compartment: which of some references are that patient's, asked before reading.

A reviewer's page shows only what belongs to the patient the EHR launched it for. Whether a cited resource
does is asked of the FHIR server with a search scoped to that patient (`{type}?_id=...&patient=Patient/p`,
`Prefer: handling=strict` so a server that does not know the parameter refuses instead of ignoring it), so
another patient's resource is never fetched, shown or audited; what comes back is checked once more here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fhir_adapters.client import FhirClient, json_body
from fhir_adapters.references import Reference, fhir_id, parse_reference
from services.core.errors import FhirNotFound, InputError, OperationOutcomeError

PATIENT_KEYS = ("subject", "patient", "beneficiary", "for")
# R4 resource types that define a `patient` search parameter: the shared clinical-patient parameter
# (http://hl7.org/fhir/R4/searchparameter-registry.html#clinical-patient) and types with their own.
PATIENT_SEARCHABLE = frozenset(
    {
        "Account",
        "AllergyIntolerance",
        "Appointment",
        "BodyStructure",
        "CarePlan",
        "CareTeam",
        "Claim",
        "ClinicalImpression",
        "Composition",
        "Condition",
        "Consent",
        "Coverage",
        "DetectedIssue",
        "DeviceRequest",
        "DeviceUseStatement",
        "DiagnosticReport",
        "DocumentManifest",
        "DocumentReference",
        "Encounter",
        "EpisodeOfCare",
        "FamilyMemberHistory",
        "Flag",
        "Goal",
        "ImagingStudy",
        "Immunization",
        "List",
        "MedicationAdministration",
        "MedicationDispense",
        "MedicationRequest",
        "MedicationStatement",
        "NutritionOrder",
        "Observation",
        "Procedure",
        "QuestionnaireResponse",
        "RiskAssessment",
        "ServiceRequest",
        "Specimen",
        "SupplyDelivery",
        "VisionPrescription",
    }
)
IDS_PER_SEARCH = 50  # `_id=a,b,...` stays well under URL length limits


def _server_reference(reference: str) -> bool:
    """Whether a reference points at a server resource (not contained, not a urn placeholder)."""
    return not reference.startswith(("#", "urn:"))


def _object(value: Any, what: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InputError(f"{what} must be a JSON object")
    return value


def patient_of(resource: dict[str, Any], *, base_url: str | None = None) -> str | None:
    """The id of the patient a resource is about, if it says; InputError for a malformed one."""
    if resource.get("resourceType") == "Patient":
        return fhir_id(resource["id"], "Patient.id") if resource.get("id") is not None else None
    for key in PATIENT_KEYS:
        target = _object(resource.get(key), key)
        ref = target.get("reference") if target else None
        if ref is not None and not isinstance(ref, str):
            raise InputError(f"{key}.reference must be a string")
        if isinstance(ref, str) and _server_reference(ref):
            parsed = parse_reference(ref, base_url=base_url, what=f"{key}.reference")
            if parsed.type == "Patient":
                return parsed.id
    return None


def of_patient(resource: dict[str, Any], patient: str, *, base_url: str | None = None) -> bool:
    """Whether a resource is the patient's own or about them (a malformed one is not)."""
    try:
        return patient_of(resource, base_url=base_url) == patient
    except InputError:
        return False


def _wanted(refs: Iterable[str], patient: str) -> dict[str, dict[str, list[str]]]:
    """Searchable type → id → the references (as written) that name it; the rest cannot be the patient's."""
    by_type: dict[str, dict[str, list[str]]] = {}
    for ref in refs:
        try:
            parsed: Reference = parse_reference(ref)
        except InputError:
            continue
        if parsed.type in PATIENT_SEARCHABLE or str(parsed) == f"Patient/{patient}":
            by_type.setdefault(parsed.type, {}).setdefault(parsed.id, []).append(ref)
    return by_type


async def _search(client: FhirClient, type_name: str, ids: list[str], patient: str) -> list[dict[str, Any]]:
    scope = (
        {"_id": patient}
        if type_name == "Patient"
        else {"_id": ",".join(ids), "patient": f"Patient/{patient}"}
    )
    response = await client.request(
        "GET", type_name, params={**scope, "_count": str(len(ids))}, headers={"Prefer": "handling=strict"}
    )
    bundle = json_body(response, type_name)
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        entries = []
    return [
        e["resource"]
        for e in entries
        if isinstance(e, dict)
        and isinstance(e.get("resource"), dict)
        and (e.get("search") or {}).get("mode", "match") == "match"
    ]


async def in_compartment(client: FhirClient, patient: str, refs: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Of `refs`, those that are the patient's, with the resource as read now (keyed as written).

    A reference that is malformed, of a type outside the patient compartment, gone, another patient's, or
    one the server will not search by patient is simply absent: the caller shows it as outside the record.
    """
    found: dict[str, dict[str, Any]] = {}
    for type_name, ids in _wanted(refs, patient).items():
        names = sorted(ids)
        for start in range(0, len(names), IDS_PER_SEARCH):
            try:
                resources = await _search(client, type_name, names[start : start + IDS_PER_SEARCH], patient)
            except (FhirNotFound, OperationOutcomeError):
                continue  # the server cannot search these by patient: they stay outside
            for resource in resources:
                rid = resource.get("id")
                if (
                    resource.get("resourceType") == type_name
                    and rid in ids
                    and of_patient(resource, patient, base_url=client.base_url)
                ):
                    found.update(dict.fromkeys(ids[rid], resource))
    return found
