"""A clinician's edited draft as a new final DocumentReference that replaces ours (ours is kept)."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime
from typing import Any

from fhir_adapters.review_drafts import STRUCTURED, attachment, structured_of
from services.core.errors import InputError

MARKDOWN = "text/markdown"
EDITED_BY = "edited_by"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def edited_structured(draft: dict[str, Any], edits: dict[str, str], clinician: str) -> dict[str, Any]:
    """The draft's structured JSON with edited statements (by location) and who edited them."""
    structured = copy.deepcopy(structured_of(draft))
    for location, text in edits.items():
        section, statement = _indices(location)
        try:
            target = structured["sections"][section]["statements"][statement]
        except (IndexError, KeyError, TypeError) as exc:
            raise InputError(f"{location} is not a statement of this draft") from exc
        if not text.strip():
            raise InputError(f"{location}: an edited statement cannot be empty")
        if text.strip() != str(target.get("text", "")).strip():
            target["text"] = text.strip()
            target[EDITED_BY] = clinician
    structured.pop("verification", None)
    return structured


def _indices(location: str) -> tuple[int, int]:
    try:
        head, _, tail = location.partition("].statements[")
        return int(head.removeprefix("sections[")), int(tail.removesuffix("]"))
    except ValueError as exc:
        raise InputError(f"{location} is not a statement location") from exc


def edited_markdown(draft: dict[str, Any], before: dict[str, Any], after: dict[str, Any]) -> str:
    """The draft's readable text with each edited statement's words replaced where they stand."""
    text = attachment(draft, MARKDOWN) or ""
    for old_section, new_section in zip(before["sections"], after["sections"], strict=True):
        for old, new in zip(old_section["statements"], new_section["statements"], strict=True):
            if old["text"].strip() != new["text"]:
                text = text.replace(f"- {old['text'].strip()}", f"- {new['text']}", 1)
    return text


def replacement_document(draft: dict[str, Any], edits: dict[str, str], clinician: str) -> dict[str, Any]:
    """A final DocumentReference by `clinician` (a Practitioner) that `relatesTo.replaces` our draft."""
    after = edited_structured(draft, edits, clinician)
    markdown = edited_markdown(draft, structured_of(draft), after)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    title = f"{draft.get('description') or 'Clinical note'} (edited and approved)"
    keep = ("meta", "type", "category", "subject", "context")
    document: dict[str, Any] = {k: copy.deepcopy(draft[k]) for k in keep if k in draft}
    document["meta"] = {"security": document.get("meta", {}).get("security", [])}
    return {
        "resourceType": "DocumentReference",
        **document,
        "status": "current",
        "docStatus": "final",
        "date": now,
        "author": [{"reference": clinician}],
        "authenticator": {"reference": clinician},
        "description": title,
        "relatesTo": [{"code": "replaces", "target": {"reference": f"DocumentReference/{draft['id']}"}}],
        "content": [
            {
                "attachment": {
                    "contentType": "text/markdown; charset=utf-8",
                    "data": _b64(markdown),
                    "title": title,
                }
            },
            {
                "attachment": {
                    "contentType": STRUCTURED,
                    "data": _b64(json.dumps(after)),
                    "title": "Structured note with citations",
                }
            },
        ],
    }
