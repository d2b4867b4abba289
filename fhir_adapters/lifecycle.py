"""A draft on the FHIR server after write-back: approve, reject, supersede, read a clinician's decision."""

from __future__ import annotations

import base64
import copy
import difflib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from fhir_adapters.client import FhirClient, json_body
from fhir_adapters.labels import DRAFT_IDENTIFIER_SYSTEM
from fhir_adapters.references import parse_reference
from services.core.errors import ConflictError, FhirAuthError, FhirConflict, FhirError, InputError

PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
VERIFIER_ATTEMPTS = 3
REJECTION_REASON = "urn:ehr-summarizer:rejection-reason"
OVERRIDE_REASON = "urn:ehr-summarizer:approval-override-reason"
REASON_MAX_CHARS = 1000
DraftState = Literal["preliminary", "approved", "rejected", "superseded", "replaced"]
# Transaction entries to write together with a change, given the document as it is before the change.
AlsoWrite = Callable[[dict[str, Any]], list[dict[str, Any]]]


@dataclass(frozen=True)
class Versioned:
    """A resource and the ETag to send back with If-Match."""

    resource: dict[str, Any]
    etag: str


@dataclass(frozen=True)
class Decision:
    """What the server says happened to one of our drafts."""

    draft_ref: str
    state: DraftState
    version: str | None
    authenticator: str | None = None
    replaced_by: str | None = None
    change_ratio: float | None = None


def etag_of(resource: dict[str, Any]) -> str:
    """The weak ETag of a resource's current version."""
    return f'W/"{(resource.get("meta") or {}).get("versionId", "1")}"'


def version_id(etag: str) -> str:
    """The opaque version of an ETag: W/"3", "3" and 3 are all version 3."""
    return etag.strip().removeprefix("W/").strip('"')


async def read_versioned(client: FhirClient, ref: str) -> Versioned:
    """Read a resource with its ETag."""
    path = str(parse_reference(ref))
    response = await client.request("GET", path)
    resource = json_body(response, path)
    return Versioned(resource, response.headers.get("ETag") or etag_of(resource))


async def _put(
    client: FhirClient, resource: dict[str, Any], if_match: str, also: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Update a resource if it is still the version `if_match` names; with `also`, in one transaction
    with those entries (all or nothing: a 412 writes none of them)."""
    path = str(parse_reference(f"{resource.get('resourceType')}/{resource.get('id')}"))
    if not also:
        response = await client.request("PUT", path, json=resource, headers={"If-Match": if_match})
        return json_body(response, path)
    change = {"resource": resource, "request": {"method": "PUT", "url": path, "ifMatch": if_match}}
    try:
        await client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [change, *also]})
    except FhirAuthError:
        # Some servers grant a transaction only to a token that may create anything (sekmet checks `*.c`
        # on the base URL); the change alone is still the clinician's to make, and whoever records it
        # writes `also`'s resources afterwards (an AuditEvent: when the decision is recorded).
        return await _put(client, resource, if_match)
    return (await read_versioned(client, path)).resource


async def create_in_transaction(
    client: FhirClient, resource: dict[str, Any], also: Callable[[str], list[dict[str, Any]]]
) -> str:
    """Create a resource with `also(its fullUrl)`'s entries in one transaction; its new reference."""
    full_url = f"urn:uuid:{uuid.uuid4()}"
    type_name = str(resource.get("resourceType"))
    create = {"fullUrl": full_url, "resource": resource, "request": {"method": "POST", "url": type_name}}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [create, *also(full_url)]}
    try:
        entries = (await client.transaction(bundle)).get("entry", [])
    except FhirAuthError:
        # As in _put: the creation alone when the token may not post a transaction.
        created = json_body(await client.request("POST", type_name, json=resource), type_name)
        return str(parse_reference(f"{type_name}/{created.get('id')}"))
    location = str((entries[0].get("response") or {}).get("location", "")) if entries else ""
    parts = location.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) < 2 or parts[-2] != type_name:
        raise FhirError(f"transaction-response gave no location for the new {type_name}")
    return str(parse_reference(f"{type_name}/{parts[-1]}"))


def draft_identifier_of(doc: dict[str, Any]) -> str | None:
    """Our draft identifier on a DocumentReference, if it is one of ours."""
    for identifier in doc.get("identifier", []):
        if identifier.get("system") == DRAFT_IDENTIFIER_SYSTEM:
            return str(identifier.get("value"))
    return None


def _reference_or_none(value: Any, base_url: str | None, types: set[str]) -> str | None:
    try:
        return str(parse_reference(value, base_url=base_url, types=types))
    except InputError:
        return None


def replaced_targets(doc: dict[str, Any], *, base_url: str | None = None) -> list[str]:
    """The DocumentReferences a DocumentReference says it replaces (malformed references left out)."""
    relations = doc.get("relatesTo")
    targets = (
        _reference_or_none(r.get("target", {}).get("reference"), base_url, {"DocumentReference"})
        for r in (relations if isinstance(relations, list) else [])
        if isinstance(r, dict) and r.get("code") == "replaces" and isinstance(r.get("target"), dict)
    )
    return [t for t in targets if t is not None]


def readable_text(doc: dict[str, Any]) -> str:
    """The first text attachment of a DocumentReference, decoded."""
    for content in doc.get("content", []):
        attachment = content.get("attachment", {})
        if str(attachment.get("contentType", "")).startswith("text/") and attachment.get("data"):
            return base64.b64decode(attachment["data"]).decode("utf-8", errors="replace")
    return ""


def change_ratio(before: str, after: str) -> float:
    """How much of the text a clinician changed: 0.0 untouched, 1.0 rewritten."""
    return round(1.0 - difflib.SequenceMatcher(None, before, after, autojunk=False).ratio(), 4)


