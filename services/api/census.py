"""HTTP routes of census runs: POST /v1/census starts one, GET /v1/census/{id} shows its progress."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, Field, field_validator, model_validator

from fhir_adapters.references import fhir_id
from services.api.routes import SessionDep, known_kinds
from services.api.security import SummariesRead, SummariesWrite
from services.core.errors import InputError
from services.jobs.census import CensusPublic, get_census, progress
from workers.census import Population, begin, schedule

router = APIRouter()
MAX_LISTED = 5000
CensusId = Annotated[str, Path(max_length=36, pattern=r"^[A-Za-z0-9\-]+$", description="A census id.")]


def _id(value: str, prefix: str, what: str) -> str:
    try:
        return fhir_id(value.removeprefix(prefix), what)
    except InputError as exc:
        raise ValueError(str(exc)) from exc


class CensusRequest(BaseModel):
    """Summarize a population: exactly one of `group`, `location` or `patients`."""

    group: str | None = Field(default=None, max_length=80, description='Group id, or "Group/{id}".')
    location: str | None = Field(
        default=None,
        max_length=80,
        description='A ward: its in-progress encounters\' patients ("Location/{id}").',
    )
    patients: list[str] | None = Field(default=None, min_length=1, max_length=MAX_LISTED)
    kinds: list[str] = Field(default_factory=lambda: ["progress"], min_length=1, max_length=8)
    concurrency: int = Field(default=4, ge=1, le=256, description="Jobs queued or running at once.")
    run: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._:\-]+$",
        description="Run label (default: today's UTC date); the same label skips patients already done.",
    )

    @field_validator("group")
    @classmethod
    def _group(cls, value: str | None) -> str | None:
        return None if value is None else _id(value, "Group/", "group")

    @field_validator("location")
    @classmethod
    def _location(cls, value: str | None) -> str | None:
        return None if value is None else _id(value, "Location/", "location")

    @field_validator("patients")
    @classmethod
    def _patients(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [_id(v, "Patient/", "patient") for v in value]

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, value: list[str]) -> list[str]:
        return known_kinds(value)

    @model_validator(mode="after")
    def _one_source(self) -> CensusRequest:
        if sum(x is not None for x in (self.group, self.location, self.patients)) != 1:
            raise ValueError("give exactly one of group, location or patients")
        return self


@router.post("/v1/census", status_code=status.HTTP_202_ACCEPTED, response_model=CensusPublic)
def create_census_run(body: CensusRequest, session: SessionDep, _: SummariesWrite) -> Any:
    """Start a census: recorded first, then its first step queued (a worker finds the patients and submits
    their jobs, at most `concurrency` at a time). Poll GET /v1/census/{id} for progress."""
    population = Population(
        group=body.group, location=body.location, patients=tuple(body.patients) if body.patients else None
    )
    census_id = begin(
        population=population,
        kinds=body.kinds,
        run=body.run or datetime.now(UTC).date().isoformat(),
        concurrency=body.concurrency,
        driver="worker",
    )
    schedule(census_id)
    return progress(session=session, census=get_census(session=session, census_id=census_id))


@router.get("/v1/census/{census_id}", response_model=CensusPublic)
def read_census(census_id: CensusId, session: SessionDep, _: SummariesRead) -> Any:
    """A census's progress: counts by state, drafts written, failures with reasons, elapsed time and ETA."""
    return progress(session=session, census=get_census(session=session, census_id=census_id))
