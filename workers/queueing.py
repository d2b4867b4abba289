"""Putting jobs on the broker, and finding the ones it lost: a Redis restart, an enqueue that failed.

Postgres is the record of what must run; the broker only carries messages. Every publish also sets a
marker key in the broker's Redis, so a Redis that lost its data has lost the markers too. The sweeper
(beat, every `sweep_interval_s`) takes the jobs whose lease lapsed: a running job whose worker stopped
renewing is queued again; a queued job is queued again when its marker is gone. A duplicate message
is harmless: `claim_job` lets one attempt at a time run a job, and write-back never makes a second draft.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

import redis
from kombu.exceptions import OperationalError
from sqlmodel import Session

from services.core import tracing
from services.core.broker import broker_redis
from services.core.db import session_scope
from services.core.settings import Settings, get_settings
from services.jobs.models import JobStatus, SummaryJob
from services.jobs.service import lapsed_jobs, requeue_check_at
from workers.celery_app import SUMMARIZE, publish

log = logging.getLogger(__name__)
MARKER = "ehrsum:job-queued:"
BROKER_ERRORS = (OperationalError, redis.RedisError)
SWEEP_BATCH = 500


def _marker_ttl_s(settings: Settings) -> int:
    # Bounds how long a purged or otherwise lost message goes unnoticed; a backlog older than this
    # gets one duplicate message per job, which claim_job turns into a no-op.
    return int(12 * settings.job_requeue_after_s)


def enqueue_job(job_id: str, countdown: float = 0.0, traceparent: str | None = None) -> None:
    """Publish the summarize task of a committed job (to start after `countdown` s) and mark it queued;
    the message carries `traceparent` (the job's trace; default: the current span)."""
    settings = get_settings()
    with tracing.attached(traceparent):
        publish(
            SUMMARIZE,
            job_id,
            countdown=countdown or None,
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0.2},
        )
    broker_redis(settings.broker_url).set(f"{MARKER}{job_id}", 1, ex=_marker_ttl_s(settings))


def queue_job(*, session: Session, job: SummaryJob) -> bool:
    """Publish a committed job; with the broker unreachable, leave it to the next sweep (nothing is lost)."""
    try:
        enqueue_job(job.id, traceparent=job.traceparent)
        return True
    except BROKER_ERRORS as exc:
        log.warning(
            "broker unreachable, the next sweep queues the job: %s",
            type(exc).__name__,
            extra={"job_id": job.id},
        )
        job.lease_until = datetime.now(UTC)
        session.add(job)
        session.commit()
        session.refresh(job)
        return False


def marked(settings: Settings, job_ids: list[str]) -> set[str]:
    """The jobs whose enqueue marker is still in the broker's Redis."""
    if not job_ids:
        return set()
    found = cast(
        list[bytes | None], broker_redis(settings.broker_url).mget([f"{MARKER}{j}" for j in job_ids])
    )
    return {job_id for job_id, value in zip(job_ids, found, strict=True) if value is not None}


@dataclass
class SweepResult:
    """What one sweep did, by job id."""

    requeued: list[str] = field(default_factory=list)
    taken_over: list[str] = field(default_factory=list)
    still_queued: int = 0


def sweep_jobs(settings: Settings | None = None) -> SweepResult:
    """Queue again the lapsed jobs the broker lost or whose worker is gone; one batch per call."""
    settings = settings or get_settings()
    result = SweepResult()
    traces: dict[str, str | None] = {}
    with session_scope() as session:
        jobs = lapsed_jobs(session=session, limit=SWEEP_BATCH)
        held = marked(settings, [j.id for j in jobs if j.status == JobStatus.queued])
        for job in jobs:
            traces[job.id] = job.traceparent
            job.lease_until = requeue_check_at()
            if job.id in held:
                result.still_queued += 1  # waiting behind a backlog: look again later
            elif job.status == JobStatus.running:
                job.status = JobStatus.queued
                job.reason = "requeued: the worker stopped renewing its lease"
                result.taken_over.append(job.id)
            else:
                result.requeued.append(job.id)
            session.add(job)
        session.commit()
    for job_id in [*result.taken_over, *result.requeued]:
        enqueue_job(job_id, traceparent=traces[job_id])
    if result.requeued or result.taken_over:
        log.warning(
            "sweeper queued %d lost and %d abandoned jobs",
            len(result.requeued),
            len(result.taken_over),
            extra={"job_id": ",".join([*result.taken_over, *result.requeued])[:2000]},
        )
    return result
