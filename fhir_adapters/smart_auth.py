"""SMART Backend Services: client_credentials with a private_key_jwt assertion (RS384 or ES384)."""

from __future__ import annotations

import asyncio
import time
import uuid
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from services.core.errors import ConfigError, FhirAuthError, FhirUnavailable

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME_S = 300
REFRESH_MARGIN_S = 60.0


@dataclass(frozen=True)
class SmartClientConfig:
    """Our registration at the FHIR server's authorization server."""

    client_id: str
    private_key_pem: bytes
    alg: Literal["RS384", "ES384"] = "RS384"
    kid: str | None = None
    scope: str = "system/*.rs"
    token_url: str | None = None

    @classmethod
    def from_key_file(cls, path: Path, **kwargs: Any) -> SmartClientConfig:
        """Read the PEM private key from a file."""
        try:
            return cls(private_key_pem=path.read_bytes(), **kwargs)
        except OSError as exc:
            raise ConfigError(f"SMART private key unreadable: {path} ({type(exc).__name__})") from exc


async def smart_configuration(http: httpx.AsyncClient, fhir_base_url: str) -> dict[str, Any]:
    """The server's `.well-known/smart-configuration` (SMART App Launch 2); FhirUnavailable when it cannot
    be read as a JSON object. Callers check what they need of it."""
    url = f"{fhir_base_url.rstrip('/')}/.well-known/smart-configuration"
    try:
        response = await http.get(url, headers={"Accept": "application/json"})
        body = response.raise_for_status().json()
    except (httpx.HTTPError, ValueError) as exc:
        raise FhirUnavailable(f"SMART discovery failed ({type(exc).__name__})") from exc
    if not isinstance(body, dict):
        raise FhirUnavailable("SMART discovery failed (not a JSON object)")
    return body


class SmartTokenSource:
    """Access tokens for one FHIR server, cached until shortly before they expire."""

    def __init__(self, fhir_base_url: str, config: SmartClientConfig, *, timeout_s: float = 30.0):
        self.fhir_base_url = fhir_base_url.rstrip("/")
        self.config = config
        self.timeout_s = timeout_s
        self.fetches = 0
        self._key = load_pem_private_key(config.private_key_pem, password=None)
        self._token: str | None = None
        self._expires_at = 0.0
        self._token_url = config.token_url
        # One lock per event loop: a worker runs each job in a fresh loop but keeps the token between jobs.
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    async def token_url(self, http: httpx.AsyncClient) -> str:
        """The token endpoint, discovered from .well-known/smart-configuration unless configured."""
        if self._token_url is None:
            config = await smart_configuration(http, self.fhir_base_url)
            if not config.get("token_endpoint"):
                raise FhirUnavailable("SMART discovery failed (no token_endpoint)")
            self._token_url = str(config["token_endpoint"])
        return self._token_url

    def assertion(self, token_url: str) -> str:
        """A signed, single-use client assertion for the token endpoint."""
        now = int(time.time())
        claims = {
            "iss": self.config.client_id,
            "sub": self.config.client_id,
            "aud": token_url,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_S,
            "jti": uuid.uuid4().hex,
        }
        headers = {"kid": self.config.kid} if self.config.kid else None
        return jwt.encode(claims, self._key, algorithm=self.config.alg, headers=headers)  # type: ignore[arg-type]

    async def token(self, http: httpx.AsyncClient) -> str:
        """A valid access token, fetched only when the cached one is missing or about to expire."""
        lock = self._locks.setdefault(asyncio.get_running_loop(), asyncio.Lock())
        async with lock:
            if self._token is None or time.time() >= self._expires_at - REFRESH_MARGIN_S:
                await self._fetch(http)
            assert self._token is not None
            return self._token

    def invalidate(self, token: str) -> None:
        """Forget a token the server refused (unless another request already replaced it)."""
        if self._token == token:
            self._token = None

    async def _fetch(self, http: httpx.AsyncClient) -> None:
        url = await self.token_url(http)
        form = {
            "grant_type": "client_credentials",
            "scope": self.config.scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.assertion(url),
        }
        try:
            response = await http.post(url, data=form, headers={"Accept": "application/json"})
        except httpx.TransportError as exc:
            raise FhirUnavailable(f"token endpoint unreachable ({type(exc).__name__})") from exc
        self.fetches += 1
        if response.status_code >= 500:
            raise FhirUnavailable(
                f"token endpoint answered {response.status_code}", status=response.status_code
            )
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or "access_token" not in body:
            error = body.get("error", "unknown") if isinstance(body, dict) else "unknown"
            raise FhirAuthError(
                f"token request refused: {response.status_code} {error}", status=response.status_code
            )
        self._token = str(body["access_token"])
        self._expires_at = time.time() + float(body.get("expires_in", 300))
