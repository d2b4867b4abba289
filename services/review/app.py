"""The review app's routes under /review: SMART launch, the patient's drafts, evidence, decisions.

Every FHIR call here carries the launching clinician's token, held server-side in their session; the
service's own credentials are never used. Decisions go through the same code as the API's.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Cookie, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clinical_notes.transcript import split_turn_ref
from fhir_adapters.citation_facts import citation_facts
from fhir_adapters.client import FhirClient
from fhir_adapters.compartment import in_compartment
from fhir_adapters.lifecycle import draft_identifier_of, etag_of, read_versioned
from fhir_adapters.references import fhir_id, parse_reference
from fhir_adapters.replacement import LOCATION
from fhir_adapters.review_drafts import checked_draft, patient_drafts
from fhir_adapters.smart_launch import SmartEndpoints, authorize_url, discover, exchange_code, pkce_pair
from fhir_adapters.transcripts import turn_facts
from services.api.drafts import version_of
from services.api.guard import Counters
from services.api.outcomes import status_of
from services.api.security import same_secret
from services.audit.models import AuditOutcome
from services.audit.service import record_detached
from services.core.errors import (
    ApprovalBlocked,
    AuthenticationError,
    ConflictError,
    EhrSumError,
    FhirAuthError,
    FhirConflict,
    InputError,
    PermissionDenied,
)
from services.core.settings import Settings, get_settings
from services.review import pages
from services.review.guard import ReviewGuard
from services.review.sessions import COOKIE, Pending, Reviewer, Sessions
from workers.approvals import decide_on_server, replace_on_server
from workers.clients import clinician_client
from workers.transcripts import rules_of

log = logging.getLogger(__name__)
router = APIRouter(prefix="/review", include_in_schema=False)
STATIC = Path(__file__).parent / "static"
PREFIX = "/review"
DONE = {"approved": "Draft approved.", "rejected": "Draft rejected.", "replaced": "Edited note approved."}
MAX_FORM_FIELDS = 500
SessionCookie = Annotated[str | None, Cookie(alias=COOKIE)]


def csp(settings: Settings) -> str:
    """The content security policy of every review page: this service only, no inline code."""
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        f"form-action 'self'; base-uri 'none'; frame-ancestors {settings.review_frame_ancestors}"
    )


class SecurityHeaders:
    """CSP and friends on every /review response."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", csp(settings).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"cache-control", b"no-store"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.headers]
            await send(message)

        await self.app(scope, receive, with_headers)


def install_review(app: FastAPI, settings: Settings) -> None:
    """Serve the review app when a SMART client id is configured for it."""
    if not settings.review_client_id:
        return
    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="review-static")
    app.add_middleware(ReviewGuard, settings=settings, routes=router.routes)
    app.add_middleware(SecurityHeaders, settings=settings)


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status)


async def _guarded(action: Callable[[], Awaitable[Response]]) -> Response:
    """Our errors as a page the clinician can read (never a stack trace)."""
    try:
        return await action()
    except FhirAuthError:
        text = (
            "The FHIR server refused your authorization (expired, or outside what was granted): launch again."
        )
        return _html(pages.error_page(text), 401)
    except EhrSumError as exc:
        log.info("review refused: %s", type(exc).__name__)
        return _html(pages.error_page(str(exc)), status_of(exc))


def _redirect_uri(settings: Settings) -> str:
    return f"{settings.review_url.rstrip('/')}{PREFIX}/callback"


def session_cookie(sid: str, settings: Settings) -> str:
    """The Set-Cookie value of a review session: HTTP-only, this app's path, never sent cross-site in clear.

    Over HTTPS the app may run in the EHR's iframe, a third-party context: only a `SameSite=None; Secure`
    cookie reaches it there, `Partitioned` (CHIPS) so it is kept apart per embedding site and survives
    browsers that block unpartitioned third-party cookies. Written here, not with Starlette's `set_cookie`,
    whose `partitioned` needs Python 3.14. Plain HTTP (development) cannot be embedded: `SameSite=Lax`.
    """
    attributes = [f"{COOKIE}={sid}", f"Path={PREFIX}", "HttpOnly"]
    if settings.review_url.startswith("https:"):
        attributes += ["Secure", "SameSite=None", "Partitioned"]
    else:
        attributes.append("SameSite=Lax")
    return "; ".join(attributes)


def _set_cookie(response: Response, sid: str, settings: Settings) -> None:
    response.headers.append("set-cookie", session_cookie(sid, settings))


def _launches(settings: Settings, client: str) -> int:
    """Count one launch from a client address this minute; how many so far (0 when Redis is away)."""
    return Counters(settings.broker_url).hit(f"ehrsum:review-launches:{client}:{int(time.time() // 60)}")


