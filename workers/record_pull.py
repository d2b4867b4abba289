"""A job's record pull: incremental from the patient's stored snapshot, which is replaced only when the
pull found something new."""

from __future__ import annotations

import asyncio
import logging

from clinical_notes.timeline import ClinicalTimeline
from fhir_adapters.client import FhirClient
from fhir_adapters.incremental import Pull, Snapshot, pull_record
from fhir_adapters.snapshot import timeline_digest
from services.core.db import session_scope
from services.snapshots.service import get_snapshot, save_snapshot

log = logging.getLogger(__name__)


def _stored(server: str, patient_id: str) -> Snapshot | None:
    with session_scope() as session:
        row = get_snapshot(session=session, server=server, patient_id=patient_id)
        if row is None:
            return None
        return Snapshot(
            patient_id,
            since=row.since,
            digest=row.timeline_digest,
            record_digest=row.record_digest or "",
            packed=row.resources,
            versions=row.versions,
        )


async def pull_for_job(client: FhirClient, patient_id: str) -> Pull:
    """The record: only the changes when the patient has a snapshot, else all of it."""
    previous = await asyncio.to_thread(_stored, client.base_url, patient_id)
    pulled = await pull_record(client, patient_id, previous)
    log.info(
        "record pull: %s, %d changed, %d deleted",
        pulled.mode,
        pulled.changed,
        len(pulled.deleted),
        extra={"patient_id": patient_id},
    )
    return pulled


def _save(server: str, snapshot: Snapshot) -> None:
    with session_scope() as session:
        save_snapshot(
            session=session,
            server=server,
            patient_id=snapshot.patient_id,
            since=snapshot.since,
            timeline_digest=snapshot.digest,
            record_digest=snapshot.record_digest,
            versions=snapshot.versions(),
            resources=snapshot.packed(),
        )


async def keep_snapshot(server: str, pulled: Pull, timeline: ClinicalTimeline | None) -> bool:
    """Store the pull's snapshot with the digest of the job's timeline, unless the pull found nothing new
    (the stored snapshot already says the same); whether it was written."""
    if pulled.unchanged or timeline is None:
        return False
    pulled.snapshot.digest = timeline_digest(timeline)
    pulled.snapshot.record_digest = pulled.record.digest()
    await asyncio.to_thread(_save, server, pulled.snapshot)
    return True
