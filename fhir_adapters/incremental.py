"""Incremental pulls: fetch what changed since a patient's snapshot and merge it, deletions included."""

from __future__ import annotations

import gzip
import json
import logging
from datetime import UTC, datetime
from typing import Any

from fhir_adapters.capability import Capabilities, capabilities
from fhir_adapters.client import FhirClient
from fhir_adapters.labels import is_ai_draft_json
from fhir_adapters.record import (
    FALLBACK_TYPES,
    RECORD_TYPES,
    PatientRecord,
    fetch_resources,
    patient_searches,
    record_from_resources,
    search_resources,
)
from services.core.errors import FhirError, FhirUnavailable

log = logging.getLogger(__name__)
ID_PAGE = "1000"


class Snapshot:
    """What the last pull of a patient fetched: each resource (JSON) by `Type/id`, with each one's version
    and lastUpdated, and the digests of the record and its timeline (set by whoever reads the record; a
    pull does not). A stored snapshot is unpacked only when a pull has something to merge into it."""

    def __init__(
        self,
        patient_id: str,
        resources: dict[str, dict[str, Any]] | None = None,
        since: str | None = None,
        digest: str = "",
        *,
        record_digest: str = "",
        packed: bytes | None = None,
        versions: dict[str, list[str | None]] | None = None,
    ):
        self.patient_id, self.since, self.digest, self.record_digest = (
            patient_id,
            since,
            digest,
            record_digest,
        )
        self._resources, self._packed = resources, packed
        self._versions = versions

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        """The resources by `Type/id` (unpacked from the store on first use)."""
        if self._resources is None:
            self._resources = json.loads(gzip.decompress(self._packed or b""))
        return self._resources

    def packed(self) -> bytes:
        """The resources as gzip-compressed JSON, for the snapshot store."""
        if self._packed is None:
            compact = json.dumps(self.resources, separators=(",", ":")).encode()
            self._packed = gzip.compress(compact, compresslevel=6)
        return self._packed

    def versions(self) -> dict[str, list[str | None]]:
        """`Type/id` → [versionId, lastUpdated] of each resource."""
        if self._versions is None:
            self._versions = {
                ref: [_meta(r, "versionId"), _meta(r, "lastUpdated")] for ref, r in self.resources.items()
            }
        return self._versions


class Pull:
    """What a pull did (`full` or `incremental`, how many changed, what went) and its snapshot; the record
    is validated on first use, so an unchanged record whose drafts exist is never parsed."""

    def __init__(
        self,
        snapshot: Snapshot,
        mode: str,
        changed: int = 0,
        deleted: list[str] | None = None,
        source: str = "",
    ):
        self.snapshot, self.mode, self.changed, self.deleted = snapshot, mode, changed, deleted or []
        self.source = source or mode
        self._record: PatientRecord | None = None

    @property
    def record(self) -> PatientRecord:
        """The pulled resources as a validated record."""
        if self._record is None:
            snapshot = self.snapshot
            self._record = record_from_resources(
                snapshot.patient_id, snapshot.resources.values(), self.source
            )
        return self._record

    @property
    def unchanged(self) -> bool:
        """Whether the record is the one the previous snapshot holds."""
        return self.mode == "incremental" and not self.changed and not self.deleted


async def pull_record(client: FhirClient, patient_id: str, previous: Snapshot | None = None) -> Pull:
    """The record: only what changed since `previous` where the server declares how, else all of it."""
    declared = await capabilities(client)
    if previous is None or previous.since is None or not _incremental(declared):
        return await _full(client, patient_id)
    try:
        return await _incremental_pull(client, declared, previous)
    except FhirUnavailable:
        raise
    except FhirError as exc:
        log.info("incremental pull refused (%s); pulling the whole record", exc.status)
        return await _full(client, patient_id)


def _incremental(declared: Capabilities) -> bool:
    """Whether every record type can be searched by patient and `_lastUpdated` (by declaration)."""
    return declared.declared and all(
        declared.patient_param(t) and declared.supports_param(t, "_lastUpdated") for t in FALLBACK_TYPES
    )


async def _full(client: FhirClient, patient_id: str) -> Pull:
    raw, source = await fetch_resources(client, patient_id)
    kept = _by_ref([r for r in raw if r.get("resourceType") in RECORD_TYPES])
    return Pull(_snapshot(patient_id, kept), "full", changed=len(kept), source=source)


async def _incremental_pull(client: FhirClient, declared: Capabilities, previous: Snapshot) -> Pull:
    patient_id = previous.patient_id
    changed = await search_resources(client, declared, patient_id, previous.since)
    known = previous.versions()
    # `ge` repeats the newest resources of the last pull, and servers that ignore `_lastUpdated` send all.
    fresh = {
        ref: r
        for ref, r in _by_ref(changed).items()
        if _meta(r, "versionId") is None or known.get(ref, [None])[0] != _meta(r, "versionId")
    }
    deleted = await _deleted(client, declared, patient_id, set(known) | set(fresh))
    if not deleted and all(is_ai_draft_json(r) for r in fresh.values()):
        # Nothing new but our own drafts (a job's write-back), which no note reads: the record is the same.
        return Pull(previous, "incremental")
    merged = {**previous.resources, **fresh}
    for ref in deleted:
        merged.pop(ref, None)
    return Pull(_snapshot(patient_id, merged), "incremental", changed=len(fresh), deleted=deleted)


async def _deleted(
    client: FhirClient, declared: Capabilities, patient_id: str, merged: set[str]
) -> list[str]:
    """Kept resources the server no longer has: a count per type, and the ids only where it disagrees."""
    gone: list[str] = []
    for resource_type, query in patient_searches(declared, patient_id):
        kept = {ref for ref in merged if ref.startswith(f"{resource_type}/")}
        counted = await client.get_json(resource_type, {**query, "_summary": "count"})
        if counted.get("total") == len(kept):
            continue
        # A missing total, or a different one: list the ids (servers that ignore `_elements` send it all).
        ids = client.search(resource_type, {**query, "_elements": "id", "_count": ID_PAGE})
        listed = {f"{resource_type}/{r['id']}" async for r in ids}
        gone.extend(sorted(kept - listed))
    return gone


def _snapshot(patient_id: str, resources: dict[str, dict[str, Any]]) -> Snapshot:
    stamps = [s for r in resources.values() if (s := _meta(r, "lastUpdated"))]
    since = max(stamps, key=_instant) if stamps else None
    return Snapshot(patient_id, resources, since)


def _instant(value: str) -> datetime:
    """A lastUpdated as a datetime (servers write offsets as Z or +00:00); unparseable ones sort first."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _by_ref(raw: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{r.get('resourceType')}/{r.get('id')}": r for r in raw if r.get("id")}


def _meta(resource: dict[str, Any], key: str) -> str | None:
    value = (resource.get("meta") or {}).get(key)
    return str(value) if value is not None else None
