"""The Celery app: Redis broker, late acks, one task at a time per process."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from celery import Celery
from celery.signals import worker_process_init

from services.core import tracing
from services.core.settings import get_settings

# Task names: publishers send by name, so nothing that queues work imports the task bodies (no cycles).
SUMMARIZE = "workers.tasks.summarize"
SWEEP_JOBS = "workers.tasks.sweep_jobs"
FLUSH_TRIGGER = "workers.tasks.flush_trigger"
RESOLVE_EVENT = "workers.tasks.resolve_event"
TRACK_DRAFT = "workers.tasks.track_draft"
POLL_CHANGES = "workers.tasks.poll_changes"
RECOVER_GAP = "workers.tasks.recover_gap"
FLUSH_OVERDUE = "workers.tasks.flush_overdue"
CENSUS_TICK = "workers.tasks.census_tick"


def make_celery() -> Celery:
    """Build the Celery app from the settings."""
    settings = get_settings()
    app = Celery("ehrsum", broker=settings.broker_url, include=["workers.tasks"])
    app.conf.update(
        # Published to the first of EHRSUM_WORKER_QUEUES; workers consume them all (`ehrsum worker`).
        task_default_queue=settings.worker_queues[0],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        # A running job survives a broker outage (its lease lives in Postgres); cancelling it, Celery's
        # announced future default, would only make a redelivery or the sweeper start it over.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        # A task unacked for this long is redelivered (a lost worker's job); it must outlast the slowest job.
        broker_transport_options={
            "visibility_timeout": settings.broker_visibility_timeout_s or int(settings.llm_timeout_s * 3)
        },
        # `ehrsum beat` runs these: the polling fallback, a sweep for lost debounce flushes, and the job
        # sweeper (jobs the broker lost, jobs whose worker died). A sweep that waited out an outage expires.
        beat_schedule={
            "sweep-jobs": {
                "task": SWEEP_JOBS,
                "schedule": settings.sweep_interval_s,
                "options": {"expires": settings.sweep_interval_s},
            },
            "poll-changes": {"task": POLL_CHANGES, "schedule": settings.poll_interval_s},
            "flush-overdue": {
                "task": FLUSH_OVERDUE,
                "schedule": max(5.0, settings.debounce_s),
            },
        },
    )
    return app


@worker_process_init.connect  # type: ignore[untyped-decorator]
def _init_pool_process(**_: object) -> None:
    """Give each pool process its own database connections, and load what every job needs once.

    Inherited connections are shared with the parent: a child killed mid-transaction leaves them
    unusable. The tokenizer and the FHIR model classes would otherwise load during the first job.
    """
    from services.core.db import get_engine
    from workers.pipeline import warm_up

    get_engine().dispose(close=False)
    # The parent's exporter thread did not survive the fork.
    tracing.configure("ehr-summarizer-worker", get_settings().otel_endpoint)
    warm_up(get_settings())


celery_app = make_celery()


def publish(
    name: str, *args: Any, countdown: float | None = None, eta: datetime | None = None, **options: Any
) -> None:
    """Queue a task by name, carrying the current span as the message's `traceparent` header."""
    headers = tracing.inject(options.pop("headers", None))
    celery_app.send_task(name, args=list(args), countdown=countdown, eta=eta, headers=headers, **options)
