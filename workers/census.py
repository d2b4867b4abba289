"""Census runs: find a population's patients, then keep at most `concurrency` of their jobs in flight.

`advance` is one step, safe to repeat and to run twice at once (a member's job is found by its idempotency
key, never made twice): it submits members while fewer than `concurrency` jobs are queued or running and
reports progress. The CLI calls it in a loop; for the API a Celery task calls it and queues itself again.
Each queued step carries a token also kept in the broker's Redis: when that key lapses (a lost message, a
Redis restart), beat's sweeper queues a new step with a new token, and a late step of the old chain,
finding another token, stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from typing import Literal, cast

from sqlmodel import Session

from fhir_adapters.bulk import BulkExport, declares_group_export
from fhir_adapters.population import group_patients, ward_patients
from services.core.broker import broker_redis
from services.core.db import session_scope
from services.core.errors import ConflictError, EhrSumError, InputError
from services.core.settings import Settings, get_settings
from services.jobs.census import (
    CensusPublic,
    CensusStatus,
    create_census,
    fail_census,
    get_census,
    in_flight,
    member_job_key,
    pending_members,
    progress,
    set_members,
    worker_driven_open,
)
from services.jobs.models import JobStatus
from workers.celery_app import CENSUS_TICK, publish
from workers.clients import fhir_client
from workers.queueing import BROKER_ERRORS
from workers.submission import resubmit, submit

log = logging.getLogger(__name__)
BulkMode = Literal["auto", "always", "never"]
TICK_S = 2.0
NEXT_STEP = "ehrsum:census-step:"


@dataclass(frozen=True)
class Population:
    """Whom a census summarizes: a Group, the in-progress encounters of a Location, or listed patients."""

    group: str | None = None
    location: str | None = None
    patients: tuple[str, ...] | None = None

    @property
    def source(self) -> str:
        """How the census names its population."""
        if self.group:
            return f"Group/{self.group}"
        if self.location:
            return f"Location/{self.location}"
        return "ids"

    @classmethod
    def of_source(cls, source: str) -> Population:
        """The population a census's source names (a listed population's members are already recorded)."""
        type_name, _, ident = source.partition("/")
        if type_name == "Group":
            return cls(group=ident)
        return cls(location=ident) if type_name == "Location" else cls()


async def resolve(
    settings: Settings, population: Population, bulk: BulkMode = "auto"
) -> tuple[list[str], str]:
    """The population's patient ids and how they were found; a Group by Bulk export when the server
    declares Group/$export (`bulk="auto"`), else by reading the Group."""
    if population.patients is not None:
        return list(population.patients), "list"
    async with fhir_client(settings) as client:
        if population.location:
            return await ward_patients(client, population.location), "search"
        assert population.group is not None
        if bulk != "never":
            if declares_group_export(await client.capability()):
                exporter = BulkExport(client)
                ids = await exporter.group_patients(population.group)
                log.info(
                    "census population by bulk export",
                    extra={"polls": exporter.stats.polls, "elapsed_s": round(exporter.stats.seconds, 2)},
                )
                return ids, "bulk export"
            if bulk == "always":
                raise InputError("the FHIR server does not declare Group/$export in its CapabilityStatement")
        return await group_patients(client, population.group), "read"


def begin(
    *, population: Population, kinds: list[str], run: str, concurrency: int, driver: str = "cli"
) -> str:
    """Record a new census (its members already, when they were listed); its id."""
    with session_scope() as session:
        census = create_census(
            session=session,
            source=population.source,
            kinds=kinds,
            run=run,
            concurrency=concurrency,
            driver=driver,
        )
        if population.patients is not None:
            set_members(
                session=session, census=census, patient_ids=list(population.patients), resolved_by="list"
            )
        return census.id


def populate(census_id: str, bulk: BulkMode = "auto", settings: Settings | None = None) -> None:
    """Find a resolving census's members on the FHIR server; a census whose population cannot be found fails
    with the reason (a transient error is raised, for the caller to try again)."""
    settings = settings or get_settings()
    with session_scope() as session:
        census = get_census(session=session, census_id=census_id)
        if census.status != CensusStatus.resolving:
            return
        population = Population.of_source(census.source)
    try:
        ids, how = asyncio.run(resolve(settings, population, bulk))
    except EhrSumError as exc:
        if exc.transient:
            raise
        with session_scope() as session:
            fail_census(
                session=session, census=get_census(session=session, census_id=census_id), reason=str(exc)
            )
        return
    with session_scope() as session:
        census = get_census(session=session, census_id=census_id)
        if census.status == CensusStatus.resolving:
            set_members(session=session, census=census, patient_ids=ids, resolved_by=how)
    log.info("census population found", extra={"job_id": census_id, "count": len(ids)})


def advance(census_id: str) -> CensusPublic:
    """Submit members up to the census's concurrency; its progress."""
    with session_scope() as session:
        census = get_census(session=session, census_id=census_id)
        if census.status == CensusStatus.running:
            room = census.concurrency - in_flight(session=session, census_id=census_id)
            for member in pending_members(session=session, census_id=census_id, limit=room):
                key = member_job_key(census.run, member.patient_id, census.kinds)
                submitted = submit(
                    session=session, patient_id=member.patient_id, kinds=census.kinds, idempotency_key=key
                )
                member.job_id = submitted.job.id
                member.skipped = not submitted.created and submitted.job.status == JobStatus.succeeded
                session.add(member)
                session.commit()
                if not submitted.created and submitted.job.status == JobStatus.failed:
                    _retry(session, submitted.job.id)
        return progress(session=session, census=get_census(session=session, census_id=census_id))


