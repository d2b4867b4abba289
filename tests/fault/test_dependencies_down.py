"""The FHIR server or the LLM server goes away while jobs run: retries with backoff, nothing lost."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.conftest import free_port
from tests.fault.conftest import (
    TcpRelay,
    Workers,
    job,
    stop,
    submit,
    succeeded_with_one_draft_each,
    wait_until,
)

FHIR_OUTAGE_S = 20.0


def test_fhir_server_stopped_during_jobs(
    api: str, auth: dict[str, str], small_files: list[Path], workers: Workers, tmp_path: Path
) -> None:
    """Stop sekmet while jobs run, start it again on the same port and data: every job completes once."""
    from deploy import fhir_server, patients

    started = time.monotonic()
    port, workdir = free_port(), tmp_path / "sekmet"
    server = fhir_server.start(workdir, port)
    url = fhir_server.base_url(port)
    try:
        pids = [patients.load(url, path) for path in small_files]
        # Two workers: the first job may spend the whole outage generating (no FHIR call to fail, on a fast
        # machine), and the jobs submitted during the outage must not wait behind it: the second worker
        # starts them while the server is down, so their record pull meets the outage.
        for _ in range(2):
            workers.start(
                EHRSUM_FHIR_BASE_URL=url,
                EHRSUM_FHIR_TIMEOUT_S="5",
                EHRSUM_JOB_RETRY_BACKOFF_S="2",
                EHRSUM_JOB_MAX_RETRIES="6",
            )
        first, *rest = pids
        jobs = {submit(api, auth, first): first}
        wait_until(lambda: any(job(api, auth, j)["attempts"] for j in jobs), 60, "a job starting")
        stop(server)
        down_at = time.monotonic()
        jobs |= {submit(api, auth, pid): pid for pid in rest}
        reasons: set[str] = set()
        while time.monotonic() - down_at < FHIR_OUTAGE_S:
            reasons |= {str(job(api, auth, j)["reason"]) for j in jobs if job(api, auth, j)["reason"]}
            time.sleep(0.5)
        server = fhir_server.start(workdir, port)

        succeeded_with_one_draft_each(api, auth, url, jobs, 240)
        attempts = {j: int(job(api, auth, j)["attempts"]) for j in jobs}
        assert max(attempts.values()) > 1, attempts  # the outage was seen and retried
        retries = workers.lines("job will retry")
        assert retries, "no job retried while the FHIR server was down"
        print(
            f"\nFHIR server down {FHIR_OUTAGE_S:.0f} s: {len(jobs)} jobs, "
            f"attempts {sorted(attempts.values())}, "
            f"{len(retries)} retries with backoff, all succeeded with one draft each; "
            f"reasons seen while down: {sorted(reasons)[:2]}; "
            f"total {time.monotonic() - started:.0f} s"
        )
    finally:
        stop(server)


def test_llm_down_fails_clearly_then_retry_succeeds(
    api: str,
    auth: dict[str, str],
    fhir_server: str,
    llm_server: str,
    small_files: list[Path],
    workers: Workers,
) -> None:
    """No LLM: jobs retry, then fail with the reason; once it is back, POST .../retry re-runs them."""
    from deploy import patients

    started = time.monotonic()
    upstream = httpx.URL(llm_server)
    relay = TcpRelay(free_port(), (upstream.host, upstream.port or 80))  # not started: nothing listens
    max_retries = 2
    workers.start(
        EHRSUM_LLM_BASE_URL=f"http://127.0.0.1:{relay.port}/v1",
        EHRSUM_JOB_MAX_RETRIES=str(max_retries),
        EHRSUM_JOB_RETRY_BACKOFF_S="1",
    )
    pids = [patients.load(fhir_server, path) for path in small_files[:2]]
    jobs = {submit(api, auth, pid): pid for pid in pids}
    try:
        wait_until(
            lambda: all(job(api, auth, j)["status"] == "failed" for j in jobs), 120, "every job failed"
        )
        failed_at = time.monotonic() - started
        for job_id in jobs:
            answer = job(api, auth, job_id)
            assert answer["attempts"] == max_retries + 1, answer
            assert "LLM server unreachable" in str(answer["reason"]), answer["reason"]
            assert answer["draft_refs"] == []
        reason = job(api, auth, next(iter(jobs)))["reason"]
        relay.start()  # the LLM is back
        for job_id in jobs:
            again = httpx.post(f"{api}/v1/summaries/{job_id}/retry", headers=auth, timeout=30)
            assert again.status_code == 202, again.text
        succeeded_with_one_draft_each(api, auth, fhir_server, jobs, 240)
        print(
            f"\nLLM down: {len(jobs)} jobs failed after {max_retries + 1} attempts in {failed_at:.0f} s "
            f"with reason {reason!r}; after POST /retry with the LLM back all succeeded, one draft each; "
            f"total {time.monotonic() - started:.0f} s"
        )
    finally:
        relay.stop()
