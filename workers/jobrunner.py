"""Run one SummaryJob: claim it, run the pipeline under a lease it keeps renewing, record the outcome.

Idempotent and fenced: only the attempt that holds the job (status running, its attempt number) may
renew the lease or record the outcome, so a redelivered or swept duplicate never runs a job twice at once
and a worker that lost its lease (paused, cut off) cannot overwrite the attempt that took over.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
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
from services.metrics.models import JobUsage
from services.metrics.service import job_usage
from workers.approvals import adopt_drafts
from workers.assembly import model_device
from workers.clients import fhir_client, llm_client
from workers.pipeline import Pipeline, RunResult
from workers.queueing import enqueue_job

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


@dataclass(frozen=True)
class Claimed:
    """A job this attempt holds: what to run."""

    job_id: str
    attempt: int
    patient_id: str
    kinds: list[str]
    encounter: str | None


async def _summarize(settings: Settings, job: Claimed, started: datetime) -> RunResult:
    """The pipeline and the drafts' adoption, in one event loop with one FHIR client, under the lease."""
    async with fhir_client(settings) as fhir, llm_client(settings) as llm:

        async def drafts_written_and_adopted() -> RunResult:
            pipeline = Pipeline(settings, llm=llm, fhir=fhir)
            result = await pipeline.summarize(
                job.patient_id, job.kinds, encounter=job.encounter, job_id=job.job_id, started=started
            )
            written = [(r.kind, r.draft_ref) for r in result.results if r.draft_ref]
            with result.timed("adopt"):
                await adopt_drafts(fhir, job_id=job.job_id, patient_id=job.patient_id, drafts=written)
            return result

        work = asyncio.create_task(drafts_written_and_adopted())
        with LeaseKeeper(job, settings.job_lease_s, work) as keeper:
            try:
                return await work
            except asyncio.CancelledError:
                if keeper.lost.is_set():
                    raise LeaseLost from None
                raise


class LeaseKeeper(threading.Thread):
    """Renews a job's lease every third of it from a thread of its own, so that CPU-bound stretches on the
    job's event loop (condensing, composing, verifying) cannot let it lapse; on loss it cancels the work."""

    def __init__(self, job: Claimed, lease_s: float, work: asyncio.Task[Any]):
        super().__init__(name=f"lease-{job.job_id}", daemon=True)
        self.job, self.lease_s, self.work = job, lease_s, work
        self.loop = asyncio.get_running_loop()
        self.lost, self.done = threading.Event(), threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.lease_s / 3):
            if not _renew(self.job.job_id, self.job.attempt, self.lease_s):
                self.lost.set()
                self.loop.call_soon_threadsafe(self.work.cancel)
                return

    def __enter__(self) -> LeaseKeeper:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.join()


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
        row = claim_job(session=session, job_id=job_id, lease_s=settings.job_lease_s)
        if row is None:
            return _not_claimed(get_job(session=session, job_id=job_id))
        job = Claimed(job_id, row.attempts, row.patient_id, list(row.kinds), row.encounter_id)
        parent = traceparent or row.traceparent
    attributes: dict[str, tracing.AttributeValue | None] = {
        "ehrsum.job.id": job_id,
        "ehrsum.job.attempt": job.attempt,
        "ehrsum.job.kinds": job.kinds,
        "messaging.system": "celery",
    }
    with tracing.span("job summarize", attributes, kind=SpanKind.CONSUMER, parent=parent) as span:
        outcome = _run_claimed(settings, job)
        span.set_attribute("ehrsum.job.status", outcome.status.value)
    return replace(outcome, traceparent=parent)


