"""Drafts after write-back: adopt them, supersede older ones, record clinicians' decisions."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

from fhir_adapters.audit_events import DecisionAction, DecisionRecord, decision_event, ensure_event, put_entry
from fhir_adapters.client import FhirClient
from fhir_adapters.compartment import patient_of
from fhir_adapters.lifecycle import (
    Decision,
    Versioned,
    add_verifier,
    approve,
    create_in_transaction,
    decision_of,
    draft_identifier_of,
    read_versioned,
    reject,
    replaced_targets,
    replacement_decision,
    supersede,
    version_id,
)
from fhir_adapters.lifecycle import (
    DraftState as DecisionState,
)
from fhir_adapters.replacement import replacement_document, statement_texts
from fhir_adapters.review_drafts import checked_draft
from services.core import tracing
from services.core.db import session_scope
from services.core.errors import (
    ApprovalBlocked,
    ConflictError,
    FhirConflict,
    FhirError,
    FhirNotFound,
    InputError,
)
from services.core.settings import get_settings
from services.jobs.drafts import decide, older_unapproved, record_draft
from services.jobs.models import Draft, DraftState
from workers.clients import fhir_client
from workers.transcript_jobs import submit_soap_job
from workers.transcripts import rules_of

log = logging.getLogger(__name__)
DECIDED: dict[str, DecisionAction] = {"approved": "approve", "rejected": "reject", "replaced": "replace"}


def _record_and_find_older(job_id: str, patient_id: str, kind: str, ref: str) -> list[str]:
    """Record a job's new draft; the patient's older unapproved drafts of the same kind."""
    with session_scope() as session:
        record_draft(session=session, ref=ref, patient_id=patient_id, kind=kind, job_id=job_id, version=None)
        return [
            d.ref for d in older_unapproved(session=session, patient_id=patient_id, kind=kind, newer_ref=ref)
        ]


async def adopt_drafts(
    client: FhirClient, *, job_id: str, patient_id: str, drafts: list[tuple[str, str]]
) -> None:
    """Record the drafts a job wrote and supersede older unapproved drafts of the same patient and kind."""
    for kind, ref in drafts:
        older = await asyncio.to_thread(_record_and_find_older, job_id, patient_id, kind, ref)
        for old_ref in older:
            if await supersede(client, old_ref, ref):
                log.info("draft superseded", extra={"draft_ref": old_ref, "job_id": job_id})
            await settle(client, decision_of((await read_versioned(client, old_ref)).resource))
        await settle(client, decision_of((await read_versioned(client, ref)).resource))


def _record_decision(decision: Decision) -> tuple[Draft, DraftState] | None:
    """The draft's row with the decision applied, and its state before; None when the draft is not ours."""
    with session_scope() as session:
        draft = session.get(Draft, decision.draft_ref)
        if draft is None:
            return None
        before = draft.state
        draft = decide(
            session=session,
            draft=draft,
            state=DraftState(decision.state),
            version=decision.version,
            authenticator=decision.authenticator,
            replaced_by=decision.replaced_by,
            change_ratio=decision.change_ratio,
        )
        return draft, before


async def settle(
    client: FhirClient,
    decision: Decision,
    *,
    verifier: dict[str, Any] | None = None,
    actor: dict[str, Any] | None = None,
) -> Draft | None:
    """Record a decision on one of our drafts; an approving clinician becomes verifier on the Provenance.

    A decision heard for the first time also gets its AuditEvent unless one exists (written in the
    transaction of the decision when we carried it out; missing when the clinician decided in the EHR)."""
    recorded = await asyncio.to_thread(_record_decision, decision)
    if recorded is None:
        return None
    draft, before = recorded
    if verifier is None and decision.authenticator:
        verifier = {"reference": decision.authenticator}
    if verifier and decision.state in ("approved", "replaced"):
        await add_verifier(client, decision.draft_ref, verifier)
    if decision.state in DECIDED and before.value != decision.state:
        await _audit_decision(client, decision, draft.patient_id, actor or verifier)
    log.info("draft is %s", decision.state, extra={"draft_ref": decision.draft_ref})
    return draft


def _decision_event(
    decision: Decision, patient_id: str | None, clinician: dict[str, Any] | None, version: str | None = None
) -> dict[str, Any]:
    return decision_event(
        DecisionRecord(
            draft_ref=decision.draft_ref,
            decision=DECIDED[decision.state],
            clinician=clinician,
            patient_id=patient_id,
            replacement=decision.replaced_by,
            version=version,
            trace_id=tracing.current_trace_id(),
        )
    )


async def _audit_decision(
    client: FhirClient, decision: Decision, patient_id: str | None, clinician: dict[str, Any] | None
) -> None:
    if not get_settings().fhir_audit_events:
        return
    try:
        await ensure_event(client, _decision_event(decision, patient_id, clinician))
    except FhirError as exc:
        # The decision stands; the next notification or poll of this draft tries again.
        log.warning(
            "decision AuditEvent not written: %s", type(exc).__name__, extra={"draft_ref": decision.draft_ref}
        )


