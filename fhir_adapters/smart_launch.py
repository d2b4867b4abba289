"""SMART App Launch for a public client: discovery, PKCE, authorize redirect, code exchange, fhirUser."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from fhir_adapters.references import parse_reference
from fhir_adapters.smart_auth import smart_configuration
from services.core.errors import AuthenticationError, FhirError, FhirUnavailable, InputError
from services.core.tls import tls_context

USER_TYPES = frozenset({"Practitioner", "PractitionerRole", "Patient", "RelatedPerson", "Person"})


@dataclass(frozen=True)
class SmartEndpoints:
    """What a FHIR server's `.well-known/smart-configuration` says about user launches."""

    authorize: str
    token: str
    issuer: str | None
    jwks_uri: str | None


@dataclass(frozen=True)
class SmartGrant:
    """The clinician's token and launch context from a code exchange."""

    access_token: str
    scope: str
    patient: str
    fhir_user: str | None
    expires_at: float


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise FhirError(
            f"{what}: not JSON (HTTP {response.status_code})", status=response.status_code
        ) from exc
    if not isinstance(body, dict):
        raise FhirError(f"{what}: not a JSON object", status=response.status_code)
    return body


async def discover(base_url: str, *, timeout_s: float) -> SmartEndpoints:
    """Read the server's SMART configuration; FhirError when it cannot launch a public client with PKCE."""
    async with httpx.AsyncClient(timeout=timeout_s, verify=tls_context()) as http:
        try:
            config = await smart_configuration(http, base_url)
        except FhirUnavailable as exc:
            raise FhirError(f"the FHIR server offers no SMART configuration: {exc}") from exc
    if not config.get("authorization_endpoint") or not config.get("token_endpoint"):
        raise FhirError("the FHIR server offers no SMART authorization and token endpoints")
    if "S256" not in config.get("code_challenge_methods_supported", []):
        raise FhirError("the FHIR server's SMART configuration does not offer PKCE S256")
    return SmartEndpoints(
        authorize=str(config["authorization_endpoint"]),
        token=str(config["token_endpoint"]),
        issuer=config.get("issuer"),
        jwks_uri=config.get("jwks_uri"),
    )


def authorize_url(
    endpoints: SmartEndpoints,
    *,
    client_id: str,
    redirect_uri: str,
    scope: str,
    state: str,
    challenge: str,
    aud: str,
    nonce: str,
    launch: str | None,
) -> str:
    """Where to send the browser to ask the clinician's authorization (EHR launch when `launch` is given)."""
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
        "aud": aud,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **({"launch": launch} if launch else {}),
    }
    return f"{endpoints.authorize}?{urlencode(params)}"


async def exchange_code(
    endpoints: SmartEndpoints,
    *,
    code: str,
    redirect_uri: str,
    client_id: str,
    verifier: str,
    nonce: str,
    base_url: str,
    timeout_s: float,
) -> SmartGrant:
    """Trade an authorization code for the clinician's token; AuthenticationError when refused."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": client_id,
        "code_verifier": verifier,
    }
    async with httpx.AsyncClient(timeout=timeout_s, verify=tls_context()) as http:
        try:
            response = await http.post(endpoints.token, data=form, headers={"Accept": "application/json"})
            body = _json(response, "token response")
            if response.status_code != 200 or not body.get("access_token"):
                raise AuthenticationError(
                    f"token endpoint refused the code: {body.get('error', response.status_code)}"
                )
            if not body.get("patient"):
                raise AuthenticationError("the launch carried no patient context")
            fhir_user = None
            if body.get("id_token"):
                claims = await _id_token_claims(http, endpoints, str(body["id_token"]), client_id, nonce)
                fhir_user = _relative_user(claims.get("fhirUser"), base_url)
        except httpx.HTTPError as exc:
            raise AuthenticationError(f"token endpoint unreachable ({type(exc).__name__})") from exc
    return SmartGrant(
        access_token=str(body["access_token"]),
        scope=str(body.get("scope", "")),
        patient=str(parse_reference(f"Patient/{body['patient']}", what="launch patient").id),
        fhir_user=fhir_user,
        expires_at=time.time() + float(body.get("expires_in", 300)),
    )


async def _id_token_claims(
    http: httpx.AsyncClient, endpoints: SmartEndpoints, id_token: str, client_id: str, nonce: str
) -> dict[str, Any]:
    if not endpoints.jwks_uri or not endpoints.issuer:
        raise AuthenticationError("an id_token came without an issuer and jwks_uri to check it")
    keys = jwt.PyJWKSet.from_dict(_json(await http.get(endpoints.jwks_uri), "JWKS"))
    kid = jwt.get_unverified_header(id_token).get("kid")
    key = next((k for k in keys.keys if kid is None or k.key_id == kid), None)
    if key is None:
        raise AuthenticationError("the id_token's signing key is not in the issuer's JWKS")
    try:
        claims: dict[str, Any] = jwt.decode(
            id_token,
            key.key,
            algorithms=["RS256", "RS384", "ES256", "ES384"],
            audience=client_id,
            issuer=endpoints.issuer,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except jwt.PyJWTError as exc:
        raise AuthenticationError(f"id_token rejected: {exc}") from exc
    if claims.get("nonce") != nonce:
        raise AuthenticationError("id_token nonce does not match the authorization request")
    return claims


def _relative_user(value: Any, base_url: str) -> str | None:
    """fhirUser as `Type/id` on our FHIR server; None when absent or elsewhere."""
    try:
        return str(parse_reference(value, base_url=base_url, types=USER_TYPES, what="fhirUser"))
    except InputError:
        return None
