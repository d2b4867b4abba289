"""The API's boundary, before any route runs: who is calling, how often, and how large the body is.

Pure ASGI middleware, so every route inherits it and no byte of a body is read before it decides:

1. failed credentials are counted per client address (the socket's; uvicorn believes X-Forwarded-For only
   from EHRSUM_API_TRUSTED_PROXIES): past EHRSUM_AUTH_FAILURES_PER_MINUTE even a right credential gets 429;
2. the caller: the notification secret on /v1/notifications, a bearer token on every other path but the
   public ones (health, the API's own description when EHRSUM_API_DOCS is on, and the review app under
   /review, which signs clinicians in with SMART and limits its own launches), else 401;
3. the caller's rate, per token subject (EHRSUM_API_RATE_PER_MINUTE) or for the notifier
   (EHRSUM_NOTIFICATION_RATE_PER_MINUTE), else 429;
4. the body: a Content-Length over the route's limit is 413 unread, a longer stream is 413 at the limit;
   a body that is not JSON text in UTF-8 (RFC 8259 8.1: no byte order mark, no UTF-16 or UTF-32, no other
   charset or media type) is 415; JSON nested deeper than EHRSUM_API_MAX_JSON_DEPTH is 400; the body is
   then replayed to the route.

The audit row of every request names the route's template and only path values that are FHIR ids; any
other value is a placeholder with its length, so a refused request cannot write arbitrary text there.

Refusals are OperationOutcomes. Counters live in the broker's Redis, shared by every API process; when it
is unreachable the limits are skipped rather than the requests (jobs are accepted while the broker is down).
"""

from __future__ import annotations

import asyncio
import codecs
import logging
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from typing import Literal

import redis
from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhir_adapters.references import is_fhir_id
from services.api.docs import is_docs_path
from services.api.outcomes import BEARER_CHALLENGE, outcome_body
from services.api.security import Principal, same_secret, verify_token
from services.audit.models import AuditOutcome
from services.audit.service import record_detached
from services.core.broker import broker_redis
from services.core.errors import AuthenticationError
from services.core.settings import Settings

log = logging.getLogger(__name__)
HEALTH_PATHS = frozenset({"/healthz", "/readyz"})
REVIEW = "/review"  # the review app signs clinicians in with SMART and keeps its own sessions
NOTIFICATIONS = "/v1/notifications"
NOTIFIER = Principal(subject="notifier", scopes=frozenset())
UNROUTED = "(no route)"
INLINE_SCAN_BYTES = 65_536  # larger bodies are scanned for depth off the event loop
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [0] * 256
for _open, _close in (b"[]", b"{}"):
    _STEP[_open], _STEP[_close] = 1, -1
Caller = Literal["bearer", "notifier", "public"]


def nesting_depth(body: bytes) -> int:
    """How deep JSON text nests arrays and objects (brackets inside strings do not count)."""
    brackets = _STRINGS.sub(b"", body).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def caller_of(path: str, docs: bool) -> Caller:
    """Which credential a path needs."""
    if (
        path in HEALTH_PATHS
        or (docs and is_docs_path(path))
        or path == REVIEW
        or path.startswith(f"{REVIEW}/")
    ):
        return "public"
    if path == NOTIFICATIONS or path.startswith(f"{NOTIFICATIONS}/"):
        return "notifier"
    return "bearer"


@dataclass(frozen=True)
class Admission:
    """The guard's verdict on a caller: admitted (status 0), or the refusal to send."""

    status: int = 0
    message: str = ""
    principal: Principal | None = None
    actor: str | None = None
    retry_after: int | None = None
    audit: bool = True


class Counters:
    """Fixed one-minute windows in Redis; unreachable Redis counts nothing (warned once a minute)."""

    _warned_at = 0.0

    def __init__(self, url: str) -> None:
        self.redis = broker_redis(url)

    def read(self, key: str) -> int:
        """The count so far."""
        try:
            return int(self.redis.get(key) or 0)  # type: ignore[arg-type]
        except redis.RedisError as exc:
            self._unreachable(exc)
            return 0

    def hit(self, key: str) -> int:
        """Count one more; the new count."""
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.incr(key)
            pipe.expire(key, 120)
            return int(pipe.execute()[0])
        except redis.RedisError as exc:
            self._unreachable(exc)
            return 0

    @classmethod
    def _unreachable(cls, exc: Exception) -> None:
        if time.monotonic() - cls._warned_at > 60:
            cls._warned_at = time.monotonic()
            log.warning("rate limits skipped: broker unreachable (%s)", type(exc).__name__)


