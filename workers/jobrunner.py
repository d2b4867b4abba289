"""Run one SummaryJob: claim it, run the pipeline under a lease it keeps renewing, record the outcome.

Idempotent and fenced: only the attempt that holds the job (status running, its attempt number) may
renew the lease or record the outcome, so a redelivered or swept duplicate never runs a job twice at once
and a worker that lost its lease (paused, cut off) cannot overwrite the attempt that took over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from opentelemetry.trace import SpanKind
from sqlalchemy.exc import SQLAlchemyError

from fhir_adapters.audit_events import RunRecord, device_by_identifier, run_event, write_event
from services.core import tracing
from services.core.db import session_scope
from services.core.errors import EhrSumError
from services.core.settings import Settings, get_settings
from services.jobs.models import JobStatus, SummaryJob
from services.jobs.service import claim_job, get_job, held_by, mark, renew_lease
from services.metrics.service import record_usage
from workers.approvals import adopt_drafts
from workers.clients import fhir_client, llm_client
from workers.pipeline import Pipeline, RunResult, model_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobOutcome:
    """What the caller should do next: nothing, or queue the job again after `retry_in` seconds."""

    status: JobStatus
    retry_in: float | None = None
    traceparent: str | None = None


class LeaseLost(Exception):
    """Another attempt holds the job now; this one stops without recording anything."""


def _renew(job_id: str, attempt: int, lease_s: float) -> bool:
    try:
        with session_scope() as session:
            return renew_lease(session=session, job_id=job_id, attempt=attempt, lease_s=lease_s)
    except SQLAlchemyError as exc:
        # The database is unreachable: carry on; if the lease lapses meanwhile, the fenced finish tells.
        log.warning("lease renewal failed: %s", type(exc).__name__, extra={"job_id": job_id})
        return True


async def _summarize(
    settings: Settings, job_id: str, attempt: int, patient_id: str, kinds: list[str]
) -> RunResult:
    async with fhir_client(settings) as fhir, llm_client(settings) as llm:
        pipeline = Pipeline(settings, llm=llm, fhir=fhir)
        work = asyncio.create_task(pipeline.summarize(patient_id, kinds, job_id=job_id))
        while True:
            done, _ = await asyncio.wait({work}, timeout=settings.job_lease_s / 3)
            if done:
                return work.result()
            if not await asyncio.to_thread(_renew, job_id, attempt, settings.job_lease_s):
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work
                raise LeaseLost


def _not_claimed(job: SummaryJob) -> JobOutcome:
    """A message for a job this worker may not run: another attempt holds it, or it is finished."""
    if job.status == JobStatus.running:
        # A duplicate (a redelivery, a sweep) while the holder renews its lease. Nothing to do: if the
        # holder dies, its lease lapses and the sweeper queues the job again.
        log.info("job held by another attempt", extra={"job_id": job.id, "attempt": job.attempts})
    else:
        # A redelivered message must not re-run a finished job; a failed job runs again only through an
        # explicit retry, which sets it back to queued.
        log.info("job already finished", extra={"job_id": job.id, "status": job.status.value})
    return JobOutcome(job.status)


def run_job(job_id: str, traceparent: str | None = None) -> JobOutcome:
    """Run a job once, in its trace (the message's `traceparent`, else the one stored with the job); a
    transient failure asks for a retry until the job's retry budget is spent."""
    settings = get_settings()
    with session_scope() as session:
        job = claim_job(session=session, job_id=job_id, lease_s=settings.job_lease_s)
        if job is None:
            return _not_claimed(get_job(session=session, job_id=job_id))
        attempt, patient_id, kinds = job.attempts, job.patient_id, list(job.kinds)
        parent = traceparent or job.traceparent
    attributes: dict[str, tracing.AttributeValue | None] = {
        "ehrsum.job.id": job_id,
        "ehrsum.job.attempt": attempt,
        "ehrsum.job.kinds": kinds,
        "messaging.system": "celery",
    }
    with tracing.span("job summarize", attributes, kind=SpanKind.CONSUMER, parent=parent) as span:
        extra: dict[str, Any] = {
            "job_id": job_id,
            "patient_id": patient_id,
            "attempt": attempt,
            "trace_id": tracing.current_trace_id(),
        }
        outcome = _run_claimed(settings, job_id, attempt, patient_id, kinds, extra)
        span.set_attribute("ehrsum.job.status", outcome.status.value)
    return replace(outcome, traceparent=parent)


def _run_claimed(
    settings: Settings, job_id: str, attempt: int, patient_id: str, kinds: list[str], extra: dict[str, Any]
) -> JobOutcome:
    log.info("job started", extra=extra)
    started = datetime.now(UTC)
    try:
        result = asyncio.run(_summarize(settings, job_id, attempt, patient_id, kinds))
    except LeaseLost:
        log.warning("lease lost; the attempt that took over finishes the job", extra=extra)
        return JobOutcome(JobStatus.running)
    except EhrSumError as exc:
        if exc.transient and attempt <= settings.job_max_retries:
            delay = settings.job_retry_backoff_s * 2 ** (attempt - 1)
            status = _finish(job_id, attempt, JobStatus.queued, reason=f"retrying: {exc}", start_in_s=delay)
            log.warning("job will retry", extra={**extra, "elapsed_s": delay})
            return JobOutcome(status, retry_in=delay if status == JobStatus.queued else None)
        log.warning("job failed: %s", type(exc).__name__, extra=extra)
        return JobOutcome(_failed(settings, job_id, attempt, patient_id, kinds, str(exc), started))
    except Exception as exc:
        log.exception("job crashed", extra=extra)
        reason = f"internal error ({type(exc).__name__})"
        return JobOutcome(_failed(settings, job_id, attempt, patient_id, kinds, reason, started))
    return JobOutcome(_succeeded(settings, job_id, attempt, patient_id, result, extra))


def _failed(
    settings: Settings,
    job_id: str,
    attempt: int,
    patient_id: str,
    kinds: list[str],
    reason: str,
    started: datetime,
) -> JobStatus:
    """Record a failed job, and its AuditEvent (outcome: serious failure) on the FHIR server."""
    status = _finish(job_id, attempt, JobStatus.failed, reason=reason)
    if status == JobStatus.failed and settings.fhir_audit_events:
        device = model_device(settings)
        run = RunRecord(
            job_id=job_id,
            patient_id=patient_id,
            device=device_by_identifier(device.identifier, device.name),
            outcome="8",
            started=started,
            kinds=kinds,
            detail=reason,  # our own messages: ids and causes, never record content
            trace_id=tracing.current_trace_id(),
        )

        async def write() -> None:
            async with fhir_client(settings) as client:
                await write_event(client, run_event(run))

        try:
            asyncio.run(write())
        except EhrSumError as exc:
            # The job's failure is recorded here; the server that failed it may well refuse this too.
            log.warning("failure AuditEvent not written: %s", type(exc).__name__, extra={"job_id": job_id})
    return status


def _finish(job_id: str, attempt: int, status: JobStatus, **changes: Any) -> JobStatus:
    """Record an outcome if this attempt still holds the job; the job's status either way."""
    with session_scope() as session:
        job = held_by(session=session, job_id=job_id, attempt=attempt)
        if job is None:
            log.warning("outcome not recorded: another attempt holds the job", extra={"job_id": job_id})
            return get_job(session=session, job_id=job_id).status
        return mark(session=session, job=job, status=status, **changes).status


def _succeeded(
    settings: Settings, job_id: str, attempt: int, patient_id: str, result: RunResult, extra: dict[str, Any]
) -> JobStatus:
    refs = [r.draft_ref for r in result.results if r.draft_ref]
    report = {
        r.kind: {
            **r.verification,
            "violations": [v.model_dump() for v in r.report.violations] if r.report else [],
        }
        for r in result.results
        if r.report is not None or r.verification
    }
    status = _finish(job_id, attempt, JobStatus.succeeded, draft_refs=refs, report=report or None)
    if status != JobStatus.succeeded:
        return status
    with session_scope() as session:
        record_usage(
            session=session,
            job_id=job_id,
            timings=result.timings,
            prompt_tokens=sum(r.prompt_tokens for r in result.results),
            completion_tokens=sum(r.completion_tokens for r in result.results),
            statements_dropped=sum(int(r.verification.get("dropped", 0)) for r in result.results),
        )
    written = [(r.kind, r.draft_ref) for r in result.results if r.draft_ref]
    adopt_drafts(settings, job_id=job_id, patient_id=patient_id, drafts=written)
    stages = {name: round(seconds, 3) for name, seconds in result.timings.items()}
    log.info("job succeeded", extra={**extra, "draft_ref": ",".join(refs), "stages": stages})
    return status
