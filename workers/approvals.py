"""Drafts after write-back: adopt them, supersede older ones, record clinicians' decisions."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

from fhir_adapters.client import FhirClient
from fhir_adapters.lifecycle import (
    Decision,
    add_verifier,
    approve,
    decision_of,
    draft_identifier_of,
    read_versioned,
    reject,
    replaced_targets,
    replacement_decision,
    supersede,
)
from services.core.db import session_scope
from services.core.errors import EhrSumError, FhirNotFound
from services.core.settings import Settings, get_settings
from services.jobs.drafts import decide, older_unapproved, record_draft
from services.jobs.models import Draft, DraftState
from workers.clients import fhir_client
from workers.transcript_jobs import submit_soap_job

log = logging.getLogger(__name__)


async def _adopt(client: FhirClient, job_id: str, patient_id: str, drafts: list[tuple[str, str]]) -> None:
    for kind, ref in drafts:
        with session_scope() as session:
            record_draft(
                session=session, ref=ref, patient_id=patient_id, kind=kind, job_id=job_id, version=None
            )
            older = [
                d.ref
                for d in older_unapproved(session=session, patient_id=patient_id, kind=kind, newer_ref=ref)
            ]
        for old_ref in older:
            if await supersede(client, old_ref, ref):
                log.info("draft superseded", extra={"draft_ref": old_ref, "job_id": job_id})
            await settle(client, decision_of((await read_versioned(client, old_ref)).resource))
        await settle(client, decision_of((await read_versioned(client, ref)).resource))


def adopt_drafts(settings: Settings, *, job_id: str, patient_id: str, drafts: list[tuple[str, str]]) -> None:
    """Track the drafts a job wrote and supersede older unapproved drafts of the same patient and kind."""

    async def run() -> None:
        async with fhir_client(settings) as client:
            await _adopt(client, job_id, patient_id, drafts)

    try:
        asyncio.run(run())
    except EhrSumError as exc:
        # The drafts are written; a failed supersede is caught up by the next notification or poll.
        log.warning("draft lifecycle not updated: %s", type(exc).__name__, extra={"job_id": job_id})


async def settle(
    client: FhirClient, decision: Decision, *, verifier: dict[str, Any] | None = None
) -> Draft | None:
    """Record a decision on one of our drafts; an approving clinician becomes verifier on the Provenance."""
    with session_scope() as session:
        draft = session.get(Draft, decision.draft_ref)
        if draft is None:
            return None
        draft = decide(
            session=session,
            draft=draft,
            state=DraftState(decision.state),
            version=decision.version,
            authenticator=decision.authenticator,
            replaced_by=decision.replaced_by,
            change_ratio=decision.change_ratio,
        )
    if verifier is None and decision.authenticator:
        verifier = {"reference": decision.authenticator}
    if verifier and decision.state in ("approved", "replaced"):
        await add_verifier(client, decision.draft_ref, verifier)
    log.info("draft is %s", decision.state, extra={"draft_ref": decision.draft_ref})
    return draft


async def decide_on_server(
    client: FhirClient,
    ref: str,
    *,
    approved: bool,
    if_match: str,
    clinician: dict[str, Any],
    label: str,
    reason: str | None = None,
) -> Decision:
    """Approve (clinician as authenticator and Provenance verifier) or reject a draft, and record it."""
    if approved:
        doc = await approve(client, ref, if_match=if_match, authenticator=clinician)
    else:
        doc = await reject(client, ref, if_match=if_match, reason=reason)
    decision = replace(decision_of(doc), authenticator=label if approved else None)
    await settle(client, decision, verifier=clinician if approved else None)
    return decision


async def track(client: FhirClient, ref: str) -> list[Draft]:
    """Read a changed DocumentReference: a visit transcript queues its encounter's SOAP note; otherwise
    record what it means for our drafts."""
    try:
        doc = (await read_versioned(client, ref)).resource
    except FhirNotFound:
        return []
    if await asyncio.to_thread(submit_soap_job, doc, get_settings()):
        return []  # a visit transcript: its encounter's SOAP note is due
    if draft_identifier_of(doc):
        # Ours: its relatesTo links are our own supersedes, not a clinician's edit.
        return [d for d in [await settle(client, decision_of(doc))] if d is not None]
    settled: list[Draft | None] = []
    for target in replaced_targets(doc, base_url=client.base_url):
        with session_scope() as session:
            ours = session.get(Draft, target)
        if ours is None:
            continue
        original = (await read_versioned(client, target)).resource
        decision = replacement_decision(original, doc, base_url=client.base_url)
        if decision is None:
            log.warning(
                "replacement not final or not by a Practitioner: ignored", extra={"draft_ref": target}
            )
            continue
        settled.append(await settle(client, decision))
    return [d for d in settled if d is not None]


def track_document(ref: str) -> list[str]:
    """Task body: record the decision a DocumentReference carries; the drafts it settled."""

    async def run() -> list[Draft]:
        async with fhir_client(get_settings()) as client:
            return await track(client, ref)

    return [f"{d.ref}={d.state.value}" for d in asyncio.run(run())]
