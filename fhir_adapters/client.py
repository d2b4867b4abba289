"""Async FHIR REST client: auth, retries with backoff, typed errors, opaque paging.

Every request stays under the configured base URL: a relative path is resolved beneath it, and an absolute
URL (a server's `link[next]`) is sent only when it is the same server's, so our credentials go nowhere else.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from opentelemetry.trace import SpanKind

from fhir_adapters.references import fhir_id, resource_type, within_base
from fhir_adapters.smart_auth import SmartTokenSource
from services.core import tracing
from services.core.errors import (
    FhirAuthError,
    FhirConflict,
    FhirError,
    FhirNotFound,
    FhirUnavailable,
    OperationOutcomeError,
)
from services.core.tls import tls_context

FHIR_JSON = "application/fhir+json"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# What servers answer for a page token they no longer hold (HAPI: 410 Gone; others 400).
STALE_PAGE_STATUSES = frozenset({400, 410})
MAX_RETRY_AFTER_S = 60.0
# Called after every exchange with (method, path without query, status or None when unreachable).
ExchangeHook = Callable[[str, str, int | None], None]


@dataclass(frozen=True)
class FhirAuth:
    """How we authenticate to the FHIR server."""

    mode: Literal["none", "basic", "bearer", "smart"] = "none"
    username: str | None = None
    password: str | None = None
    token: str | None = None
    smart: SmartTokenSource | None = None

    def httpx_auth(self) -> httpx.Auth | None:
        """The httpx auth object for basic; None otherwise."""
        if self.mode == "basic":
            return httpx.BasicAuth(self.username or "", self.password or "")
        return None

    def headers(self) -> dict[str, str]:
        """Static headers (bearer token)."""
        return {"Authorization": f"Bearer {self.token}"} if self.mode == "bearer" and self.token else {}


def retry_after_seconds(value: str | None) -> float | None:
    """Parse a Retry-After header (seconds or HTTP date) into seconds, capped."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, min(when.timestamp() - time.time(), MAX_RETRY_AFTER_S))


def outcome_summary(outcome: dict[str, Any] | None) -> str:
    """The issue codes of an OperationOutcome (codes only: diagnostics may echo PHI)."""
    if not outcome or outcome.get("resourceType") != "OperationOutcome":
        return ""
    codes = [f"{i.get('severity', '?')}:{i.get('code', '?')}" for i in outcome.get("issue", [])]
    return ", ".join(codes)


class StalePage(FhirError):
    """A next link the server no longer honours (its page token expired)."""