def authenticate(settings: Settings, caller: Caller, headers: Headers) -> Principal:
    """The caller a request's credential proves; AuthenticationError otherwise."""
    if caller == "notifier":
        expected = settings.notification_secret
        given = headers.get(settings.notification_secret_header, "")
        if expected is None or not same_secret(given, expected.get_secret_value()):
            raise AuthenticationError("notification secret missing or wrong")
        return NOTIFIER
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("bearer token required")
    return verify_token(token.strip(), settings)


def admit(settings: Settings, caller: Caller, headers: Headers, client: str) -> Admission:
    """Failed attempts from `client` limited, then the credential, then the caller's rate (blocking I/O)."""
    counters = Counters(settings.broker_url)
    now = time.time()
    window, retry_after = int(now // 60), 60 - int(now) % 60
    failures = f"ehrsum:auth-failures:{client}:{window}"
    limit = settings.auth_failures_per_minute
    if counters.read(failures) >= limit:
        # Refused unread, right credential or not, so guessing gains nothing; only the first is audited.
        first = counters.hit(failures) == limit + 1
        if first:
            log.warning("too many failed credentials from one address: refusing it for the minute")
        message = "too many failed attempts from this address; try again later"
        return Admission(429, message, actor=f"{caller}:locked-out", retry_after=retry_after, audit=first)
    try:
        principal = authenticate(settings, caller, headers)
    except AuthenticationError as exc:
        counters.hit(failures)
        return Admission(401, str(exc), actor="notifier:bad-secret" if caller == "notifier" else "anonymous")
    quota = settings.notification_rate_per_minute if caller == "notifier" else settings.api_rate_per_minute
    if counters.hit(f"ehrsum:rate:{caller}:{principal.subject}:{window}") > quota:
        return Admission(429, "too many requests; slow down", principal, retry_after=retry_after)
    return Admission(principal=principal)


class BodyRefused(Exception):
    """The body is over a limit: the status and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def read_body(headers: Headers, receive: Receive, limit: int) -> bytes | None:
    """The whole body, refused unread past `limit` (Content-Length or stream); None on disconnect."""
    declared = headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        status = 413 if declared.isdigit() else 400
        raise BodyRefused(
            status, f"request body over {limit} bytes" if status == 413 else "bad Content-Length"
        )
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyRefused(413, f"request body over {limit} bytes")
        chunks.append(chunk)
        more = bool(message.get("more_body"))
    return b"".join(chunks)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the route the body already read, then whatever the client sends next."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def json_text(headers: Headers, body: bytes) -> None:
    """A non-empty body must be JSON text in UTF-8 without a byte order mark (RFC 8259 8.1); else 415."""
    if not body:
        return
    media, _, params = headers.get("content-type", "").partition(";")
    media = media.strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        raise BodyRefused(415, "request bodies are JSON: application/json or application/fhir+json")
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise BodyRefused(415, "JSON is accepted in UTF-8 only (RFC 8259)")
    if body.startswith(codecs.BOM_UTF8):
        raise BodyRefused(415, "JSON is accepted in UTF-8 without a byte order mark (RFC 8259)")
    # JSON text never holds a raw NUL (RFC 8259 7): NULs are how UTF-16/32 look, and json.loads would
    # quietly decode those bytes as UTF-16/32 after the depth scan read them as UTF-8.
    if b"\x00" in body:
        raise BodyRefused(415, "JSON is accepted in UTF-8 only (RFC 8259)")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyRefused(415, "JSON is accepted in UTF-8 only (RFC 8259)") from exc


class Guard:
    """Admit the caller, then bound the body, before the app sees the request (see the module docstring)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse, or pass the request on with its principal in the scope state and its body replayed."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        caller = caller_of(scope["path"], self.settings.api_docs)
        if caller == "public":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        headers = Headers(scope=scope)
        client = scope["client"][0] if scope.get("client") else "unknown"
        verdict = await asyncio.to_thread(admit, self.settings, caller, headers, client)
        if verdict.principal is not None:
            state["principal"] = verdict.principal
        if verdict.status:
            state["actor"] = verdict.actor or "anonymous"
            state["audited"] = not verdict.audit
            await self._refuse(send, verdict.status, verdict.message, verdict.retry_after)
            return
        limit = (
            self.settings.notification_max_body_bytes
            if caller == "notifier"
            else self.settings.api_max_body_bytes
        )
        try:
            body = await self._body(headers, receive, limit)
        except BodyRefused as exc:
            await self._refuse(send, exc.status, str(exc))
            return
        if body is None:
            return  # the client went away
        await self.app(scope, replaying(body, receive), send)

    async def _body(self, headers: Headers, receive: Receive, limit: int) -> bytes | None:
        """The whole body within `limit`, JSON text in UTF-8 within the depth limit; None on disconnect."""
        body = await read_body(headers, receive, limit)
        if body is None:
            return None
        json_text(headers, body)
        depth = (
            nesting_depth(body)
            if len(body) <= INLINE_SCAN_BYTES
            else await asyncio.to_thread(nesting_depth, body)
        )
        if depth > self.settings.api_max_json_depth:
            raise BodyRefused(400, f"JSON nested deeper than {self.settings.api_max_json_depth} levels")
        return body

    @staticmethod
    async def _refuse(send: Send, status: int, message: str, retry_after: int | None = None) -> None:
        import json

        payload = json.dumps(outcome_body(status, message)).encode()
        headers = [
            (b"content-type", b"application/fhir+json"),
            (b"content-length", str(len(payload)).encode()),
        ]
        if status == 401:
            headers.append((b"www-authenticate", BEARER_CHALLENGE.encode()))
        if retry_after is not None:
            headers.append((b"retry-after", str(retry_after).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


class AuditRequests:
    """Audit every API request (ids only) before its response leaves.

    A pure ASGI middleware: it adds no task or stream per request. A route that records its own entry in
    the transaction of its work (the notification endpoint) sets `request.state.audited`, and so does the
    guard for refusals not worth a row each (an address locked out after failed credentials).
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.docs = settings.api_docs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; audit when the response starts."""
        if scope["type"] != "http" or caller_of(scope["path"], self.docs) == "public":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def audited_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = int(message["status"])
                # Scrapes every few seconds would drown the trail; refused ones are kept.
                if not (scope["path"] == "/metrics" and status < 400):
                    await self._audit(scope, status, time.perf_counter() - started)
            await send(message)

        await self.app(scope, receive, audited_send)

    @staticmethod
    async def _audit(scope: Scope, status: int, seconds: float) -> None:
        state = scope.get("state") or {}
        if state.get("audited"):
            return
        principal = state.get("principal")
        outcome = (
            AuditOutcome.success
            if status < 400
            else AuditOutcome.denied
            if status in (401, 403, 429)
            else AuditOutcome.failure
        )
        template, params = _route_of(scope)
        detail = f"{status} in {seconds:.3f}s"
        if template is None:
            template, detail = UNROUTED, f"{detail}, path of {len(scope['path'])} chars"
        await asyncio.to_thread(
            record_detached,
            actor=principal.subject if principal else str(state.get("actor", "anonymous")),
            action=f"api {scope['method']} {template}",
            outcome=outcome,
            resource_ids=[audited_id(v) for v in params.values()],
            detail=detail,
        )


def audited_id(value: object) -> str:
    """A path value as an audit row may hold it: a FHIR id as it is, anything else a placeholder."""
    return value if isinstance(value, str) and is_fhir_id(value) else f"(not an id: {len(str(value))} chars)"


def _route_of(scope: Scope) -> tuple[str | None, dict[str, object]]:
    """The route template and path parameters of a request, also when the guard refused it unrouted;
    None when no route matches (the path is never the action: it is whatever the caller sent)."""
    if hasattr(scope.get("route"), "path"):
        return str(scope["route"].path), scope.get("path_params") or {}
    app = scope.get("app")
    for template, pattern in _templates(app) if isinstance(app, FastAPI) else []:
        match = pattern.match(scope["path"])
        if match:
            return template, dict(match.groupdict())
    return None, {}


@lru_cache(maxsize=4)
def _templates(app: FastAPI) -> list[tuple[str, re.Pattern[str]]]:
    """The app's documented path templates, compiled as Starlette compiles them (its OpenAPI is cached)."""
    return [(path, compile_path(path)[0]) for path in app.openapi().get("paths", {})]


def install_guards(app: FastAPI, settings: Settings) -> None:
    """The guard, and around it the audit, so refusals are audited too."""
    app.add_middleware(Guard, settings=settings)
    app.add_middleware(AuditRequests, settings=settings)
