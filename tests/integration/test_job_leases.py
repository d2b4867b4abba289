"""Claims, leases and the sweeper on real Postgres and Redis: one attempt at a time, lost jobs found."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from services.core.broker import broker_redis
from services.core.db import session_scope
from services.core.settings import get_settings
from services.jobs.models import JobStatus
from services.jobs.service import claim_job, create_job, get_job, held_by, renew_lease
from workers.jobrunner import Claimed, JobOutcome, LeaseKeeper, run_job
from workers.queueing import MARKER, marked, sweep_jobs

pytestmark = pytest.mark.integration


def new_job(patient: str) -> str:
    with session_scope() as session:
        job, _ = create_job(session=session, patient_id=patient, kinds=["progress"])
        return job.id


def lapse(job_id: str) -> None:
    """Move a job's lease into the past, as time passing would."""
    with session_scope() as session:
        job = get_job(session=session, job_id=job_id)
        job.lease_until = datetime.now(UTC) - timedelta(seconds=1)
        session.add(job)
        session.commit()


def test_a_job_is_claimed_by_one_attempt_at_a_time(postgres_db: str) -> None:
    job_id = new_job("lease-1")
    with session_scope() as session:
        first = claim_job(session=session, job_id=job_id, lease_s=60)
        assert first is not None and first.status == JobStatus.running and first.attempts == 1
        assert claim_job(session=session, job_id=job_id, lease_s=60) is None
    # A duplicate message while the lease holds: nothing runs, and nothing is queued again (the sweeper
    # takes the job over if the holder's lease lapses).
    assert run_job(job_id) == JobOutcome(JobStatus.running)
    with session_scope() as session:
        assert get_job(session=session, job_id=job_id).attempts == 1


def test_a_lapsed_lease_is_taken_over_and_the_old_attempt_is_fenced_off(postgres_db: str) -> None:
    job_id = new_job("lease-2")
    with session_scope() as session:
        assert claim_job(session=session, job_id=job_id, lease_s=60) is not None
        assert renew_lease(session=session, job_id=job_id, attempt=1, lease_s=60)
    lapse(job_id)
    with session_scope() as session:
        second = claim_job(session=session, job_id=job_id, lease_s=60)
        assert second is not None and second.attempts == 2
        # The first attempt (a worker that was only paused) can neither renew nor record an outcome.
        assert not renew_lease(session=session, job_id=job_id, attempt=1, lease_s=60)
        assert held_by(session=session, job_id=job_id, attempt=1) is None
        assert held_by(session=session, job_id=job_id, attempt=2) is not None


def test_the_sweeper_requeues_lost_and_abandoned_jobs_once(postgres_db: str, redis_broker: str) -> None:
    settings = get_settings()
    on_broker, lost, abandoned, live = (new_job(f"sweep-{n}") for n in range(4))
    # The marker of a published message (no message itself: a session-wide worker would take it).
    broker_redis(settings.broker_url).set(f"{MARKER}{on_broker}", 1)
    broker_redis(settings.broker_url).delete(f"{MARKER}{lost}")  # queued, but the broker lost it
    with session_scope() as session:
        assert claim_job(session=session, job_id=abandoned, lease_s=60) is not None  # its worker died
        assert claim_job(session=session, job_id=live, lease_s=60) is not None  # its worker renews
    for job_id in (on_broker, lost, abandoned):
        lapse(job_id)

    swept = sweep_jobs(settings)
    assert lost in swept.requeued and abandoned in swept.taken_over
    assert on_broker not in swept.requeued + swept.taken_over and swept.still_queued >= 1
    assert live not in swept.requeued + swept.taken_over
    assert {lost, abandoned} <= marked(settings, [lost, abandoned])
    with session_scope() as session:
        taken = get_job(session=session, job_id=abandoned)
    # Queued again, or already claimed by a new attempt: never left running under the dead one.
    assert taken.status != JobStatus.running or taken.attempts > 1, taken
    # The next sweep finds nothing of these: their leases moved on, nothing is queued twice.
    again = sweep_jobs(settings)
    assert not {on_broker, lost, abandoned, live} & set(again.requeued + again.taken_over)


def test_a_claim_sets_a_lease_the_worker_renews(postgres_db: str) -> None:
    job_id = new_job("lease-3")
    with session_scope() as session:
        job = claim_job(session=session, job_id=job_id, lease_s=30)
        assert job is not None and job.lease_until is not None
        first = job.lease_until
    time.sleep(0.05)
    with session_scope() as session:
        assert renew_lease(session=session, job_id=job_id, attempt=1, lease_s=30)
        assert get_job(session=session, job_id=job_id).lease_until > first  # type: ignore[operator]


def claimed(patient: str, lease_s: float) -> Claimed:
    """A new job, claimed by its first attempt with a lease of `lease_s`."""
    job_id = new_job(patient)
    with session_scope() as session:
        row = claim_job(session=session, job_id=job_id, lease_s=lease_s)
        assert row is not None
        return Claimed(job_id, row.attempts, row.patient_id, list(row.kinds), None)


def test_the_lease_holds_while_the_job_blocks_its_event_loop(postgres_db: str) -> None:
    """CPU-bound work that never yields (condensing a large record on a busy machine) outlasting the
    lease: the keeper's own thread renews it, so no other attempt can take the job over meanwhile."""
    job = claimed("lease-blocked", lease_s=3)

    async def blocking() -> bool:
        deadline = time.monotonic() + 7
        while time.monotonic() < deadline:  # busy, holding the GIL but for the interpreter's switches
            pass
        with session_scope() as session:
            return claim_job(session=session, job_id=job.job_id, lease_s=3) is None

    async def run() -> bool:
        work = asyncio.create_task(blocking())
        with LeaseKeeper(job, 3, work):
            return await work

    assert asyncio.run(run()), "the lease lapsed while the event loop was blocked"


def test_a_lost_lease_cancels_the_work(postgres_db: str) -> None:
    job = claimed("lease-lost", lease_s=60)
    lapse(job.job_id)
    with session_scope() as session:
        assert claim_job(session=session, job_id=job.job_id, lease_s=60) is not None  # attempt 2

    async def run() -> bool:
        work = asyncio.create_task(asyncio.sleep(60))
        with LeaseKeeper(job, 1.5, work) as keeper:
            with pytest.raises(asyncio.CancelledError):
                await work
            return keeper.lost.is_set()

    started = time.monotonic()
    assert asyncio.run(run())
    assert time.monotonic() - started < 30
