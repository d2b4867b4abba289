"""Reading and replacing a patient's record snapshot."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session

from services.snapshots.models import RecordSnapshot


def get_snapshot(*, session: Session, server: str, patient_id: str) -> RecordSnapshot | None:
    """The snapshot of a patient's last pull from a server, if any."""
    return session.get(RecordSnapshot, (server, patient_id))


def save_snapshot(
    *,
    session: Session,
    server: str,
    patient_id: str,
    since: str | None,
    timeline_digest: str,
    record_digest: str,
    versions: dict[str, list[str | None]],
    resources: bytes,
) -> RecordSnapshot:
    """Replace the patient's snapshot with this pull's; commit."""
    row = get_snapshot(session=session, server=server, patient_id=patient_id)
    if row is None:
        row = RecordSnapshot(
            server=server, patient_id=patient_id, timeline_digest=timeline_digest, resources=b""
        )
    row.since, row.versions, row.resources = since, versions, resources
    row.timeline_digest, row.record_digest = timeline_digest, record_digest
    row.updated_at = datetime.now(UTC)
    session.add(row)
    session.commit()
    return row


def drop_snapshot(*, session: Session, server: str, patient_id: str) -> bool:
    """Forget a patient's snapshot (the next pull is a full one); False when there was none."""
    row = get_snapshot(session=session, server=server, patient_id=patient_id)
    if row is None:
        return False
    session.delete(row)
    session.commit()
    return True
