"""Codes and identifiers that mark our drafts (HL7 AI Transparency on FHIR, our identifier system)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fhir.resources.R4B.resource import Resource

AIAST_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
AIAST_CODE = "AIAST"
DRAFT_IDENTIFIER_SYSTEM = "urn:ehr-summarizer:draft"
DEVICE_IDENTIFIER_SYSTEM = "urn:ehr-summarizer:model"


def _ai_labelled(security: Iterable[tuple[object, object]], identifier_systems: Iterable[object]) -> bool:
    return any(label == (AIAST_SYSTEM, AIAST_CODE) for label in security) or any(
        system == DRAFT_IDENTIFIER_SYSTEM for system in identifier_systems
    )


def is_ai_draft(resource: Resource) -> bool:
    """Whether a resource carries the AIAST label or our draft identifier."""
    meta = getattr(resource, "meta", None)
    security = [(c.system, c.code) for c in (meta.security or [])] if meta else []
    return _ai_labelled(security, [i.system for i in getattr(resource, "identifier", None) or []])


def is_ai_draft_json(resource: dict[str, Any]) -> bool:
    """`is_ai_draft` of a resource as JSON (before it is validated)."""
    meta = resource.get("meta")
    meta = meta if isinstance(meta, dict) else {}
    security = [(c.get("system"), c.get("code")) for c in meta.get("security") or [] if isinstance(c, dict)]
    identifiers = [i.get("system") for i in resource.get("identifier") or [] if isinstance(i, dict)]
    return _ai_labelled(security, identifiers)
