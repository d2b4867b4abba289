"""What a pull fetched (ids, versions, lastUpdated, timeline digest) and the merge of a later pull."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from clinical_notes.timeline import ClinicalTimeline
from fhir_adapters.references import is_resource_type

# Fields that depend on the budget or the server's ids, not on the clinical content.
_NOT_CONTENT = {"keys", "tokens", "token_budget"}
_REFERENCE = re.compile(r"([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}")


def timeline_digest(timeline: ClinicalTimeline) -> str:
    """A hash of a timeline's clinical content, the same whatever ids the server gave the resources."""
    content = timeline.model_dump(mode="json", exclude=_NOT_CONTENT)
    return hashlib.sha256(json.dumps(_canonical(content), sort_keys=True).encode()).hexdigest()


def _canonical(value: Any) -> Any:
    """References replaced by their type; lists in a content order (servers break date ties differently)."""
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return sorted((_canonical(v) for v in value), key=lambda item: json.dumps(item, sort_keys=True))
    if isinstance(value, str) and (match := _REFERENCE.fullmatch(value)) and is_resource_type(match[1]):
        return match[1]
    return value