@router.get("/launch")
async def launch(
    request: Request,
    iss: Annotated[str | None, Query(max_length=1024)] = None,
    launch: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    """EHR launch (`iss` and `launch` from the EHR) or standalone launch (no `launch`): off to authorize."""
    settings = get_settings()
    base = settings.fhir_base_url.rstrip("/")
    client = request.client.host if request.client else "unknown"
    if await asyncio.to_thread(_launches, settings, client) > settings.review_launches_per_minute:
        text = "Too many launches from this address; try again in a minute."
        return HTMLResponse(pages.error_page(text), 429, headers={"Retry-After": "60"})

    async def go() -> Response:
        if iss is not None and iss.rstrip("/") != base:
            # Only the configured FHIR server is ever called; a launch from elsewhere is refused unread.
            raise InputError("this app is not configured for the FHIR server that launched it")
        endpoints = await discover(base, timeout_s=settings.fhir_timeout_s)
        verifier, challenge = pkce_pair()
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(16)
        context = "launch" if launch else "launch/patient"
        pending = Pending(
            state, verifier, nonce, endpoints.authorize, endpoints.token, endpoints.issuer, endpoints.jwks_uri
        )
        sid = await asyncio.to_thread(Sessions(settings).start, pending)
        url = authorize_url(
            endpoints,
            client_id=str(settings.review_client_id),
            redirect_uri=_redirect_uri(settings),
            scope=f"{context} {settings.review_scope}",
            state=state,
            challenge=challenge,
            aud=base,
            nonce=nonce,
            launch=launch,
        )
        response = RedirectResponse(url, status_code=302)
        _set_cookie(response, sid, settings)
        return response

    return await _guarded(go)


@router.get("/callback")
async def callback(
    state: Annotated[str, Query(max_length=512)],
    session: SessionCookie = None,
    code: Annotated[str | None, Query(max_length=2048)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The authorization answer: check state, trade the code (PKCE), start the clinician's session."""
    settings = get_settings()

    async def go() -> Response:
        sessions = Sessions(settings)
        pending = await asyncio.to_thread(sessions.pending, session)
        if not same_secret(state, pending.state):
            raise AuthenticationError("the authorization answer does not match this browser's request")
        if error or not code:
            raise AuthenticationError(f"authorization refused: {error or 'no code'}")
        endpoints = SmartEndpoints(pending.authorize, pending.token, pending.issuer, pending.jwks_uri)
        grant = await exchange_code(
            endpoints,
            code=code,
            redirect_uri=_redirect_uri(settings),
            client_id=str(settings.review_client_id),
            verifier=pending.verifier,
            nonce=pending.nonce,
            base_url=settings.fhir_base_url,
            timeout_s=settings.fhir_timeout_s,
        )
        reviewer = Reviewer(
            grant.access_token,
            grant.patient,
            grant.fhir_user,
            grant.scope,
            secrets.token_urlsafe(24),
            grant.expires_at,
        )
        ttl = int(grant.expires_at - time.time())
        sid = await asyncio.to_thread(sessions.sign_in, session, reviewer, ttl)
        log.info("review session started", extra={"patient_id": grant.patient})
        response = RedirectResponse(f"{PREFIX}/", status_code=303)
        _set_cookie(response, sid, settings)
        return response

    return await _guarded(go)


async def _reviewer(session: str | None) -> Reviewer:
    # Redis answers off the event loop, as the guard's counters do.
    return await asyncio.to_thread(Sessions(get_settings()).reviewer, session)


def _actor(reviewer: Reviewer) -> str:
    return reviewer.fhir_user or "review-app-user"


@router.get("/")
async def drafts(session: SessionCookie = None, done: str | None = None) -> Response:
    """The patient in context's drafts."""

    async def go() -> Response:
        reviewer = await _reviewer(session)
        return _html(
            await _drafts_page(reviewer, pages.message(DONE[done], alert=False) if done in DONE else "")
        )

    return await _guarded(go)


async def _drafts_page(reviewer: Reviewer, notice: str) -> str:
    async with clinician_client(get_settings(), reviewer.access_token, _actor(reviewer)) as client:
        patient = (await read_versioned(client, f"Patient/{reviewer.patient}")).resource
        found, older = await patient_drafts(client, reviewer.patient, rules_of(get_settings()))
    banner = pages.patient_banner(reviewer.patient, citation_facts(patient))
    return pages.drafts_page(
        found, reviewer.csrf, user=reviewer.fhir_user, banner=banner, notice=notice, older=older
    )


def _from_page(reviewer: Reviewer, csrf: str) -> None:
    """A form must come from the clinician's own page (its token), not from another site."""
    if not same_secret(csrf, reviewer.csrf):
        raise PermissionDenied("this form did not come from your review page: reload it")


@router.post("/evidence")
async def evidence(
    ref: Annotated[str, Form(max_length=200)],
    csrf: Annotated[str, Form(max_length=200)],
    session: SessionCookie = None,
    fragment: Annotated[bool, Form()] = False,
) -> Response:
    """The facts of a cited resource of the patient in context, read now with the clinician's token.

    A POST with the page's form token: no other site can make a clinician's browser read (and audit) a
    record. The resource is asked for within the patient's compartment, so another patient's is never read.
    """

    async def go() -> Response:
        reviewer = await _reviewer(session)
        _from_page(reviewer, csrf)
        turn = split_turn_ref(ref)
        path = str(parse_reference(turn[0] if turn else ref, what="citation"))
        async with clinician_client(get_settings(), reviewer.access_token, _actor(reviewer)) as client:
            found = (await in_compartment(client, reviewer.patient, [path])).get(path)
            if found is None:
                raise PermissionDenied(f"{path} is not a resource of the patient in context")
            facts = citation_facts(found)
            if turn is not None:
                facts = await turn_facts(client, found, turn[1], rules_of(get_settings()))
        await asyncio.to_thread(
            record_detached,
            actor=_actor(reviewer),
            action="review evidence shown",
            outcome=AuditOutcome.success,
            resource_ids=[path],
        )
        body = pages.evidence_fragment(ref if turn else path, facts)
        return _html(body if fragment else pages.page(path, body))

    try:
        return await go()
    except EhrSumError as exc:
        text = pages.message(str(exc), alert=True)
        return _html(text if fragment else pages.error_page(str(exc)), status_of(exc))


def may_write_audit_events(scope: str) -> bool:
    """Whether a granted SMART scope lets the clinician's token create and update AuditEvents (SMART v1
    `.write` or `.*`, v2 `c` and `u`), so a decision and its AuditEvent go in one transaction. Without it
    the decision is written alone and the worker records its AuditEvent when it hears of the decision."""
    for granted in scope.split():
        context, _, rest = granted.partition("/")
        type_name, _, permissions = rest.partition(".")
        if context not in ("patient", "user") or type_name not in ("AuditEvent", "*"):
            continue
        if permissions in ("write", "*") or {"c", "u"} <= set(permissions.partition("?")[0]):
            return True
    return False


def _checked(reviewer: Reviewer, csrf: str) -> str:
    """The clinician's Practitioner reference, once the form is proven to come from their page."""
    _from_page(reviewer, csrf)
    if not reviewer.fhir_user or not reviewer.fhir_user.startswith("Practitioner/"):
        raise PermissionDenied("only a Practitioner signed in with fhirUser can decide on a draft")
    return reviewer.fhir_user


def _readable(location: str) -> str:
    """`sections[1].statements[0]` as a clinician counts: section 2, statement 1."""
    match = LOCATION.fullmatch(location)
    return f"section {int(match[1]) + 1}, statement {int(match[2]) + 1}" if match else location


def _decision_form(reviewer: Reviewer, form: dict[str, str]) -> tuple[str, str]:
    """The deciding clinician and the version they reviewed, once the form is proven theirs."""
    return _checked(reviewer, form.get("csrf", "")), version_of(form.get("version", ""))


async def _patients_draft(client: FhirClient, draft_id: str, patient: str) -> tuple[str, dict[str, Any], str]:
    """One of our drafts, asked for within the patient's compartment; PermissionDenied for anything else."""
    ref = f"DocumentReference/{fhir_id(draft_id, 'draft id')}"
    doc = (await in_compartment(client, patient, [ref])).get(ref)
    if doc is None or not draft_identifier_of(doc):
        raise PermissionDenied(f"{ref} is not an AI draft of the patient in context")
    return ref, doc, etag_of(doc)


async def _refused(reviewer: Reviewer, exc: EhrSumError, reviewed: str, ref: str) -> Response:
    """A decision not made, explained above the drafts as they are now (nothing was written)."""
    if isinstance(exc, FhirConflict):
        text = (
            f"Not saved: {ref} changed on the server after you opened it (you reviewed version {reviewed}). "
            "Nothing was overwritten; the current version is shown below."
        )
    elif isinstance(exc, ApprovalBlocked):
        where = "; ".join(_readable(location) for location in exc.locations)
        text = (
            f"Not approved: {len(exc.locations)} statement(s) fail their check now ({where}, marked "
            '"Check failed" below). Edit or remove them (Edit, then approve), or give your reason for '
            "approving them as written."
        )
    else:
        text = f"Not saved: {exc}. Nothing was written."
    log.info("review decision refused: %s", type(exc).__name__, extra={"draft_ref": ref})
    return _html(await _drafts_page(reviewer, pages.message(text, alert=True)), status_of(exc))


async def _decide(
    session: str | None,
    draft_id: str,
    form: dict[str, str],
    approved: bool,
) -> Response:
    reviewer = await _reviewer(session)
    clinician, reviewed = _decision_form(reviewer, form)
    async with clinician_client(get_settings(), reviewer.access_token, clinician) as client:
        ref, _, _ = await _patients_draft(client, draft_id, reviewer.patient)
        try:
            await decide_on_server(
                client,
                ref,
                approved=approved,
                if_match=reviewed,
                clinician={"reference": clinician},
                label=clinician,
                reason=None if approved else form.get("reason", ""),
                override_reason=form.get("override_reason") or None,
                patient=reviewer.patient,
                audit=may_write_audit_events(reviewer.scope),
            )
        except (FhirConflict, ConflictError) as exc:
            return await _refused(reviewer, exc, reviewed, ref)
    log.info("review decision", extra={"draft_ref": ref, "approved": approved})
    done = "approved" if approved else "rejected"
    return RedirectResponse(f"{PREFIX}/?done={done}#draft-{fhir_id(draft_id, 'draft id')}", status_code=303)


@router.get("/drafts/{draft_id}/edit")
async def edit_form(draft_id: str, session: SessionCookie = None) -> Response:
    """The draft's statements in text boxes, each with its check as it stands now."""

    async def go() -> Response:
        reviewer = await _reviewer(session)
        async with clinician_client(get_settings(), reviewer.access_token, _actor(reviewer)) as client:
            _, doc, etag = await _patients_draft(client, draft_id, reviewer.patient)
            draft = await checked_draft(client, reviewer.patient, doc, etag, rules=rules_of(get_settings()))
        return _html(pages.edit_page(draft, reviewer.csrf))

    return await _guarded(go)


async def _form(request: Request) -> tuple[dict[str, str], set[str]]:
    """A review form's text fields, and the statement locations ticked for removal."""
    form = await request.form(max_fields=MAX_FORM_FIELDS, max_files=0)
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    removed = {v for v in form.getlist("remove") if isinstance(v, str)}
    return fields, removed


@router.post("/drafts/{draft_id}/edit")
async def edit_and_approve(draft_id: str, request: Request, session: SessionCookie = None) -> Response:
    """Approve the edited statements as a new final DocumentReference that replaces the draft."""

    async def go() -> Response:
        reviewer = await _reviewer(session)  # the guard checked it too, before the body was read
        fields, removed = await _form(request)
        clinician, reviewed = _decision_form(reviewer, fields)
        edits = {k: v for k, v in fields.items() if k.startswith("sections[")}
        async with clinician_client(get_settings(), reviewer.access_token, clinician) as client:
            ref, _, _ = await _patients_draft(client, draft_id, reviewer.patient)
            try:
                await replace_on_server(
                    client,
                    ref,
                    if_match=reviewed,
                    clinician=clinician,
                    edits=edits,
                    removed=removed,
                    override_reason=fields.get("override_reason") or None,
                    patient=reviewer.patient,
                    audit=may_write_audit_events(reviewer.scope),
                )
            except (FhirConflict, ConflictError) as exc:
                return await _refused(reviewer, exc, reviewed, ref)
        log.info("review edit approved", extra={"draft_ref": ref})
        return RedirectResponse(
            f"{PREFIX}/?done=replaced#draft-{fhir_id(draft_id, 'draft id')}", status_code=303
        )

    return await _guarded(go)


# After the edit route: "edit" is not a decision.
@router.post("/drafts/{draft_id}/{decision}")
async def decide(
    draft_id: str,
    decision: Literal["approve", "reject"],
    csrf: Annotated[str, Form(max_length=200)],
    version: Annotated[str, Form(max_length=64)],
    reason: Annotated[str | None, Form(max_length=1000)] = None,
    override_reason: Annotated[str | None, Form(max_length=1000)] = None,
    session: SessionCookie = None,
) -> Response:
    """Approve the version reviewed (final, clinician as authenticator; with an override reason when a
    statement fails its check) or reject it with a reason."""
    form = {
        "csrf": csrf,
        "version": version,
        "reason": reason or "",
        "override_reason": override_reason or "",
    }
    return await _guarded(lambda: _decide(session, draft_id, form, decision == "approve"))
