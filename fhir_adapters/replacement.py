"""A clinician's edited draft as a new final DocumentReference that replaces ours (ours is kept)."""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime
from typing import Any

from fhir_adapters.lifecycle import OVERRIDE_REASON, with_reason
from fhir_adapters.review_drafts import STRUCTURED, attachment, structured_of
from services.core.errors import InputError

MARKDOWN = "text/markdown"
EDITED_BY = "edited_by"
REMOVED = "removed_by_reviewer"  # marks a statement to drop while indices still hold
LOCATION = re.compile(r"sections\[(\d{1,4})\]\.statements\[(\d{1,4})\]")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def statement_texts(draft: dict[str, Any]) -> dict[str, str]:
    """Each statement's text by location (`sections[i].statements[j]`)."""
    structured = structured_of(draft)
    return {
        f"sections[{i}].statements[{j}]": str(statement.get("text", ""))
        for i, section in enumerate(structured.get("sections") or [])
        for j, statement in enumerate(section.get("statements") or [])
    }


def edited_structured(
    draft: dict[str, Any], edits: dict[str, str], clinician: str, removed: AbstractSet[str] = frozenset()
) -> dict[str, Any]:
    """The draft's structured JSON with edited statements (by location) and who edited them; the
    statements at `removed` locations left out."""
    structured = copy.deepcopy(structured_of(draft))
    for location, text in edits.items():
        target = _statement(structured, location)
        if location in removed:
            continue
        if not text.strip():
            raise InputError(f"{location}: an edited statement cannot be empty (remove it instead)")
        if text.strip() != str(target.get("text", "")).strip():
            target["text"] = text.strip()
            target[EDITED_BY] = clinician
    for location in removed:
        _statement(structured, location)[REMOVED] = True
    for section in structured["sections"]:
        section["statements"] = [s for s in section["statements"] if not s.get(REMOVED)]
    structured.pop("verification", None)
    return structured


def _statement(structured: dict[str, Any], location: str) -> dict[str, Any]:
    section, statement = _indices(location)
    try:
        target = structured["sections"][section]["statements"][statement]
    except (IndexError, KeyError, TypeError) as exc:
        raise InputError(f"{location} is not a statement of this draft") from exc
    if not isinstance(target, dict):
        raise InputError(f"{location} is not a statement of this draft")
    return target


def _indices(location: str) -> tuple[int, int]:
    """The section and statement indices of `sections[i].statements[j]` (never negative: no counting back)."""
    match = LOCATION.fullmatch(location)
    if match is None:
        raise InputError(f"{location[:80]} is not a statement location")
    return int(match[1]), int(match[2])


def edited_markdown(
    draft: dict[str, Any], before: dict[str, Any], removed: AbstractSet[str], edits: dict[str, str]
) -> str:
    """The draft's readable text with each edited statement's words replaced where they stand, and each
    removed statement's line taken out."""
    lines = (attachment(draft, MARKDOWN) or "").split("\n")
    for i, section in enumerate(before["sections"]):
        for j, old in enumerate(section["statements"]):
            location = f"sections[{i}].statements[{j}]"
            bullet = f"- {old['text'].strip()}"
            at = next((n for n, line in enumerate(lines) if line.startswith(bullet)), None)
            if at is None:
                continue
            if location in removed:
                del lines[at]
            elif edits.get(location, "").strip() not in ("", old["text"].strip()):
                lines[at] = lines[at].replace(bullet, f"- {edits[location].strip()}", 1)
    return "\n".join(lines)


def replacement_document(
    draft: dict[str, Any],
    edits: dict[str, str],
    clinician: str,
    *,
    removed: AbstractSet[str] = frozenset(),
    override_reason: str | None = None,
) -> dict[str, Any]:
    """A final DocumentReference by `clinician` (a Practitioner) that `relatesTo.replaces` our draft; with
    the reason they kept statements whose check failed, when they did."""
    after = edited_structured(draft, edits, clinician, removed)
    markdown = edited_markdown(draft, structured_of(draft), removed, edits)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    title = f"{draft.get('description') or 'Clinical note'} (edited and approved)"
    keep = ("meta", "type", "category", "subject", "context")
    document: dict[str, Any] = {k: copy.deepcopy(draft[k]) for k in keep if k in draft}
    document["meta"] = {"security": document.get("meta", {}).get("security", [])}
    if override_reason is not None:
        with_reason(document, OVERRIDE_REASON, override_reason)
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
