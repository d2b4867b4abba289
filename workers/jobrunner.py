"""Run one SummaryJob: re-read its state, run the pipeline, record the outcome. Idempotent."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from services.core.db import session_scope
from services.core.errors import EhrSumError
from services.core.settings import Settings, get_settings
from services.jobs.models import JobStatus
from services.jobs.service import get_job, mark
from services.metrics.service import record_usage
from workers.approvals import adopt_drafts
from workers.clients import fhir_client, llm_client
from workers.pipeline import Pipeline, RunResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobOutcome:
    """What the caller should do next: nothing, or retry after `retry_in` seconds."""

    status: JobStatus
    retry_in: float | None = None


async def _summarize(settings: Settings, patient_id: str, kinds: list[str]) -> RunResult:
    async with fhir_client(settings) as fhir, llm_client(settings) as llm:
        return await Pipeline(settings, llm=llm, fhir=fhir).summarize(patient_id, kinds)


def run_job(job_id: str) -> JobOutcome:
    """Run a job once; a transient failure asks for a retry until the job's retry budget is spent."""
    settings = get_settings()
    with session_scope() as session:
        job = get_job(session=session, job_id=job_id)
        if job.status in (JobStatus.succeeded, JobStatus.failed):
            # A redelivered message (a lost worker, a duplicate) must not re-run a finished job;
            # a failed job runs again only through an explicit retry, which sets it back to queued.
            log.info("job already finished", extra={"job_id": job_id, "status": job.status.value})
            return JobOutcome(job.status)
        job = mark(session=session, job=job, status=JobStatus.running)
        extra = {"job_id": job_id, "patient_id": job.patient_id, "attempt": job.attempts}
        log.info("job started", extra=extra)
        try:
            result = asyncio.run(_summarize(settings, job.patient_id, list(job.kinds)))
        except EhrSumError as exc:
            if exc.transient and job.attempts <= settings.job_max_retries:
                delay = settings.job_retry_backoff_s * 2 ** (job.attempts - 1)
                mark(session=session, job=job, status=JobStatus.queued, reason=f"retrying: {exc}")
                log.warning("job will retry", extra={**extra, "elapsed_s": delay})
                return JobOutcome(JobStatus.queued, retry_in=delay)
            mark(session=session, job=job, status=JobStatus.failed, reason=str(exc))
            log.warning("job failed: %s", type(exc).__name__, extra=extra)
            return JobOutcome(JobStatus.failed)
        except Exception as exc:
            mark(
                session=session,
                job=job,
                status=JobStatus.failed,
                reason=f"internal error ({type(exc).__name__})",
            )
            log.exception("job crashed", extra=extra)
            return JobOutcome(JobStatus.failed)
        refs = [r.draft_ref for r in result.results if r.draft_ref]
        report = {
            r.kind: {**r.verification, "violations": [v.model_dump() for v in r.report.violations]}
            for r in result.results
            if r.report is not None
        }
        mark(session=session, job=job, status=JobStatus.succeeded, draft_refs=refs, report=report or None)
        record_usage(
            session=session,
            job_id=job_id,
            timings=result.timings,
            prompt_tokens=sum(r.prompt_tokens for r in result.results),
            completion_tokens=sum(r.completion_tokens for r in result.results),
            statements_dropped=sum(int(r.verification.get("dropped", 0)) for r in result.results),
        )
        written = [(r.kind, r.draft_ref) for r in result.results if r.draft_ref]
        adopt_drafts(settings, job_id=job_id, patient_id=job.patient_id, drafts=written)
        stages = {name: round(seconds, 3) for name, seconds in result.timings.items()}
        log.info("job succeeded", extra={**extra, "draft_ref": ",".join(refs), "stages": stages})
        return JobOutcome(JobStatus.succeeded)