def _retry(session: Session, job_id: str) -> None:
    """Queue again a job an earlier run of this census left failed (another step may have done it)."""
    with contextlib.suppress(ConflictError):
        resubmit(session=session, job_id=job_id)


def tick(census_id: str, token: str | None = None) -> CensusStatus | None:
    """One step of an API census: find its members first, then advance; queue the next step while it runs.
    None when a newer chain of steps replaced this one."""
    if token is not None and _superseded(census_id, token):
        return None
    try:
        populate(census_id)
    except EhrSumError as exc:  # transient: the FHIR server is down for now
        log.warning("census population not found yet: %s", type(exc).__name__, extra={"job_id": census_id})
        schedule(census_id, TICK_S * 5)
        return CensusStatus.resolving
    status = advance(census_id).status
    if status in (CensusStatus.resolving, CensusStatus.running):
        schedule(census_id, TICK_S)
    return status


def _superseded(census_id: str, token: str) -> bool:
    held = broker_redis(get_settings().broker_url).get(f"{NEXT_STEP}{census_id}")
    return held is not None and held != token.encode()


def schedule(census_id: str, countdown: float = 0.0) -> bool:
    """Queue a census step; False when the broker is unreachable (the sweeper queues it later)."""
    settings = get_settings()
    token = uuid.uuid4().hex
    try:
        # Lapses when the step has waited longer than a queued job may before the sweeper checks on it.
        ttl = int(countdown + settings.job_requeue_after_s)
        broker_redis(settings.broker_url).set(f"{NEXT_STEP}{census_id}", token, ex=ttl)
        publish(
            CENSUS_TICK,
            census_id,
            token,
            countdown=countdown or None,
            retry=True,
            retry_policy={"max_retries": 2},
        )
    except BROKER_ERRORS as exc:
        log.warning("census step not queued: %s", type(exc).__name__, extra={"job_id": census_id})
        return False
    return True


def sweep_censuses() -> list[str]:
    """Queue a step for each open census Celery steps whose chain of steps was lost; their ids."""
    settings = get_settings()
    with session_scope() as session:
        open_ids = worker_driven_open(session=session)
    if not open_ids:
        return []
    held = cast(
        list[bytes | None], broker_redis(settings.broker_url).mget([f"{NEXT_STEP}{c}" for c in open_ids])
    )
    lost = [c for c, value in zip(open_ids, held, strict=True) if value is None]
    for census_id in lost:
        schedule(census_id)
    if lost:
        log.warning("sweeper resumed %d censuses", len(lost), extra={"job_id": ",".join(lost)[:2000]})
    return lost
