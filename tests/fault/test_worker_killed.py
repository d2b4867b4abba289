"""Workers SIGKILLed mid-job, over and over: every job still ends succeeded, exactly one draft per kind.

Each job asks for all three kinds, so an attempt (three LLM calls) outlasts the time to the kill: no job
finishes before the kills are done, and a kill after a kind's write-back leaves a job half written, whose
next attempt must find that draft instead of writing a second one. Beat runs, as in every deployment:
a killed worker's job comes back through the broker's redelivery or through the sweeper, whichever
comes first, and the job's lease lets only one attempt at a time run it.
"""

from __future__ import annotations

import functools
import os
import random
import signal
import time
from pathlib import Path

import pytest

from tests.fault.conftest import (
    Workers,
    job,
    pool_children,
    submit,
    succeeded_with_one_draft_each,
    wait_until,
)

# Eight whole-worker kills reach both ways a killed job comes back (redelivery, the sweeper's takeover) and
# the half-written job several times over; bench/soak.sh runs the 100.
KILLS = int(os.environ.get("EHRSUM_FAULT_KILLS", "8"))
KINDS = ["progress", "soap", "triage"]


@pytest.mark.parametrize(
    ("target", "kills"),
    [
        pytest.param("worker", KILLS, id="whole-worker"),
        pytest.param("pool", 4, id="pool-process"),
    ],
)
def test_sigkill_mid_job_repeatedly(
    api: str,
    auth: dict[str, str],
    fhir_server: str,
    small_files: list[Path],
    workers: Workers,
    target: str,
    kills: int,
) -> None:
    """Kill the worker (parent and pool) or only its pool process while a job runs, `kills` times."""
    from deploy import patients

    started = time.monotonic()
    rng = random.Random(6)
    pids = [patients.load(fhir_server, path) for path in small_files]
    jobs = {submit(api, auth, pid, KINDS): pid for pid in pids}

    def attempts() -> int:
        return sum(int(job(api, auth, j)["attempts"]) for j in jobs)

    def no_crash() -> None:
        crashed = workers.lines("raised unexpected")
        assert not crashed, f"a task crashed and its job is stuck: {crashed[0][:300]}"

    def newer(floor: int) -> int:
        no_crash()
        n = attempts()
        return n if n > floor else 0

    workers.start_beat()  # its sweeper takes over the jobs of killed workers once their leases lapse
    worker = workers.start(short_visibility=True)
    done = seen = 0
    while done < kills:
        # The next attempt of some job starts (attempts goes up); let it run a little, then kill.
        seen = wait_until(functools.partial(newer, seen), 180, "a job attempt starting")
        time.sleep(rng.uniform(0.3, 4.0))
        done += 1
        if target == "worker":
            workers.kill_group(worker)  # redelivered once the broker's visibility timeout passes
            worker = workers.start(short_visibility=True)
        else:
            # The pool replaces a killed process in its own time; one exists again within seconds.
            children = wait_until(functools.partial(pool_children, worker), 60, "a pool process")
            for pid in children:
                os.kill(pid, signal.SIGKILL)  # reject_on_worker_lost requeues the message at once
    killed_s = time.monotonic() - started

    succeeded_with_one_draft_each(api, auth, fhir_server, jobs, 300, check=no_crash)
    total = sum(int(job(api, auth, j)["attempts"]) for j in jobs)
    swept = len(workers.lines("sweeper queued"))
    lost = len(workers.lines("lease lost"))
    print(
        f"\n{target} SIGKILLs: {done}; {len(jobs)} jobs of 3 kinds, {total} attempts, all succeeded with "
        f"one draft per kind; sweeps that took over a job: {swept}; leases lost: {lost}; "
        f"kill phase {killed_s:.0f} s, "
        f"total {time.monotonic() - started:.0f} s"
    )
