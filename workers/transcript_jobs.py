"""A visit transcript that arrives (by subscription or polling) queues its encounter's SOAP note."""

from __future__ import annotations

import logging

from fhir_adapters.transcripts import transcript_visit
from services.core.db import session_scope
from services.core.settings import Settings
from services.jobs.service import create_job
from workers.queueing import queue_job
from workers.transcripts import rules_of

log = logging.getLogger(__name__)


def submit_soap_job(resource: dict[str, object], settings: Settings) -> str | None:
    """A new or changed transcript queues a SOAP job for its encounter (once per transcript version, through
    the one job path); the job id, None when the resource is no transcript."""
    visit = transcript_visit(resource, rules_of(settings).codes)
    if visit is None:
        return None
    patient_id, encounter_id = visit
    meta = resource.get("meta")
    version = meta.get("versionId") if isinstance(meta, dict) else None
    key = f"transcript:{resource.get('id')}/_history/{version or 'unversioned'}"
    with session_scope() as session:
        job, created = create_job(
            session=session,
            patient_id=patient_id,
            kinds=["soap"],
            idempotency_key=key,
            encounter_id=encounter_id,
        )
        if created:
            queue_job(session=session, job=job)
    log.info(
        "transcript queued a SOAP job",
        extra={
            "job_id": job.id,
            "patient_id": patient_id,
            "draft_ref": f"DocumentReference/{resource.get('id')}",
        },
    )
    return job.id
