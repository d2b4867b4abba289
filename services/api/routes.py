"""HTTP routes: summaries and health."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator
from sqlmodel import Session

from clinical_notes.kinds import KINDS
from clinical_notes.kinds import known_kinds as kinds_named
from fhir_adapters.references import id_of
from services.api.security import SummariesRead, SummariesWrite
from services.core.broker import broker_redis
from services.core.db import ping_db, session_scope
from services.core.errors import InputError
from services.core.settings import Settings, get_settings
from services.jobs.models import SummaryJobPublic
from services.jobs.service import caller_key, get_job
from workers.clients import fhir_client, llm_client
from workers.submission import resubmit, submit

router = APIRouter()


def db_session() -> Iterator[Session]:
    """A database session per request."""
    with session_scope() as session:
        yield session


SessionDep = Annotated[Session, Depends(db_session)]
JobId = Annotated[str, Path(max_length=36, pattern=r"^[A-Za-z0-9\-]+$", description="A job id.")]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def known_kinds(value: list[str]) -> list[str]:
    """A request's kinds, each once (ValueError, a 422, for an unknown one)."""
    try:
        return kinds_named(value)
    except InputError as exc:
        raise ValueError(str(exc)) from exc


class SummaryRequest(BaseModel):
    """Ask for drafts of one patient."""

    patient: str = Field(description='Patient id on the FHIR server, or "Patient/{id}".')
    kinds: list[str] = Field(default_factory=lambda: ["progress"], min_length=1, max_length=len(KINDS))
    encounter: str | None = Field(
        default=None,
        description='Encounter id (or "Encounter/{id}") a SOAP note is for; its visit transcript is read. '
        "Default: the patient's newest encounter.",
    )

    @field_validator("encounter")
    @classmethod
    def _encounter_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return id_of(value, "Encounter", "encounter")
        except InputError as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("patient")
    @classmethod
    def _patient_id(cls, value: str) -> str:
        try:
            return id_of(value, "Patient", "patient")
        except InputError as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, value: list[str]) -> list[str]:
        return known_kinds(value)


@router.post("/v1/summaries", status_code=status.HTTP_202_ACCEPTED, response_model=SummaryJobPublic)
def create_summary(
    body: SummaryRequest,
    session: SessionDep,
    principal: SummariesWrite,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Any:
    """Create a job (committed first), then queue it.

    The same Idempotency-Key from the same caller returns the same job; with a different body, 422. With the
    broker unreachable the job is still accepted: it is durable, and the sweeper queues it.
    """
    key = caller_key(principal.subject, idempotency_key) if idempotency_key else None
    submitted = submit(
        session=session,
        patient_id=body.patient,
        kinds=body.kinds,
        idempotency_key=key,
        encounter_id=body.encounter,
    )
    return submitted.job


@router.get("/v1/summaries/{job_id}", response_model=SummaryJobPublic)
def read_summary(job_id: JobId, session: SessionDep, _: SummariesRead) -> Any:
    """A job's status, draft references and failure reason."""
    return get_job(session=session, job_id=job_id)


@router.post(
    "/v1/summaries/{job_id}/retry", status_code=status.HTTP_202_ACCEPTED, response_model=SummaryJobPublic
)
def retry_summary(job_id: JobId, session: SessionDep, _: SummariesWrite) -> Any:
    """Queue a failed job again, with a fresh retry budget (409 for a job that has not failed)."""
    return resubmit(session=session, job_id=job_id)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


async def _check_fhir(settings: Settings) -> None:
    async with fhir_client(settings) as client:
        client.max_retries = 0
        await client.capability()


async def _check_llm(settings: Settings) -> None:
    async with llm_client(settings) as client:
        await client.models()


def _check_broker(settings: Settings) -> None:
    broker_redis(settings.broker_url).ping()


@router.get("/readyz")
async def readyz(settings: SettingsDep) -> JSONResponse:
    """Readiness: database, broker, FHIR server and LLM server all answer."""
    checks: dict[str, str] = {}

    async def run(name: str, coro: Any) -> None:
        try:
            await asyncio.wait_for(coro, timeout=5)
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"error: {type(exc).__name__}"

    await asyncio.gather(
        run("database", asyncio.to_thread(ping_db)),
        run("broker", asyncio.to_thread(_check_broker, settings)),
        run("fhir", _check_fhir(settings)),
        run("llm", _check_llm(settings)),
    )
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )
