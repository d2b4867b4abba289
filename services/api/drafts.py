"""Drafts over HTTP: list them with their state; approve or reject one for EHRs that cannot edit docStatus."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query
from pydantic import BaseModel, Field

from fhir_adapters.references import fhir_id
from services.api.outcomes import operation_outcome
from services.api.routes import SessionDep
from services.api.security import DraftsApprove, DraftsRead, Principal
from services.core.errors import InputError
from services.core.settings import get_settings
from services.jobs.drafts import get_draft, list_drafts
from services.jobs.models import DraftPublic, DraftState
from workers.approvals import decide_on_server
from workers.clients import fhir_client

router = APIRouter()
API_SUBJECT_SYSTEM = "urn:ehr-summarizer:api-subject"
# A strong or weak ETag of one version: W/"3" or "3".
ETAG = re.compile(r'(?:W/)?"([A-Za-z0-9\-.]{1,64})"')


class Approval(BaseModel):
    """What an approval may say besides the version: why statements that fail their check are approved."""

    override_reason: str | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="Required when a statement fails its check now; recorded on the DocumentReference.",
    )


def _ref(draft_id: str) -> str:
    return f"DocumentReference/{fhir_id(draft_id, 'draft id')}"


def version_of(if_match: str) -> str:
    """The weak ETag of the version an If-Match names; InputError for anything else."""
    match = ETAG.fullmatch(if_match.strip())
    if match is None:
        raise InputError('If-Match must be the ETag of the version reviewed, like W/"3"')
    return f'W/"{match[1]}"'


def authenticator_of(principal: Principal) -> dict[str, Any]:
    """The clinician as a FHIR Reference: their fhirUser claim, else the token subject as an identifier."""
    if principal.fhir_user:
        return {"reference": principal.fhir_user}
    return {"identifier": {"system": API_SUBJECT_SYSTEM, "value": principal.subject}}


@router.get("/v1/drafts", response_model=list[DraftPublic])
def drafts(
    session: SessionDep,
    _: DraftsRead,
    status: DraftState | None = None,
    patient: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Any:
    """Our drafts, newest first, with their state (preliminary, approved, rejected, superseded, replaced)."""
    patient_id = fhir_id(patient, "patient") if patient is not None else None
    return list_drafts(session=session, state=status, patient_id=patient_id, limit=limit)


@router.get("/v1/drafts/{draft_id}", response_model=DraftPublic)
def draft(draft_id: str, session: SessionDep, _: DraftsRead) -> Any:
    """One draft and its state."""
    return get_draft(session=session, ref=_ref(draft_id))


async def _decide(
    draft_id: str,
    session: SessionDep,
    principal: Principal,
    if_match: str | None,
    approve: bool,
    override_reason: str | None = None,
) -> Any:
    ref = _ref(draft_id)
    if not if_match:
        # Deciding on "whatever version is there now" would approve text nobody reviewed.
        return operation_outcome(428, f"{ref}: send If-Match with the version you reviewed")
    expected = version_of(if_match)
    get_draft(session=session, ref=ref)
    label = principal.fhir_user or f"{API_SUBJECT_SYSTEM}|{principal.subject}"
    async with fhir_client(get_settings()) as client:
        await decide_on_server(
            client,
            ref,
            approved=approve,
            if_match=expected,
            clinician=authenticator_of(principal),
            label=label,
            override_reason=override_reason,
        )
    session.expire_all()
    return get_draft(session=session, ref=ref)


@router.post("/v1/drafts/{draft_id}/approve", response_model=DraftPublic)
async def approve_draft(
    draft_id: str,
    session: SessionDep,
    principal: DraftsApprove,
    if_match: Annotated[str | None, Header(max_length=64)] = None,
    approval: Annotated[Approval | None, Body()] = None,
) -> Any:
    """Approve: docStatus final, caller as authenticator; If-Match required (428), 412 when it moved on, 409
    when already decided or when a statement fails its check now and no `override_reason` is given."""
    reason = approval.override_reason if approval else None
    return await _decide(draft_id, session, principal, if_match, approve=True, override_reason=reason)


@router.post("/v1/drafts/{draft_id}/reject", response_model=DraftPublic)
async def reject_draft(
    draft_id: str,
    session: SessionDep,
    principal: DraftsApprove,
    if_match: Annotated[str | None, Header(max_length=64)] = None,
) -> Any:
    """Reject: status entered-in-error; If-Match required (428), 412 when it moved on."""
    return await _decide(draft_id, session, principal, if_match, approve=False)
