"""API callers: bearer JWTs checked against the JWKS (or the dev token), and the scope each route needs.

Who is calling is settled by `services.api.guard` before a route runs (and before the body is read); the
route dependencies here check the scope of the principal it found and declare the scheme in OpenAPI.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.core.errors import AuthenticationError, PermissionDenied
from services.core.settings import Settings

SUMMARIES_READ = "summaries.read"
SUMMARIES_WRITE = "summaries.write"
DRAFTS_READ = "drafts.read"
DRAFTS_APPROVE = "drafts.approve"
METRICS_READ = "metrics.read"
ALL_SCOPES = frozenset({SUMMARIES_READ, SUMMARIES_WRITE, DRAFTS_READ, DRAFTS_APPROVE, METRICS_READ})
BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A JWT from the identity provider (EHRSUM_API_JWKS_URL) carrying the route's scope.",
)


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
    if isinstance(raw, str):
        return frozenset(raw.split())
    if isinstance(raw, list) and all(isinstance(s, str) for s in raw):
        return frozenset(raw)
    raise AuthenticationError("invalid token (scope is neither a string nor a list of strings)")


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison of a credential (any characters) with the configured one."""
    return hmac.compare_digest(given.encode(), expected.encode())


def verify_token(token: str, settings: Settings) -> Principal:
    """The principal of a bearer token; AuthenticationError for anything not valid."""
    dev = settings.api_dev_token
    if settings.api_dev_token_enabled and dev and same_secret(token, dev.get_secret_value()):
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
    if not isinstance(claims["sub"], str) or not isinstance(fhir_user, str | None):
        raise AuthenticationError("invalid token (sub and fhirUser must be strings)")
    return Principal(subject=claims["sub"], scopes=_scopes(claims), fhir_user=fhir_user)


Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)]


def require(scope: str) -> Callable[[Request, Credentials], Awaitable[Principal]]:
    """A dependency that admits a caller the guard authenticated and whose token carries `scope`."""

    async def dependency(request: Request, _: Credentials) -> Principal:
        principal = getattr(request.state, "principal", None)
        if not isinstance(principal, Principal):
            raise AuthenticationError("bearer token required")
        if scope not in principal.scopes:
            raise PermissionDenied(f"token lacks scope {scope}")
        return principal

    return dependency


SummariesRead = Annotated[Principal, Depends(require(SUMMARIES_READ))]
SummariesWrite = Annotated[Principal, Depends(require(SUMMARIES_WRITE))]
DraftsRead = Annotated[Principal, Depends(require(DRAFTS_READ))]
DraftsApprove = Annotated[Principal, Depends(require(DRAFTS_APPROVE))]
MetricsRead = Annotated[Principal, Depends(require(METRICS_READ))]
