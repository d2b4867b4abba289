"""Review sessions in the broker's Redis: an opaque cookie names them; tokens never reach the browser."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import redis

from services.core.broker import broker_redis
from services.core.errors import AuthenticationError
from services.core.settings import Settings

COOKIE = "ehrsum_review"
PENDING_S = 600
MAX_SESSION_S = 8 * 3600
PREFIX = "ehrsum:review:"


@dataclass(frozen=True)
class Pending:
    """An authorization request on its way: what the callback must match and prove."""

    state: str
    verifier: str
    nonce: str
    authorize: str
    token: str
    issuer: str | None
    jwks_uri: str | None


@dataclass(frozen=True)
class Reviewer:
    """A signed-in clinician: their token, patient in context, FHIR identity and form token."""

    access_token: str
    patient: str
    fhir_user: str | None
    scope: str
    csrf: str
    expires_at: float


@contextmanager
def _reachable() -> Iterator[None]:
    """Redis failures as the one error a clinician can act on."""
    try:
        yield
    except redis.RedisError as exc:
        raise AuthenticationError("review sessions are unavailable (broker unreachable)") from exc


class Sessions:
    """Sessions keyed by a random id; each expires with its token."""

    def __init__(self, settings: Settings):
        self.redis = broker_redis(settings.broker_url)

    def _put(self, purpose: str, value: Any, ttl: int) -> str:
        sid = secrets.token_urlsafe(32)
        with _reachable():
            self.redis.set(
                f"{PREFIX}{sid}", json.dumps({"purpose": purpose, **asdict(value)}), ex=max(ttl, 1)
            )
        return sid

    def _get(self, sid: str | None, purpose: str) -> dict[str, Any]:
        if not sid:
            raise AuthenticationError("no review session: launch the app from the patient's chart")
        with _reachable():
            raw = self.redis.get(f"{PREFIX}{sid}")
        data = json.loads(raw) if raw else None  # type: ignore[arg-type]
        if not isinstance(data, dict) or data.pop("purpose", None) != purpose:
            raise AuthenticationError("the review session has expired: launch the app again")
        return data

    def start(self, pending: Pending) -> str:
        """A session for an authorization request in flight; its id."""
        return self._put("pending", pending, PENDING_S)

    def pending(self, sid: str | None) -> Pending:
        """The authorization request a callback answers."""
        return Pending(**self._get(sid, "pending"))

    def sign_in(self, old_sid: str | None, reviewer: Reviewer, ttl: int) -> str:
        """Replace the pending session with a signed-in one under a new id (no fixation); its id."""
        if old_sid:
            with _reachable():
                self.redis.delete(f"{PREFIX}{old_sid}")
        return self._put("reviewer", reviewer, min(ttl, MAX_SESSION_S))

    def reviewer(self, sid: str | None) -> Reviewer:
        """The signed-in clinician of a session."""
        return Reviewer(**self._get(sid, "reviewer"))
