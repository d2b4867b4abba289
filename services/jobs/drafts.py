"""Draft state changes; keyword-only functions that take a session and commit."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session, col, select

from services.core.errors import NotFoundError
from services.jobs.models import Draft, DraftState


def record_draft(
    *, session: Session, ref: str, patient_id: str, kind: str, job_id: str | None, version: str | None
) -> Draft:
    """Start tracking a draft we wrote (a retried job finds the row it made before)."""
    draft = session.get(Draft, ref)
    if draft is None:
        draft = Draft(ref=ref, patient_id=patient_id, kind=kind, job_id=job_id, version=version)
        session.add(draft)
        session.commit()
        session.refresh(draft)
    return draft


def get_draft(*, session: Session, ref: str) -> Draft:
    """Load a draft or raise NotFoundError."""
    draft = session.get(Draft, ref)
    if draft is None:
        raise NotFoundError(f"{ref} is not a draft of ours")
    return draft


def list_drafts(
    *, session: Session, state: DraftState | None = None, patient_id: str | None = None, limit: int = 100
) -> list[Draft]:
    """Drafts, newest first, optionally in one state or of one patient."""
    query = select(Draft).order_by(col(Draft.created_at).desc()).limit(limit)
    if state is not None:
        query = query.where(Draft.state == state)
    if patient_id is not None:
        query = query.where(Draft.patient_id == patient_id)
    return list(session.exec(query).all())


def older_unapproved(*, session: Session, patient_id: str, kind: str, newer_ref: str) -> list[Draft]:
    """Preliminary drafts of the same patient and kind that a newer draft supersedes."""
    query = select(Draft).where(
        Draft.patient_id == patient_id,
        Draft.kind == kind,
        Draft.state == DraftState.preliminary,
        Draft.ref != newer_ref,
    )
    return list(session.exec(query).all())


def _older(version: str | None, recorded: str | None) -> bool:
    """Whether `version` precedes the recorded one (servers that number their versions; others can't say)."""
    if version is None or recorded is None or not (version.isdigit() and recorded.isdigit()):
        return False
    return int(version) < int(recorded)


def decide(
    *,
    session: Session,
    draft: Draft,
    state: DraftState,
    version: str | None,
    authenticator: str | None = None,
    replaced_by: str | None = None,
    change_ratio: float | None = None,
) -> Draft:
    """Record what became of a draft (the latest word wins) and commit.

    A replacement is read off the clinician's new DocumentReference; ours stays as it was, so reading ours
    again at the version the decision was made on says nothing new and does not undo the decision.
    """
    unchanged = version is not None and version == draft.version
    if state == DraftState.preliminary and draft.state != DraftState.preliminary and unchanged:
        return draft
    if _older(version, draft.version):
        return draft  # a notification of version 1 handled after the approval that made version 2
    if state != draft.state:
        draft.decided_at = datetime.now(UTC)
    draft.state = state
    draft.version = version or draft.version
    draft.authenticator = authenticator or draft.authenticator
    draft.replaced_by = replaced_by or draft.replaced_by
    draft.change_ratio = change_ratio if change_ratio is not None else draft.change_ratio
    session.add(draft)
    session.commit()
    session.refresh(draft)
    return draft
