"""Notifications in: sekmet-fhir's rest-hook and Backport deliveries become debounced, deduplicated jobs."""

from __future__ import annotations

import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sekmet.subscriptions import backport as bp
from sqlmodel import select

from deploy.processes import wait_for
from services.core.db import session_scope
from services.core.settings import get_settings
from services.subscriptions.models import NotificationReceipt, SubscriptionState
from tests.conftest import BIN, REPO, _env, jobs_of, notification_headers, registered

pytestmark = pytest.mark.e2e
TOPIC = "http://sekmet.dev/fhir/SubscriptionTopic/encounter-start"


def event_bundle(sub_id: str, number: int, patient: str) -> dict[str, Any]:
    """A Backport event-notification as the configured FHIR server would send it (its base in references)."""
    sub = {
        "id": sub_id,
        "criteria": TOPIC,
        "status": "active",
        "channel": {"payload": "application/fhir+json"},
    }
    event = {"number": number, "focus": f"Encounter/e-{number}", "context": [f"Patient/{patient}"]}
    bundle: dict[str, Any] = bp.notification_bundle(
        sub, get_settings().fhir_base_url, "event-notification", number, [event]
    )
    return bundle


def test_wrong_or_missing_secret_is_401(api: str) -> None:
    body = event_bundle("s-secret", 1, "p-secret")
    for headers in (notification_headers("wrong"), {"Content-Type": "application/fhir+json"}):
        answer = httpx.post(f"{api}/v1/notifications", json=body, headers=headers, timeout=10)
        assert answer.status_code == 401 and answer.json()["resourceType"] == "OperationOutcome"


def test_each_notification_is_audited_with_its_receipt(api: str) -> None:
    """Accepted: one success entry written with the receipt. Wrong secret: a denied entry, no receipt."""
    from services.audit.models import AuditOutcome, AuditRecord

    accepted, refused = (f"audit-{uuid.uuid4().hex[:8]}" for _ in range(2))
    encounter = {"resourceType": "Encounter", "status": "in-progress", "class": {"code": "AMB"}}
    for rid, headers, status in (
        (accepted, notification_headers(), 200),
        (refused, notification_headers("x"), 401),
    ):
        body = {**encounter, "id": rid, "meta": {"versionId": "1"}, "subject": {"reference": "Patient/a1"}}
        answer = httpx.put(f"{api}/v1/notifications/Encounter/{rid}", json=body, headers=headers, timeout=10)
        assert answer.status_code == status, answer.text
    with session_scope() as session:
        rows = session.exec(select(AuditRecord).where(AuditRecord.action.contains("/v1/notifications"))).all()  # type: ignore[attr-defined]
        receipts = session.exec(select(NotificationReceipt.focus)).all()
    mine = {rid: [r for r in rows if any(rid in i for i in r.resource_ids)] for rid in (accepted, refused)}
    assert [(r.actor, r.outcome) for r in mine[accepted]] == [("notifier", AuditOutcome.success)]
    assert [(r.actor, r.outcome) for r in mine[refused]] == [("notifier:bad-secret", AuditOutcome.denied)]
    assert f"Encounter/{accepted}" in receipts and f"Encounter/{refused}" not in receipts


def test_replayed_notification_makes_no_second_job(api: str, worker: subprocess.Popen[bytes]) -> None:
    patient, sub = f"replay-{uuid.uuid4().hex[:8]}", registered(f"s-{uuid.uuid4().hex[:8]}")
    body = event_bundle(sub, 1, patient)
    for _ in range(3):
        answer = httpx.post(f"{api}/v1/notifications", json=body, headers=notification_headers(), timeout=10)
        assert answer.status_code == 200, answer.text
    jobs = wait_for(lambda: jobs_of(patient), 30, "the job")
    time.sleep(get_settings().debounce_s + 1)
    assert len(jobs_of(patient)) == len(jobs) == 1
    with session_scope() as session:
        receipts = session.exec(
            select(NotificationReceipt).where(NotificationReceipt.patient_id == patient)
        ).all()
    assert [r.dedup_key for r in receipts] == [f"Subscription/{sub}#1"]


def test_burst_of_40_observations_is_one_job(api: str, worker: subprocess.Popen[bytes]) -> None:
    patient = f"burst-{uuid.uuid4().hex[:8]}"

    def put(i: int) -> int:
        observation = {
            "resourceType": "Observation",
            "id": f"{patient}-o{i}",
            "meta": {"versionId": "1"},
            "status": "final",
            "code": {"text": "x"},
            "subject": {"reference": f"Patient/{patient}"},
        }
        url = f"{api}/v1/notifications/Observation/{patient}-o{i}"
        return httpx.put(url, json=observation, headers=notification_headers(), timeout=10).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(put, range(40)))
    burst_s = time.monotonic() - started
    assert codes == [200] * 40
    jobs = wait_for(lambda: jobs_of(patient), 30, "the job")
    job_after_s = time.monotonic() - started
    window_s = get_settings().debounce_s
    time.sleep(window_s + 1)
    made = jobs_of(patient)
    # The window is fixed from the first event: a burst that outlasts it (a loaded machine) rightly makes
    # a job per window it spans, never one per notification.
    assert len(made) <= 1 + int(burst_s // window_s), (burst_s, len(made))
    if burst_s < window_s:
        assert len(made) == len(jobs) == 1
    print(f"\n40 notifications in {burst_s:.2f} s -> {len(made)} job(s), the first after {job_after_s:.2f} s")


def test_gap_in_event_numbers_is_counted(api: str) -> None:
    sub, patient = registered(f"s-{uuid.uuid4().hex[:8]}"), f"gap-{uuid.uuid4().hex[:8]}"
    for number in (1, 2, 5):
        httpx.post(
            f"{api}/v1/notifications",
            json=event_bundle(sub, number, patient),
            headers=notification_headers(),
            timeout=10,
        )
    with session_scope() as session:
        state = session.get(SubscriptionState, f"Subscription/{sub}")
        assert state is not None and state.last_event_number == 5 and state.missed_events == 2


def test_encounter_on_the_fhir_server_ends_with_a_draft(
    notified_draft: dict[str, Any], subscribed: list[dict[str, Any]], fhir_server: str
) -> None:
    [job] = notified_draft["jobs"]
    assert job.status.value == "succeeded", job.reason
    [draft_ref] = job.draft_refs
    doc = httpx.get(f"{fhir_server}/{draft_ref}", timeout=10).json()
    assert any(s["code"] == "AIAST" for s in doc["meta"]["security"])  # the approval test may have run
    assert doc["subject"]["reference"] == f"Patient/{notified_draft['patient']}"
    print(f"\nEncounter created -> draft written in {notified_draft['latency_s']:.1f} s (CPU vLLM)")

    listed = subprocess.run(
        [str(BIN / "ehrsum"), "subscriptions"],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=REPO,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr[-2000:]
    for sub in subscribed:
        assert f'"{sub["subscription"]}"' in listed.stdout
    assert '"status": "active"' in listed.stdout and '"status": "error"' not in listed.stdout


def test_subscribe_is_idempotent(subscribed: list[dict[str, Any]], api: str) -> None:
    env = {**_env(), "EHRSUM_NOTIFICATION_ENDPOINT_URL": f"{api}/v1/notifications"}
    again = subprocess.run(
        [str(BIN / "ehrsum"), "subscribe"], capture_output=True, text=True, env=env, cwd=REPO, check=False
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert '"created": true' not in again.stdout
    assert again.stdout.count("Subscription/") == len(subscribed)
