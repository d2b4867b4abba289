"""Celery tasks: thin, idempotent, take ids."""

from __future__ import annotations

from celery import Task

from services.core.settings import get_settings
from services.core.tracing import TRACEPARENT
from workers.approvals import track_document
from workers.celery_app import (
    CENSUS_TICK,
    FLUSH_OVERDUE,
    FLUSH_TRIGGER,
    POLL_CHANGES,
    RECOVER_GAP,
    RESOLVE_EVENT,
    SUMMARIZE,
    SWEEP_JOBS,
    TRACK_DRAFT,
    celery_app,
)
from workers.census import sweep_censuses, tick
from workers.events import flush_patient, resolve_focus
from workers.jobrunner import summarize_job
from workers.polling import flush_overdue, poll_due, recover
from workers.queueing import sweep_jobs


@celery_app.task(name=SUMMARIZE, acks_late=True, bind=True)  # type: ignore[untyped-decorator]
def summarize(self: Task, job_id: str) -> str:
    """Run a SummaryJob in the trace its message carries; queue it again, after its backoff, when it
    failed transiently."""
    traceparent = getattr(self.request, TRACEPARENT, None)
    return summarize_job(job_id, traceparent=traceparent if isinstance(traceparent, str) else None).value


@celery_app.task(name=SWEEP_JOBS, acks_late=True)  # type: ignore[untyped-decorator]
def sweep() -> dict[str, int]:
    """Beat: queue again the jobs the broker lost and those whose worker stopped renewing its lease, and
    resume the API's censuses whose steps were lost."""
    result = sweep_jobs()
    return {
        "requeued": len(result.requeued),
        "taken_over": len(result.taken_over),
        "still_queued": result.still_queued,
        "censuses_resumed": len(sweep_censuses()),
    }


@celery_app.task(name=FLUSH_TRIGGER, acks_late=True)  # type: ignore[untyped-decorator]
def flush_trigger(patient_id: str) -> str | None:
    """Turn a patient's closed debounce window into one queued job."""
    return flush_patient(patient_id)


@celery_app.task(name=RESOLVE_EVENT, acks_late=True, max_retries=5)  # type: ignore[untyped-decorator]
def resolve_event(focus: str) -> str | None:
    """Find the patient of an id-only event and fold it into that patient's debounce window."""
    return resolve_focus(focus)


@celery_app.task(name=TRACK_DRAFT, acks_late=True)  # type: ignore[untyped-decorator]
def track_draft(ref: str) -> list[str]:
    """Record what a changed DocumentReference means for our drafts (approved, rejected, replaced)."""
    return track_document(ref)


@celery_app.task(name=POLL_CHANGES, acks_late=True)  # type: ignore[untyped-decorator]
def poll_changes() -> dict[str, int]:
    """Beat: one `_lastUpdated` polling round when polling is due."""
    return poll_due(get_settings()).changes


@celery_app.task(name=RECOVER_GAP, acks_late=True)  # type: ignore[untyped-decorator]
def recover_gap(subscription: str, since: str | None) -> dict[str, int]:
    """Read what a subscription's missed events were about."""
    return recover(get_settings(), subscription, since).changes


@celery_app.task(name=FLUSH_OVERDUE, acks_late=True)  # type: ignore[untyped-decorator]
def flush_overdue_triggers() -> list[str]:
    """Beat: make the jobs of debounce windows whose flush task was lost."""
    return flush_overdue()


@celery_app.task(name=CENSUS_TICK, acks_late=True)  # type: ignore[untyped-decorator]
def census_tick(census_id: str, token: str | None = None) -> str | None:
    """One step of a census run from the API: find its members, submit jobs up to its concurrency."""
    status = tick(census_id, token)
    return None if status is None else status.value