def decision_of(doc: dict[str, Any]) -> Decision:
    """The state one of our drafts is in, as the server has it."""
    ref = f"DocumentReference/{doc['id']}"
    version = (doc.get("meta") or {}).get("versionId")
    authenticator = (doc.get("authenticator") or {}).get("reference")
    if doc.get("status") == "entered-in-error":
        return Decision(ref, "rejected", version)
    if doc.get("status") == "superseded":
        return Decision(ref, "superseded", version)
    if doc.get("docStatus") == "final":
        return Decision(ref, "approved", version, authenticator=authenticator)
    return Decision(ref, "preliminary", version)


def replacement_decision(
    draft: dict[str, Any], replacement: dict[str, Any], *, base_url: str | None = None
) -> Decision | None:
    """Our draft, edited by a clinician into a new DocumentReference that replaces it.

    Only a final, current document authenticated by a Practitioner replaces a draft (the Practitioner is
    recorded as its authenticator); anything else that says it replaces ours is no decision: None.
    """
    authenticator = replacement.get("authenticator")
    clinician = _reference_or_none(
        authenticator.get("reference") if isinstance(authenticator, dict) else None,
        base_url,
        {"Practitioner"},
    )
    if clinician is None or replacement.get("status") != "current" or replacement.get("docStatus") != "final":
        return None
    return Decision(
        draft_ref=f"DocumentReference/{draft['id']}",
        state="replaced",
        version=(draft.get("meta") or {}).get("versionId"),
        authenticator=clinician,
        replaced_by=f"DocumentReference/{replacement['id']}",
        change_ratio=change_ratio(readable_text(draft), readable_text(replacement)),
    )


def with_reason(doc: dict[str, Any], url: str, reason: str) -> None:
    """Record a clinician's reason (1 to 1000 characters) as an extension of `url`; InputError otherwise."""
    if not reason.strip() or len(reason) > REASON_MAX_CHARS:
        raise InputError(f"a reason is 1 to {REASON_MAX_CHARS} characters")
    others = [e for e in doc.get("extension", []) if e.get("url") != url]
    doc["extension"] = [*others, {"url": url, "valueString": reason.strip()}]


async def approve(
    client: FhirClient,
    ref: str,
    *,
    if_match: str,
    authenticator: dict[str, Any],
    current: Versioned | None = None,
    override_reason: str | None = None,
    also: AlsoWrite | None = None,
) -> dict[str, Any]:
    """docStatus final with the approving clinician as authenticator (and the reason they approved despite a
    failed check, when they did), with `also`'s entries in the same transaction; written from `current`
    when given; 412 when the draft moved on."""
    before = current or await read_versioned(client, ref)
    doc = copy.deepcopy(before.resource)
    if doc.get("status") != "current":
        raise ConflictError(f"{ref} is {doc.get('status')}; only a current draft is approved")
    doc["docStatus"] = "final"
    doc["authenticator"] = authenticator
    if override_reason is not None:
        with_reason(doc, OVERRIDE_REASON, override_reason)
    return await _put(client, doc, if_match, also(before.resource) if also else None)


async def reject(
    client: FhirClient,
    ref: str,
    *,
    if_match: str,
    reason: str | None = None,
    current: Versioned | None = None,
    also: AlsoWrite | None = None,
) -> dict[str, Any]:
    """status entered-in-error, with the reviewer's reason when given (with `also`'s entries in the same
    transaction); 412 when the draft moved on."""
    before = current or await read_versioned(client, ref)
    doc = copy.deepcopy(before.resource)
    doc["status"] = "entered-in-error"
    if reason is not None:
        with_reason(doc, REJECTION_REASON, reason)
    return await _put(client, doc, if_match, also(before.resource) if also else None)


async def supersede(client: FhirClient, old_ref: str, new_ref: str) -> bool:
    """Mark an older unapproved draft superseded and link the newer one to it; False when it was decided."""
    old = await read_versioned(client, old_ref)
    if old.resource.get("status") != "current" or old.resource.get("docStatus") == "final":
        return False
    newer = await read_versioned(client, new_ref)
    doc = copy.deepcopy(newer.resource)
    if old_ref not in replaced_targets(doc):
        doc.setdefault("relatesTo", []).append({"code": "replaces", "target": {"reference": old_ref}})
        await _put(client, doc, newer.etag)
    await _put(client, {**copy.deepcopy(old.resource), "status": "superseded"}, old.etag)
    return True


async def add_verifier(client: FhirClient, draft_ref: str, verifier: dict[str, Any]) -> bool:
    """Add the approving clinician as verifier agent on the draft's Provenance; False when already there."""
    changed = False
    async for provenance in client.search("Provenance", {"target": draft_ref}):
        changed = await _add_agent(client, provenance, verifier) or changed
    return changed


async def _add_agent(client: FhirClient, provenance: dict[str, Any], verifier: dict[str, Any]) -> bool:
    # The same decision often arrives twice at once (a notification and a poll, an API approval and its
    # notification): when another delivery wrote the Provenance first (412), read it again and look.
    for attempt in range(VERIFIER_ATTEMPTS):
        agents = provenance.setdefault("agent", [])
        if any(a.get("who") == verifier for a in agents):
            return False
        agents.append({"type": {"coding": [{"system": PARTICIPANT, "code": "verifier"}]}, "who": verifier})
        try:
            await _put(client, provenance, etag_of(provenance))
            return True
        except FhirConflict:
            if attempt + 1 == VERIFIER_ATTEMPTS:
                raise
            provenance = (await read_versioned(client, f"Provenance/{provenance.get('id')}")).resource
    return False
