"""A small patient record and AI drafts that cite it, written with the EHR's setup token (not the app's)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.smart_dev_server import Launch, SmartEhr
from fhir_adapters.client import FhirAuth, FhirClient, json_body
from fhir_adapters.writeback import DraftDocument, ModelDevice, draft_identifier, write_draft
from services.core.db import session_scope
from services.jobs.drafts import record_draft

LOINC = "http://loinc.org"


def observation(
    patient: str, code: str, name: str, value: float, unit: str, low: float, high: float
) -> dict[str, Any]:
    """A final laboratory result with its reference range."""
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": code, "display": name}], "text": name},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": "2026-11-20T08:30:00Z",
        "valueQuantity": {"value": value, "unit": unit},
        "referenceRange": [{"low": {"value": low, "unit": unit}, "high": {"value": high, "unit": unit}}],
    }


@dataclass
class ReviewRecord:
    """The patient, what the drafts cite, and the drafts (by role in the test); `refs["other"]` is another
    patient's result, which the draft of role "foreign" cites."""

    patient: str
    refs: dict[str, str]
    drafts: dict[str, str]


async def _create(client: FhirClient, resource: dict[str, Any]) -> str:
    response = await client.request("POST", resource["resourceType"], json=resource)
    return f"{resource['resourceType']}/{json_body(response, 'create')['id']}"


def note(refs: dict[str, str], critical: bool) -> dict[str, Any]:
    """A progress note: record facts, a model statement, one the verifier fails; a critical rule flag."""
    statements = [
        {
            "text": "Hemoglobin A1c 8.1 % on 2026-11-20, above the reference range.",
            "citations": [refs["a1c"]],
            "author": "record",
        },
        {
            "text": "Potassium 6.2 mmol/L on 2026-11-20, above the reference range.",
            "citations": [refs["potassium"]],
            "author": "record",
        },
        {"text": "Type 2 diabetes mellitus, active.", "citations": [refs["diabetes"]], "author": "record"},
    ]
    model = [
        {
            "text": "The raised hemoglobin A1c may suggest that diabetes is not well controlled.",
            "citations": [refs["a1c"], refs["diabetes"]],
            "author": "model",
        },
        {"text": "Potassium 5.1 mmol/L may be rising.", "citations": [refs["potassium"]], "author": "model"},
    ]
    flags = [
        {
            "severity": "critical",
            "title": "Hyperkalemia",
            "rationale": "Potassium 6.2 mmol/L is above 6.0 mmol/L.",
            "citations": [refs["potassium"]],
            "source": "rule",
        },
        {
            "severity": "info",
            "title": "Diabetes follow-up",
            "rationale": "Hemoglobin A1c above range.",
            "citations": [refs["a1c"]],
            "source": "model",
        },
    ]
    return {
        "kind": "progress",
        "sections": [
            {"title": "Results and problems", "statements": statements},
            {"title": "Assessment", "statements": model},
        ],
        "flags": flags if critical else flags[1:],
        "synthesis_unavailable": None,
        "verification": {"status": "verified", "statements_checked": 5},
    }


def markdown(structured: dict[str, Any]) -> str:
    """The readable attachment, one statement a line (as clinical_notes.render writes it)."""
    lines = ["# Progress note", ""]
    for section in structured["sections"]:
        lines += [f"## {section['title']}", "", *(f"- {s['text']} [1]" for s in section["statements"]), ""]
    return "\n".join(lines)


def seed(fhir_base: str, setup_token: str, roles: list[str]) -> ReviewRecord:
    """Write the patient, the cited resources and one draft per role; track the drafts as a job would."""

    async def run() -> ReviewRecord:
        async with FhirClient(fhir_base, auth=FhirAuth(mode="bearer", token=setup_token)) as client:
            patient_ref = await _create(
                client,
                {
                    "resourceType": "Patient",
                    "name": [{"given": ["Ada"], "family": "Quill"}],
                    "gender": "female",
                    "birthDate": "1961-04-02",
                },
            )
            patient = patient_ref.split("/")[1]
            refs = {
                "a1c": await _create(
                    client, observation(patient, "4548-4", "Hemoglobin A1c", 8.1, "%", 4.0, 5.6)
                ),
                "potassium": await _create(
                    client, observation(patient, "2823-3", "Potassium", 6.2, "mmol/L", 3.5, 5.1)
                ),
                "diabetes": await _create(
                    client,
                    {
                        "resourceType": "Condition",
                        "clinicalStatus": {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                    "code": "active",
                                }
                            ]
                        },
                        "code": {"text": "Type 2 diabetes mellitus"},
                        "subject": {"reference": patient_ref},
                        "onsetDateTime": "2015-03-01",
                    },
                ),
            }
            if "foreign" in roles:
                other = await _create(
                    client,
                    {
                        "resourceType": "Patient",
                        "name": [{"given": ["Bram"], "family": "Other"}],
                        "gender": "male",
                    },
                )
                refs["other"] = await _create(
                    client, observation(other.split("/")[1], "6598-7", "Troponin T", 9.9, "ng/mL", 0.0, 0.01)
                )
            drafts = {}
            for n, role in enumerate(roles):
                structured = note(refs, critical=n == 0)
                if role == "foreign":
                    # A citation of another patient's result, however it got there, must not be shown.
                    structured["sections"][0]["statements"][0]["citations"] = [refs["other"]]
                document = DraftDocument(
                    patient_id=patient,
                    kind="progress",
                    loinc_code="11506-3",
                    loinc_display="Progress note",
                    title=f"Progress note summary (AI draft {n + 1})",
                    markdown=markdown(structured),
                    structured=structured,
                    cited_refs=[r for k, r in refs.items() if k != "other"],
                    identifier=draft_identifier(patient, "progress", uuid.uuid4().hex),
                    device=ModelDevice("Gemma 3 270M", "gemma3-270m", "sha256:abc"),
                )
                drafts[role] = (await write_draft(client, document)).draft_ref
        return ReviewRecord(patient, refs, drafts)

    record = asyncio.run(run())
    with session_scope() as session:
        for ref in record.drafts.values():
            record_draft(
                session=session, ref=ref, patient_id=record.patient, kind="progress", job_id=None, version="1"
            )
    return record


def seeded_ehr(
    workdir: Path, sekmet_port: int, *, client_id: str, app: str, user: str, roles: list[str]
) -> tuple[SmartEhr, ReviewRecord]:
    """The SMART EHR in front of sekmet, for the review app at `app`, with the record and one draft per role;
    `user` is signed in at the EHR with that patient open."""
    ehr = SmartEhr(
        workdir=workdir,
        client_id=client_id,
        redirect_uri=f"{app}/review/callback",
        signed_in=Launch(patient="", user=user),
    ).start(sekmet_port)
    record = seed(ehr.fhir_base, ehr.setup_token, roles)
    ehr.signed_in.patient = record.patient
    return ehr, record
