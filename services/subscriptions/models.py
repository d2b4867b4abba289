"""Notification bookkeeping: delivery receipts (dedup), per-patient debounce, event counters."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Field, SQLModel


def _now() -> datetime:
    return datetime.now(UTC)


class NotificationReceipt(SQLModel, table=True):
    """One event we accepted; the unique key makes a redelivered event a no-op."""

    __tablename__ = "notification_receipt"

    id: int | None = Field(default=None, primary_key=True)
    dedup_key: str = Field(unique=True, max_length=300)
    subscription: str | None = Field(default=None, index=True, max_length=200)
    focus: str | None = Field(default=None, max_length=200)
    patient_id: str | None = Field(default=None, index=True, max_length=64)
    received_at: datetime = Field(default_factory=_now)


class PendingTrigger(SQLModel, table=True):
    """Events for one patient waiting out the debounce window before they become one job."""

    __tablename__ = "pending_trigger"

    patient_id: str = Field(primary_key=True, max_length=64)
    first_event_at: datetime = Field(default_factory=_now)
    last_event_at: datetime = Field(default_factory=_now)
    due_at: datetime
    events: int = 1


class SubscriptionStateBase(SQLModel):
    """What we know of one of our Subscriptions on the FHIR server."""

    subscription: str = Field(primary_key=True, max_length=200)
    protocol: str = Field(max_length=20)
    criteria: str = Field(max_length=500)
    last_event_number: int = 0
    last_notification_at: datetime | None = None
    last_event_at: datetime | None = None
    missed_events: int = 0
    recoveries: int = 0


class SubscriptionState(SubscriptionStateBase, table=True):
    """The row per subscription (the key is `Subscription/{id}`)."""

    __tablename__ = "subscription_state"


class SubscriptionStatePublic(SubscriptionStateBase):
    """What the CLI and API show of a subscription's state."""


class PollCursor(SQLModel, table=True):
    """How far `_lastUpdated` polling has read one resource type (the server's own timestamps)."""

    __tablename__ = "poll_cursor"

    resource_type: str = Field(primary_key=True, max_length=64)
    since: str = Field(
        max_length=40, description="meta.lastUpdated of the newest change seen (FHIR instant)."
    )
    polled_at: datetime = Field(default_factory=_now)
