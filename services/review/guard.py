"""The review app's boundary, before any of its routes reads a body: the API guard's discipline for forms.

A POST under /review is refused unread unless, in this order:

1. it is a form (`application/x-www-form-urlencoded`; multipart is 415, so no upload is ever spooled to disk);
2. the browser does not say it comes from another site (`Sec-Fetch-Site`; the form token is checked too);
3. its session cookie names a signed-in clinician (401);
4. its body fits EHRSUM_REVIEW_MAX_BODY_BYTES, by Content-Length or as it streams (413).

The body is then replayed to the route. Refusals are pages the clinician can read, and audit rows that hold
the route's template and only path values that are FHIR ids.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from services.api.guard import BodyRefused, audited_id, read_body, replaying
from services.audit.models import AuditOutcome
from services.audit.service import record_detached
from services.core.errors import AuthenticationError
from services.core.settings import Settings
from services.review import pages
from services.review.sessions import COOKIE, Sessions

PREFIX = "/review"
FORM = "application/x-www-form-urlencoded"
SAME_SITE = ("same-origin", "same-site", "none")


class Refusal(Exception):
    """Why a request is refused before its body is read."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ReviewGuard:
    """Refuse a /review POST unread unless it is a same-site form of a signed-in clinician within size."""

    def __init__(self, app: ASGIApp, settings: Settings, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.settings = settings
        self.templates = [(route.path, route.path_regex) for route in routes if isinstance(route, Route)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass GETs and everything outside /review on; check a /review POST, then replay its body."""
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith(f"{PREFIX}/"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            actor = await self._admit(headers)
            body = await read_body(headers, receive, self.settings.review_max_body_bytes)
        except Refusal as refusal:
            await self._refuse(scope, send, refusal.status, refusal.message, "anonymous")
            return
        except BodyRefused as exc:
            await self._refuse(scope, send, exc.status, str(exc), actor)
            return
        if body is None:
            return  # the client went away
        await self.app(scope, replaying(body, receive), send)

    async def _admit(self, headers: Headers) -> str:
        """The signed-in clinician a form comes from (their fhirUser); Refusal otherwise."""
        media = headers.get("content-type", "").partition(";")[0].strip().lower()
        if media != FORM:
            raise Refusal(415, "this app takes only the forms of its own pages")
        site = headers.get("sec-fetch-site")
        if site is not None and site.lower() not in SAME_SITE:
            raise Refusal(403, "a form from another site is refused: use the review page itself")
        sid = cookie_parser(headers.get("cookie", "")).get(COOKIE)
        try:
            reviewer = await asyncio.to_thread(Sessions(self.settings).reviewer, sid)
        except AuthenticationError as exc:
            raise Refusal(401, str(exc)) from exc
        return reviewer.fhir_user or "review-app-user"

    async def _refuse(self, scope: Scope, send: Send, status: int, message: str, actor: str) -> None:
        template, ids = self._route_of(scope["path"])
        await asyncio.to_thread(
            record_detached,
            actor=actor,
            action=f"review POST {template}",
            outcome=AuditOutcome.denied if status in (401, 403) else AuditOutcome.failure,
            resource_ids=ids,
            detail=f"{status} before the body was read",
        )
        body = pages.error_page(message).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"text/html; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _route_of(self, path: str) -> tuple[str, list[str]]:
        """The route template of a path and its values as an audit row may hold them."""
        for template, pattern in self.templates:
            match = pattern.match(path)
            if match:
                return template, [audited_id(v) for v in match.groupdict().values()]
        return "(no route)", []