class FhirClient:
    """A FHIR R4 server at one base URL."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: FhirAuth | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 4,
        backoff_base_s: float = 0.5,
        page_limit: int = 1000,
        transport: httpx.AsyncBaseTransport | None = None,
        on_exchange: ExchangeHook | None = None,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ):
        self.base_url = base_url.rstrip("/") + "/"
        self._base = httpx.URL(self.base_url)
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.page_limit = page_limit
        self.on_exchange = on_exchange
        self.on_close = on_close
        auth = auth or FhirAuth()
        self._tokens = auth.smart if auth.mode == "smart" else None
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            auth=auth.httpx_auth(),
            headers={"Accept": FHIR_JSON, **auth.headers()},
            timeout=timeout_s,
            transport=transport,
            verify=tls_context(),
        )

    async def __aenter__(self) -> FhirClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (and let the exchange hook finish its writes)."""
        await self._http.aclose()
        if self.on_close is not None:
            await self.on_close()

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request (a client span, its retries included), retrying transient failures; raise typed
        errors for the rest."""
        attributes = _span_attributes(method, url, self._base)
        name = f"FHIR {method} {attributes['fhir.resource_type'] or ''}".rstrip()
        with tracing.span(name, attributes, kind=SpanKind.CLIENT) as span:
            response = await self._request(method, url, params=params, json=json, headers=headers)
            span.set_attribute("http.response.status_code", response.status_code)
            return response

    async def _request(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None,
        json: dict[str, Any] | None,
        headers: dict[str, str] | None,
    ) -> httpx.Response:
        label = f"{method} {url.split('?')[0]}"
        target = self.target(url)
        headers = tracing.inject(headers)
        send_headers = {"Content-Type": FHIR_JSON, **headers} if json is not None else headers
        for attempt in range(self.max_retries + 1):
            wait: float | None = None
            try:
                response = await self._send(method, target, params=params, json=json, headers=send_headers)
            except httpx.TransportError as exc:
                self._exchanged(method, url, None)
                if attempt >= self.max_retries:
                    raise FhirUnavailable(f"FHIR server unreachable: {label} ({type(exc).__name__})") from exc
            else:
                self._exchanged(method, url, response.status_code)
                if response.status_code not in RETRY_STATUSES:
                    raise_for_status(response, label)
                    return response
                if attempt >= self.max_retries:
                    raise FhirUnavailable(
                        f"FHIR server kept failing: {label} -> {response.status_code}",
                        status=response.status_code,
                    )
                wait = retry_after_seconds(response.headers.get("Retry-After"))
            if wait is None:
                wait = self.backoff_base_s * 2**attempt * (0.5 + random.random())  # noqa: S311
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    def target(self, url: str) -> httpx.URL:
        """The absolute URL of a request path or URL; FhirError when it would leave the configured server."""
        try:
            target = httpx.URL(url) if "://" in url else httpx.URL(self.base_url + url.lstrip("/"))
        except httpx.InvalidURL as exc:
            raise FhirError("not a valid FHIR request URL") from exc
        if not within_base(target, self._base):
            raise FhirError(
                f"refused a request outside the configured FHIR server ({target.scheme}://{target.host})"
            )
        return target

    async def _send(
        self,
        method: str,
        url: httpx.URL,
        *,
        params: dict[str, str] | None,
        json: dict[str, Any] | None,
        headers: dict[str, str] | None,
    ) -> httpx.Response:
        """One HTTP exchange; with SMART, a bearer token that is renewed once when the server answers 401."""
        if self._tokens is None:
            return await self._http.request(method, url, params=params, json=json, headers=headers)
        for renewed in (False, True):
            token = await self._tokens.token(self._http)
            bearer = {**(headers or {}), "Authorization": f"Bearer {token}"}
            response = await self._http.request(method, url, params=params, json=json, headers=bearer)
            if response.status_code != 401 or renewed:
                return response
            self._tokens.invalidate(token)
        raise AssertionError("unreachable")

    def _exchanged(self, method: str, url: str, status: int | None) -> None:
        if self.on_exchange is not None:
            path = url.split("?")[0].removeprefix(self.base_url)
            self.on_exchange(method, path, status)

    async def get_json(self, url: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        """GET a URL (relative to the base, or absolute) and return its JSON body."""
        response = await self.request("GET", url, params=params)
        return json_body(response, url)

    async def read(self, type_name: str, resource_id: str) -> dict[str, Any]:
        """Read one resource (InputError for a type or id that is not FHIR's)."""
        return await self.get_json(f"{resource_type(type_name)}/{fhir_id(resource_id)}")

    async def pages(self, url: str, params: dict[str, str] | None = None) -> AsyncIterator[dict[str, Any]]:
        """Yield a Bundle and each following page, following link[next] as an opaque URL.

        A stale page token (410, or 400, on a next link) restarts the search once from its first page, so a
        consumer may see a resource twice and must key what it keeps by `Type/id`; a second one fails.
        """
        restarts = 0
        while True:
            try:
                async for bundle in self._pages_once(url, params):
                    yield bundle
                return
            except StalePage as exc:
                if restarts >= 1:
                    raise FhirError(
                        f"paging failed twice, the server's page token expired: {url.split('?')[0]}",
                        status=exc.status,
                    ) from exc
                restarts += 1

    async def _pages_once(self, url: str, params: dict[str, str] | None) -> AsyncIterator[dict[str, Any]]:
        bundle = await self.get_json(url, params)
        seen: set[str] = set()
        for _ in range(self.page_limit):
            yield bundle
            link = next_link(bundle)
            if not link:
                return
            # Relative links ("Patient?page=2", "/fhir/Patient?..", "?_getpages=..") resolve against the base.
            next_url = str(self._base.join(link))
            if next_url in seen:
                return
            seen.add(next_url)
            try:
                bundle = await self.get_json(next_url)
            except (FhirNotFound, OperationOutcomeError) as exc:
                if exc.status in STALE_PAGE_STATUSES:
                    raise StalePage(str(exc), status=exc.status) from exc
                raise
        raise FhirError(f"paging stopped after {self.page_limit} pages: {url.split('?')[0]}")

    async def search(self, resource_type: str, params: dict[str, str]) -> AsyncIterator[dict[str, Any]]:
        """Yield every matching resource across all pages, once each (`Bundle.total` is never needed)."""
        yielded: set[str] = set()
        async for bundle in self.pages(resource_type, params):
            for entry in bundle.get("entry", []):
                resource = entry.get("resource")
                if entry.get("search", {}).get("mode", "match") != "match" or not isinstance(resource, dict):
                    continue
                key = f"{resource.get('resourceType')}/{resource.get('id')}"
                if key not in yielded:
                    yielded.add(key)
                    yield resource

    async def transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """POST a transaction Bundle and return the transaction-response."""
        response = await self.request("POST", "", json=bundle)
        return json_body(response, "transaction")

    async def capability(self) -> dict[str, Any]:
        """The server's CapabilityStatement."""
        return await self.get_json("metadata")


def _span_attributes(method: str, url: str, base: httpx.URL) -> dict[str, tracing.AttributeValue | None]:
    """What a FHIR call's span says: method, resource type and operation, server; never an id (a
    patient id, a search value)."""
    path = url.split("?")[0]
    if path.startswith(("http://", "https://")):
        path = path.removeprefix(str(base).rstrip("/"))
    segments = [p for p in path.strip("/").split("/") if p]
    type_name = segments[0] if segments and segments[0][:1].isupper() else None
    operation = next((p for p in segments if p.startswith("$")), None)
    return {
        "http.request.method": method,
        "fhir.resource_type": type_name or ("transaction" if not segments else None),
        "fhir.operation": operation,
        "server.address": base.host,
        "server.port": base.port,
    }


def next_link(bundle: dict[str, Any]) -> str | None:
    """The Bundle's link[relation=next] URL, if any."""
    for link in bundle.get("link", []):
        if link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None


def raise_for_status(response: httpx.Response, label: str) -> None:
    """Map a non-2xx answer to the error tree."""
    status = response.status_code
    if status < 400:
        return
    outcome: dict[str, Any] | None = None
    try:
        body = response.json()
        outcome = body if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome" else None
    except ValueError:
        outcome = None
    detail = outcome_summary(outcome)
    message = f"{label} -> {status}" + (f" ({detail})" if detail else "")
    if status in (404, 410):
        raise FhirNotFound(message, status=status, outcome=outcome)
    if status in (401, 403):
        raise FhirAuthError(message, status=status, outcome=outcome)
    if status in (409, 412):
        raise FhirConflict(message, status=status, outcome=outcome)
    if status >= 500 and status != 501:  # 501: the server will never support it; not worth a retry
        raise FhirUnavailable(message, status=status, outcome=outcome)
    raise OperationOutcomeError(message, status=status, outcome=outcome)


def json_body(response: httpx.Response, label: str) -> dict[str, Any]:
    """The JSON object a response carries; FhirError when it carries something else."""
    try:
        body = response.json()
    except ValueError as exc:
        raise FhirError(f"{label}: server answered {response.status_code} without JSON") from exc
    if not isinstance(body, dict):
        raise FhirError(f"{label}: server answered a JSON {type(body).__name__}, not a resource")
    return body
