"""API security: bearer JWTs checked against the JWKS, scopes per route, every request audited."""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any

import jwt
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.outcomes import operation_outcome
from services.audit.models import AuditOutcome
from services.audit.service import record_detached
from services.core.errors import AuthenticationError, ConfigError, PermissionDenied
from services.core.settings import Settings, get_settings

SUMMARIES_READ = "summaries.read"
SUMMARIES_WRITE = "summaries.write"
DRAFTS_READ = "drafts.read"
DRAFTS_APPROVE = "drafts.approve"
ALL_SCOPES = frozenset({SUMMARIES_READ, SUMMARIES_WRITE, DRAFTS_READ, DRAFTS_APPROVE})
UNAUDITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/redoc"})


@dataclass(frozen=True)
class Principal:
    """Who is calling, and what the token lets them do."""

    subject: str
    scopes: frozenset[str]
    fhir_user: str | None = None


@lru_cache(maxsize=4)
def _jwks_client(url: str, lifespan_s: int) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_jwk_set=True, lifespan=max(1, lifespan_s), timeout=5)


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    raw = claims.get("scope", claims.get("scp", ""))
    return frozenset(raw.split() if isinstance(raw, str) else (str(s) for s in raw))


def verify_token(token: str, settings: Settings) -> Principal:
    """The principal of a bearer token; AuthenticationError for anything not valid."""
    dev = settings.api_dev_token
    if settings.api_dev_token_enabled and dev and hmac.compare_digest(token, dev.get_secret_value()):
        return Principal(subject="dev-token", scopes=ALL_SCOPES)
    if not settings.api_jwks_url:
        raise AuthenticationError("no identity provider configured (EHRSUM_API_JWKS_URL)")
    try:
        key = _jwks_client(settings.api_jwks_url, settings.api_jwks_cache_s).get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            key.key,
            algorithms=settings.api_jwt_algorithms,
            audience=settings.api_jwt_audience,
            issuer=settings.api_jwt_issuer,
            options={"require": ["exp", "sub"], "verify_iss": settings.api_jwt_issuer is not None},
            leeway=30,
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthenticationError("token expired") from exc
    except jwt.PyJWKClientConnectionError as exc:
        raise AuthenticationError("identity provider keys unavailable") from exc
    except jwt.PyJWTError as exc:
        raise AuthenticationError(f"invalid token ({type(exc).__name__})") from exc
    fhir_user = claims.get("fhirUser")
    return Principal(
        subject=str(claims["sub"]), scopes=_scopes(claims), fhir_user=fhir_user and str(fhir_user)
    )


def require(scope: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency that admits a caller whose bearer token carries `scope`."""

    async def dependency(request: Request) -> Principal:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("bearer token required")
        principal = await asyncio.to_thread(verify_token, token.strip(), get_settings())
        request.state.principal = principal
        if scope not in principal.scopes:
            raise PermissionDenied(f"token lacks scope {scope}")
        return principal

    return dependency


SummariesRead = Annotated[Principal, Depends(require(SUMMARIES_READ))]
SummariesWrite = Annotated[Principal, Depends(require(SUMMARIES_WRITE))]
DraftsRead = Annotated[Principal, Depends(require(DRAFTS_READ))]
DraftsApprove = Annotated[Principal, Depends(require(DRAFTS_APPROVE))]


class AuditRequests:
    """Audit every API request (ids only) before its response leaves.

    A pure ASGI middleware: it adds no task or stream per request. A route that records its own entry in
    the transaction of its work (the notification endpoint) sets `request.state.audited`.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; audit when the response starts."""
        if scope["type"] != "http" or scope["path"] in UNAUDITED_PATHS:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def audited_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                await self._audit(scope, int(message["status"]), time.perf_counter() - started)
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
        template = getattr(scope.get("route"), "path", scope["path"])
        await asyncio.to_thread(
            record_detached,
            actor=principal.subject if principal else str(state.get("actor", "anonymous")),
            action=f"api {scope['method']} {template}",
            outcome=outcome,
            resource_ids=[str(v) for v in (scope.get("path_params") or {}).values()],
            detail=f"{status} in {seconds:.3f}s",
        )


def install_security(app: FastAPI) -> None:
    """Answer 401/403 as OperationOutcomes with a Bearer challenge, and audit every API request."""

    @app.exception_handler(AuthenticationError)
    async def unauthenticated(_: Request, exc: AuthenticationError) -> JSONResponse:
        response = operation_outcome(401, str(exc))
        response.headers["WWW-Authenticate"] = 'Bearer realm="ehr-summarizer"'
        return response

    @app.exception_handler(PermissionDenied)
    async def forbidden(_: Request, exc: PermissionDenied) -> JSONResponse:
        response = operation_outcome(403, str(exc))
        response.headers["WWW-Authenticate"] = 'Bearer error="insufficient_scope"'
        return response

    app.add_middleware(AuditRequests)


def check_config(settings: Settings) -> None:
    """Refuse to start with a dev token enabled but empty."""
    if settings.api_dev_token_enabled and not settings.api_dev_token:
        raise ConfigError("EHRSUM_API_DEV_TOKEN_ENABLED needs EHRSUM_API_DEV_TOKEN")
