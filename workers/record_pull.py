"""A job's record pull: incremental from the patient's stored snapshot, which it then replaces."""

from __future__ import annotations

import logging

from fhir_adapters.client import FhirClient
from fhir_adapters.incremental import Pull, Snapshot, pull_record
from services.core.db import session_scope
from services.snapshots.service import get_snapshot, save_snapshot

log = logging.getLogger(__name__)


async def pull_with_snapshot(client: FhirClient, patient_id: str) -> Pull:
    """Pull the record (only the changes when a snapshot exists) and store the new snapshot."""
    with session_scope() as session:
        row = get_snapshot(session=session, server=client.base_url, patient_id=patient_id)
        previous = (
            Snapshot.unpacked(patient_id, row.resources, row.since, row.timeline_digest) if row else None
        )
    pulled = await pull_record(client, patient_id, previous)
    snapshot = pulled.snapshot
    with session_scope() as session:
        save_snapshot(
            session=session,
            server=client.base_url,
            patient_id=patient_id,
            since=snapshot.since,
            timeline_digest=snapshot.digest,
            versions=snapshot.versions(),
            resources=snapshot.packed(),
        )
    log.info(
        "record pull: %s, %d changed, %d deleted, timeline %s",
        pulled.kind,
        pulled.changed,
        len(pulled.deleted),
        "unchanged" if previous is not None and previous.digest == snapshot.digest else "new",
        extra={"patient_id": patient_id},
    )
    return pulled