def _decidable(ref: str, current: Versioned, reviewed: str) -> None:
    """A decision is final, and only the version the clinician reviewed is decided on.

    Checked here, whatever the FHIR server does with If-Match: a decided draft (on the server or in our
    records, where a clinician's replacement is seen) is ConflictError (409, with its state); a draft whose
    version is not the one reviewed is FhirConflict (412).
    """
    state = decision_of(current.resource).state
    if state == "preliminary":
        with session_scope() as session:
            ours = session.get(Draft, ref)
            state = ours.state.value if ours is not None else state
    if state != "preliminary":
        raise ConflictError(f"{ref} is already {state}: a decision is final")
    if version_id(current.etag) != version_id(reviewed):
        now, then = version_id(current.etag), version_id(reviewed)
        raise FhirConflict(f"{ref} is at version {now}, not the version {then} reviewed", status=412)


async def _failing(client: FhirClient, current: Versioned, patient: str | None) -> list[str]:
    """Where the draft holds a statement whose check fails now (against its sources in the compartment)."""
    patient = patient or patient_of(current.resource, base_url=client.base_url)
    if patient is None:
        raise ConflictError("the draft names no patient: its statements cannot be checked")
    try:
        checked = await checked_draft(
            client, patient, current.resource, current.etag, rules=rules_of(get_settings())
        )
    except (InputError, ValueError):
        return []  # a draft of an older shape carries no statements to check
    return [s.location for s in checked.failing]


def _blocked(ref: str, failing: list[str], override_reason: str | None) -> None:
    """A statement that fails its check is not approved as written unless the clinician says why."""
    if failing and not (override_reason and override_reason.strip()):
        raise ApprovalBlocked(
            f"{ref}: {len(failing)} statement(s) fail their check now ({', '.join(failing)}): edit or remove "
            "them, or approve with an override reason",
            locations=failing,
        )


async def decide_on_server(
    client: FhirClient,
    ref: str,
    *,
    approved: bool,
    if_match: str,
    clinician: dict[str, Any],
    label: str,
    reason: str | None = None,
    override_reason: str | None = None,
    patient: str | None = None,
    audit: bool = True,
) -> Decision:
    """Approve (clinician as authenticator and Provenance verifier) or reject a draft, and record it.

    The rules of a decision, for the API and the review app alike: a decided draft is not decided again
    and only the reviewed version is decided on (`_decidable`); a draft holding a statement whose check
    fails now is approved only with the clinician's override reason, recorded on the DocumentReference.
    The check reads the cited resources from the compartment of `patient` (else the draft's subject).
    With `audit` (and EHRSUM_FHIR_AUDIT_EVENTS on), the decision's AuditEvent goes in the same transaction.
    """
    current = await read_versioned(client, ref)
    _decidable(ref, current, if_match)
    state: DecisionState = "approved" if approved else "rejected"
    subject = patient or patient_of(current.resource, base_url=client.base_url)

    def audit_entries(_: dict[str, Any]) -> list[dict[str, Any]]:
        return [put_entry(_decision_event(Decision(ref, state, None), subject, clinician, if_match))]

    also = audit_entries if audit and get_settings().fhir_audit_events else None
    if approved:
        failing = await _failing(client, current, patient)
        _blocked(ref, failing, override_reason)
        doc = await approve(
            client,
            ref,
            if_match=if_match,
            authenticator=clinician,
            current=current,
            override_reason=override_reason if failing else None,
            also=also,
        )
    else:
        doc = await reject(client, ref, if_match=if_match, reason=reason, current=current, also=also)
    decision = replace(decision_of(doc), authenticator=label if approved else None)
    await settle(client, decision, verifier=clinician if approved else None, actor=clinician)
    return decision


async def replace_on_server(
    client: FhirClient,
    ref: str,
    *,
    if_match: str,
    clinician: str,
    edits: dict[str, str],
    removed: set[str],
    override_reason: str | None,
    patient: str,
    audit: bool = True,
) -> str:
    """Approve a clinician's edit of a draft as a new final DocumentReference replacing it; the new ref.

    The same rules as `decide_on_server`: the draft undecided and at the version reviewed; each statement
    that fails its check is edited or removed, or the clinician gives the override reason (recorded). With
    `audit` (and EHRSUM_FHIR_AUDIT_EVENTS on), the decision's AuditEvent goes in the same transaction.
    """
    current = await read_versioned(client, ref)
    _decidable(ref, current, if_match)
    failing = await _failing(client, current, patient)
    texts = statement_texts(current.resource)
    kept_as_written = [
        location
        for location in failing
        if location not in removed and edits.get(location, "").strip() == texts.get(location, "").strip()
    ]
    _blocked(ref, kept_as_written, override_reason)
    document = replacement_document(
        current.resource,
        edits,
        clinician,
        removed=removed,
        override_reason=override_reason if kept_as_written else None,
    )

    def audit_entries(new_url: str) -> list[dict[str, Any]]:
        if not (audit and get_settings().fhir_audit_events):
            return []
        decision = Decision(ref, "replaced", None, replaced_by=new_url)
        return [put_entry(_decision_event(decision, patient, {"reference": clinician}, if_match))]

    new_ref = await create_in_transaction(client, document, audit_entries)
    await track(client, new_ref)
    return new_ref


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
