"""What becomes of a draft, on real Postgres: decisions stick until our draft itself changes."""

from __future__ import annotations

import uuid

import pytest

from services.core.db import session_scope
from services.jobs.drafts import decide, get_draft, record_draft
from services.jobs.models import DraftState

pytestmark = pytest.mark.integration


def test_a_late_reading_of_the_unchanged_draft_does_not_undo_a_replacement(postgres_db: str) -> None:
    ref = f"DocumentReference/{uuid.uuid4().hex[:12]}"

    def observe(state: DraftState, version: str) -> DraftState:
        with session_scope() as session:
            draft = get_draft(session=session, ref=ref)
            return decide(session=session, draft=draft, state=state, version=version).state

    with session_scope() as session:
        record_draft(session=session, ref=ref, patient_id="p1", kind="triage", job_id=None, version="1")
    assert observe(DraftState.replaced, "1") == DraftState.replaced
    # Our draft's own notification, handled after the replacement's: still preliminary at version 1.
    assert observe(DraftState.preliminary, "1") == DraftState.replaced
    # A new version of our draft that is preliminary again is news: it counts.
    assert observe(DraftState.preliminary, "2") == DraftState.preliminary


def test_a_late_reading_of_an_older_version_does_not_undo_an_approval(postgres_db: str) -> None:
    ref = f"DocumentReference/{uuid.uuid4().hex[:12]}"
    with session_scope() as session:
        record_draft(session=session, ref=ref, patient_id="p1", kind="soap", job_id=None, version="1")
    with session_scope() as session:
        draft = get_draft(session=session, ref=ref)
        assert (
            decide(session=session, draft=draft, state=DraftState.approved, version="2").state == "approved"
        )
    # The subscription's notification of version 1 (preliminary), handled after the approval of version 2.
    with session_scope() as session:
        draft = get_draft(session=session, ref=ref)
        late = decide(session=session, draft=draft, state=DraftState.preliminary, version="1")
        assert (late.state, late.version) == (DraftState.approved, "2")
