"""Notifications written together: one transaction for a batch, each with its own result, audit and error."""

from __future__ import annotations

import asyncio
import json
import uuid
from functools import partial

import pytest
from sekmet.subscriptions import backport as bp
from sqlmodel import col, select

from services.api.notifications import Ingest, parse_body
from services.audit.models import AuditOutcome, AuditRecord
from services.core.db import session_scope
from services.core.errors import InputError
from services.core.settings import get_settings
from services.subscriptions.models import NotificationReceipt, PendingTrigger
from tests.conftest import registered
from workers.celery_app import RECOVER_GAP
from workers.events import Delivery, record_all

pytestmark = pytest.mark.integration
TOPIC = "http://sekmet.dev/fhir/SubscriptionTopic/encounter-start"


def encounter(rid: str, patient: str, version: str = "1") -> bytes:
    """A rest-hook delivery of one Encounter version."""
    body = {
        "resourceType": "Encounter",
        "id": rid,
        "meta": {"versionId": version},
        "status": "in-progress",
        "class": {"code": "AMB"},
        "subject": {"reference": f"Patient/{patient}"},
    }
    return json.dumps(body).encode()


def backport(patient: str, sub_id: str | None = None, number: int = 1) -> bytes:
    """A Backport event notification as the FHIR server sends one (by default, of a subscription not ours)."""
    sub = {"id": sub_id or f"not-ours-{uuid.uuid4().hex[:8]}", "criteria": TOPIC, "status": "active"}
    event = {"number": number, "focus": f"Encounter/e-{patient}", "context": [f"Patient/{patient}"]}
    bundle = bp.notification_bundle(sub, get_settings().fhir_base_url, "event-notification", number, [event])
    return json.dumps(bundle).encode()


async def test_a_batch_commits_each_notification_and_a_bad_one_fails_alone(
    postgres_db: str, redis_broker: str
) -> None:
    """Four at once are one batch: a replay is a duplicate, the bad one fails alone, the rest are audited."""
    run, patient = uuid.uuid4().hex[:8], f"batch-{uuid.uuid4().hex[:8]}"
    first, second = f"{run}-a", f"{run}-b"
    action = f"test batch {run}"
    bodies = [
        encounter(first, patient),
        encounter(first, patient),
        encounter(second, patient),
        backport(patient),
    ]
    ingest = Ingest()
    answers = await asyncio.gather(
        *(ingest.submit(raw, None, action) for raw in bodies), return_exceptions=True
    )
    *written, refused = answers
    assert isinstance(refused, InputError), refused
    results = [answer[1] for answer in written if isinstance(answer, tuple)]
    assert [(r.accepted, r.duplicates) for r in results] == [(1, 0), (0, 1), (1, 0)]
    with session_scope() as session:
        focuses = session.exec(
            select(NotificationReceipt.focus).where(col(NotificationReceipt.focus).contains(run))
        ).all()
        trigger = session.get(PendingTrigger, patient)
        audits = session.exec(select(AuditRecord).where(AuditRecord.action == action)).all()
    assert len(focuses) == 2 and set(focuses) == {f"Encounter/{first}", f"Encounter/{second}"}
    assert trigger is not None and trigger.events == 2
    assert [(a.actor, a.outcome) for a in audits] == [("notifier", AuditOutcome.success)] * 3


async def test_a_delivery_twice_in_a_batch_and_again_later_is_one_receipt(
    postgres_db: str, redis_broker: str
) -> None:
    """The same Encounter version delivered twice at once and once more later: recorded and counted once."""
    run = uuid.uuid4().hex[:8]
    raw, action = encounter(f"{run}-c", f"batch-{run}", version="3"), f"test batch {run}"
    ingest = Ingest()
    together = await asyncio.gather(*(ingest.submit(raw, None, action) for _ in range(2)))
    later = await ingest.submit(raw, None, action)
    assert [answer[1].accepted for answer in [*together, later]] == [1, 0, 0]
    with session_scope() as session:
        receipts = session.exec(
            select(NotificationReceipt).where(NotificationReceipt.focus == f"Encounter/{run}-c")
        ).all()
    assert len(receipts) == 1


def test_a_batch_written_again_one_by_one_counts_and_queues_each_once(
    postgres_db: str, redis_broker: str
) -> None:
    """A gap found before the batch failed is queued once when its notification is written again alone."""
    settings = get_settings()
    run = uuid.uuid4().hex[:8]
    ours = registered(f"ours-{run}")
    gapped = Delivery(parse_body(backport(f"gap-{run}", ours, number=3), None, settings))
    refused = Delivery(parse_body(backport(f"refused-{run}"), None, settings))
    with pytest.raises(InputError):
        record_all([gapped, refused], settings)  # the gap was tracked before the refusal
    record_all([gapped], settings)
    recoveries = [t for t in gapped.outbox if isinstance(t, partial) and RECOVER_GAP in t.args]
    assert gapped.result.gap and gapped.result.accepted == 1 and len(recoveries) == 1
