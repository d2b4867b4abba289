"""Census runs end to end: `ehrsum census` and /v1/census against sekmet-fhir, the worker and the CPU vLLM.

Two patients are summarized once by the model (the first test); every later run reuses the same run
label, so it finds their jobs succeeded and skips them: the rest of the module costs no model time.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.processes import wait_for
from tests.conftest import BIN, REPO, _env, jobs_of

pytestmark = pytest.mark.e2e
RUN = f"e2e-{uuid.uuid4().hex[:8]}"
MISSING = "no-such-patient"


# A bound on a hang, not a speed target: the census's jobs wait their turn on the run's one CPU vLLM beside
# the other suite process and the fault session (on a slow machine a 2-patient census took over 180 s), and
# its ticks wait in the session worker behind the jobs that the session's subscriptions make of the
# Encounters this module posts (two such jobs kept a census of two skipped patients running 429 s).
CENSUS_WAIT_S = 900


def ehrsum(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "ehrsum"), *args],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=REPO,
        check=False,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def ids_file(census_patients: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("census") / "ids.txt"
    first, second = census_patients[:2]
    path.write_text(f"# morning census\n{first}\nPatient/{second}\n{MISSING}\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def first_run(worker: Any, ids_file: Path) -> subprocess.CompletedProcess[str]:
    """The census of two patients and one id the server does not know, run once through the real worker."""
    return ehrsum("census", "--ids", str(ids_file), "--concurrency", "2", "--run", RUN, "--poll", "0.5")


def table_row(table: str, name: str) -> str:
    line = next(line for line in table.splitlines() if line.startswith(f"  {name} "))
    return line[len(name) + 2 :].strip()


def test_a_census_summarizes_each_patient_once_and_reports_failures(
    first_run: subprocess.CompletedProcess[str], census_patients: list[str]
) -> None:
    assert first_run.returncode == 1, first_run.stderr[-3000:]  # one patient failed
    table = first_run.stdout
    assert table_row(table, "succeeded") == "2"
    assert table_row(table, "failed") == "1"
    assert table_row(table, "drafts written") == "2"
    assert table_row(table, "not finished") == "0"
    failure = next(line for line in table.splitlines() if f"Patient/{MISSING}" in line)
    assert "not found" in failure
    for patient in census_patients[:2]:
        (job,) = jobs_of(patient)
        assert job.status.value == "succeeded" and len(job.draft_refs) == 1
    # Not a terminal: plain lines, one per change, no carriage returns or escape codes.
    progress = first_run.stderr.splitlines()
    assert "\r" not in first_run.stderr and "\x1b" not in first_run.stderr
    assert progress[0].endswith("done (0 succeeded, 0 failed, 0 skipped), 0 running, 0 queued, ETA ?")
    assert any("running" in line and "ETA" in line for line in progress)
    assert any(line.startswith("census ") and "3/3 done" in line for line in progress)


def test_a_rerun_skips_what_succeeded_and_retries_what_failed(
    first_run: subprocess.CompletedProcess[str], ids_file: Path, census_patients: list[str]
) -> None:
    started = time.monotonic()
    again = ehrsum("census", "--ids", str(ids_file), "--run", RUN, "--poll", "0.2")
    assert again.returncode == 1, again.stderr[-3000:]
    assert table_row(again.stdout, "skipped").startswith("2 ")
    assert table_row(again.stdout, "succeeded") == "0"
    assert table_row(again.stdout, "failed") == "1"  # the unknown patient, retried and failed again
    assert time.monotonic() - started < 60
    assert all(len(jobs_of(p)) == 1 for p in census_patients[:2])
    (missing,) = jobs_of(MISSING)
    assert missing.attempts == 1 and missing.status.value == "failed"  # a fresh budget: attempts reset


def test_a_ward_census_on_a_terminal_draws_a_bar(
    first_run: subprocess.CompletedProcess[str], fhir_server: str, census_patients: list[str]
) -> None:
    ward = httpx.post(
        f"{fhir_server}/Location", json={"resourceType": "Location", "name": "Ward 3"}, timeout=30
    )
    for patient in census_patients[:2]:
        body = {
            "resourceType": "Encounter",
            "status": "in-progress",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "subject": {"reference": f"Patient/{patient}"},
            "location": [{"location": {"reference": f"Location/{ward.json()['id']}"}}],
        }
        assert httpx.post(f"{fhir_server}/Encounter", json=body, timeout=30).status_code == 201
    controller, terminal = os.openpty()
    with os.fdopen(controller, "rb", buffering=0) as screen:
        done = subprocess.run(
            [str(BIN / "ehrsum"), "census", "--location", ward.json()["id"], "--run", RUN, "--poll", "0.2"],
            stdout=subprocess.PIPE,
            stderr=terminal,
            env=_env(),
            cwd=REPO,
            check=False,
            timeout=120,
        )
        os.close(terminal)
        drawn = b""
        while chunk := _read(screen):
            drawn += chunk
    assert done.returncode == 0, drawn[-2000:]
    text = drawn.decode()
    assert "\r\x1b[2K[" + "#" * 28 + "] 2/2" in text
    assert "(search)" in done.stdout.decode() and table_row(done.stdout.decode(), "skipped").startswith("2 ")


def _read(screen: Any) -> bytes:
    try:
        return bytes(screen.read(4096) or b"")
    except OSError:  # the terminal's other end closed: all was read
        return b""


def census_of(api: str, auth: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    """POST a census, then poll it until it is no longer running."""
    answer = httpx.post(f"{api}/v1/census", json=body, headers=auth, timeout=30)
    assert answer.status_code == 202, answer.text
    census_id = answer.json()["id"]

    def finished() -> dict[str, Any] | None:
        got = httpx.get(f"{api}/v1/census/{census_id}", headers=auth, timeout=30).json()
        return got if got["status"] in ("finished", "failed") else None

    return dict(wait_for(finished, CENSUS_WAIT_S, f"census {census_id} to finish"))


def test_the_api_runs_a_group_census_found_by_bulk_export(
    first_run: subprocess.CompletedProcess[str],
    api: str,
    auth: dict[str, str],
    fhir_server: str,
    census_patients: list[str],
) -> None:
    members = [{"entity": {"reference": f"Patient/{p}"}} for p in census_patients[:2]]
    group = httpx.post(
        f"{fhir_server}/Group",
        json={"resourceType": "Group", "type": "person", "actual": True, "member": members},
        timeout=30,
    ).json()["id"]
    got = census_of(api, auth, {"group": f"Group/{group}", "run": RUN, "concurrency": 1})
    assert (got["status"], got["resolved_by"], got["total"]) == ("finished", "bulk export", 2)
    assert (got["skipped"], got["succeeded"], got["failed"], got["pending"]) == (2, 0, 0, 0)
    assert got["source"] == f"Group/{group}" and got["kinds"] == ["progress"]


def test_a_census_of_an_unknown_group_fails_with_the_reason(
    api: str, auth: dict[str, str], worker: Any
) -> None:
    got = census_of(api, auth, {"group": "no-such-group", "run": RUN})
    assert got["status"] == "failed" and got["total"] == 0
    assert "Group/no-such-group" in got["reason"] and "404" in got["reason"]


def test_the_sweeper_resumes_a_census_whose_steps_were_lost(
    first_run: subprocess.CompletedProcess[str], census_patients: list[str]
) -> None:
    from services.core.db import session_scope
    from services.jobs.census import get_census, progress
    from workers.census import Population, begin, sweep_censuses

    population = Population(patients=tuple(census_patients[:2]))
    # Recorded as the API records one, but its first step never queued (as if the broker had lost it).
    census_id = begin(population=population, kinds=["progress"], run=RUN, concurrency=2, driver="worker")
    assert census_id in sweep_censuses()
    assert census_id not in sweep_censuses()  # its step is queued now: not resumed twice

    def finished() -> Any:
        with session_scope() as session:
            got = progress(session=session, census=get_census(session=session, census_id=census_id))
        return got if got.status.value == "finished" else None

    got = wait_for(finished, CENSUS_WAIT_S, f"census {census_id} to finish")
    assert (got.skipped, got.succeeded, got.failed) == (2, 0, 0)
