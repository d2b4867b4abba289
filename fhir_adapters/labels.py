"""Codes and identifiers that mark our drafts (HL7 AI Transparency on FHIR, our identifier system)."""

from __future__ import annotations

from fhir.resources.R4B.resource import Resource

AIAST_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
AIAST_CODE = "AIAST"
DRAFT_IDENTIFIER_SYSTEM = "urn:ehr-summarizer:draft"
DEVICE_IDENTIFIER_SYSTEM = "urn:ehr-summarizer:model"


def is_ai_draft(resource: Resource) -> bool:
    """Whether a resource carries the AIAST label or our draft identifier."""
    meta = getattr(resource, "meta", None)
    for coding in (meta.security or []) if meta else []:
        if coding.system == AIAST_SYSTEM and coding.code == AIAST_CODE:
            return True
    return any(i.system == DRAFT_IDENTIFIER_SYSTEM for i in getattr(resource, "identifier", None) or [])