def _run_claimed(settings: Settings, job: Claimed) -> JobOutcome:
    extra: dict[str, Any] = {
        "job_id": job.job_id,
        "patient_id": job.patient_id,
        "attempt": job.attempt,
        "trace_id": tracing.current_trace_id(),
    }
    log.info("job started", extra=extra)
    started = datetime.now(UTC)
    try:
        result = asyncio.run(_summarize(settings, job, started))
    except LeaseLost:
        log.warning("lease lost; the attempt that took over finishes the job", extra=extra)
        return JobOutcome(JobStatus.running)
    except EhrSumError as exc:
        if exc.transient and job.attempt <= settings.job_max_retries:
            delay = settings.job_retry_backoff_s * 2 ** (job.attempt - 1)
            status = _finish(job, JobStatus.queued, reason=f"retrying: {exc}", start_in_s=delay)
            log.warning("job will retry", extra={**extra, "elapsed_s": delay})
            return JobOutcome(status, retry_in=delay if status == JobStatus.queued else None)
        log.warning("job failed: %s", type(exc).__name__, extra=extra)
        return JobOutcome(_failed(settings, job, str(exc), started))
    except Exception as exc:
        log.exception("job crashed", extra=extra)
        return JobOutcome(_failed(settings, job, f"internal error ({type(exc).__name__})", started))
    return JobOutcome(_succeeded(job, result, extra))


def summarize_job(
    job_id: str, *, traceparent: str | None = None, wait: Callable[[float], None] | None = None
) -> JobStatus:
    """The summarize task's body: run the job; after a transient failure it runs again once its backoff has
    passed: from the broker, or here after `wait` (`ehrsum summarize --inline`)."""
    outcome = run_job(job_id, traceparent)
    while outcome.retry_in is not None:
        if wait is None:
            enqueue_job(job_id, countdown=outcome.retry_in, traceparent=outcome.traceparent)
            break
        wait(outcome.retry_in)
        outcome = run_job(job_id, outcome.traceparent)
    return outcome.status


def _failed(settings: Settings, job: Claimed, reason: str, started: datetime) -> JobStatus:
    """Record a failed job, and its AuditEvent (outcome: serious failure) on the FHIR server."""
    status = _finish(job, JobStatus.failed, reason=reason)
    if status == JobStatus.failed and settings.fhir_audit_events:
        device = model_device(settings)
        run = RunRecord(
            job_id=job.job_id,
            patient_id=job.patient_id,
            device=device_by_identifier(device.identifier, device.name),
            outcome="8",
            started=started,
            kinds=job.kinds,
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
            log.warning(
                "failure AuditEvent not written: %s", type(exc).__name__, extra={"job_id": job.job_id}
            )
    return status


def _finish(job: Claimed, status: JobStatus, usage: JobUsage | None = None, **changes: Any) -> JobStatus:
    """Record an outcome (with the run's usage) if this attempt still holds the job; the job's status."""
    with session_scope() as session:
        row = held_by(session=session, job_id=job.job_id, attempt=job.attempt)
        if row is None:
            log.warning("outcome not recorded: another attempt holds the job", extra={"job_id": job.job_id})
            return get_job(session=session, job_id=job.job_id).status
        if usage is not None:
            session.add(usage)
        return mark(session=session, job=row, status=status, **changes).status


def _succeeded(job: Claimed, result: RunResult, extra: dict[str, Any]) -> JobStatus:
    """Record a run whose drafts are written, recorded and adopted: succeeded, with its report and usage."""
    refs = [r.draft_ref for r in result.results if r.draft_ref]
    report = {
        r.kind: {**block, "violations": [v.model_dump() for v in r.report.violations] if r.report else []}
        for r in result.results
        if (block := r.verification_json())
    }
    dropped = sum(r.verification.dropped for r in result.results if r.verification is not None)
    usage = job_usage(
        job_id=job.job_id, timings=result.timings, usage=result.usage, statements_dropped=dropped
    )
    status = _finish(job, JobStatus.succeeded, usage, draft_refs=refs, report=report or None)
    if status == JobStatus.succeeded:
        stages = {name: round(seconds, 3) for name, seconds in result.timings.items()}
        log.info("job succeeded", extra={**extra, "draft_ref": ",".join(refs), "stages": stages})
    return status
