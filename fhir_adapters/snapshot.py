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
_string = json.encoder.encode_basestring_ascii  # what json.dumps does for a str
_REFERENCE = re.compile(r"([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}")


def timeline_digest(timeline: ClinicalTimeline) -> str:
    """A hash of a timeline's clinical content, the same whatever ids the server gave the resources."""
    content = timeline.model_dump(mode="json", exclude=_NOT_CONTENT)
    return hashlib.sha256(_canonical_json(content).encode()).hexdigest()


def _canonical_json(value: Any) -> str:
    """`json.dumps(value, sort_keys=True)` with references replaced by their type and every list in content
    order (servers break date ties differently); each value is serialized once, bottom-up."""
    if isinstance(value, str):
        match = _REFERENCE.fullmatch(value)
        return _string(match[1] if match and is_resource_type(match[1]) else value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_string(k)}: {_canonical_json(value[k])}" for k in sorted(value)) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(sorted(_canonical_json(v) for v in value)) + "]"
    return json.dumps(value)
