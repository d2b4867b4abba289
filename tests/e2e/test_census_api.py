"""/v1/census as an attacker sends it: no token, the wrong scope, bad ids, huge and deep bodies, unknown ids.

Every refusal is a FHIR OperationOutcome and creates nothing; none of these requests needs a worker.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlmodel import func, select

from services.core.db import session_scope
from services.jobs.census import Census
from tests.support.identity import IdentityProvider

pytestmark = pytest.mark.e2e


def censuses() -> int:
    with session_scope() as session:
        return int(session.exec(select(func.count()).select_from(Census)).one())


def outcome(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/fhir+json")
    body: dict[str, Any] = answer.json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["severity"] == "error"
    return body


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"group": "g1", "location": "w1"},
        {"group": "g1", "patients": ["p1"]},
        {"group": "../metadata"},
        {"group": "Group/a/b"},
        {"group": "g1?_include=*"},
        {"location": "Location/" + "x" * 65},
        {"location": ""},
        {"patients": []},
        {"patients": ["p1", "Patient/../../x"]},
        {"patients": [{"reference": "Patient/p1"}]},
        {"patients": "p1"},
        {"group": 7},
        {"group": "g1", "kinds": ["poem"]},
        {"group": "g1", "kinds": []},
        {"group": "g1", "concurrency": 0},
        {"group": "g1", "concurrency": 100_000},
        {"group": "g1", "run": "a b"},
        {"group": "g1", "run": "x" * 65},
        {"group": "g1\u0000"},
    ],
)
def test_bad_bodies_are_422_and_start_nothing(api: str, auth: dict[str, str], body: dict[str, Any]) -> None:
    before = censuses()
    outcome(httpx.post(f"{api}/v1/census", json=body, headers=auth, timeout=30), 422)
    assert censuses() == before


def test_more_listed_patients_than_allowed_is_refused(api: str, auth: dict[str, str]) -> None:
    before = censuses()  # 5,001 short ids: under the body limit, over the list's
    answer = httpx.post(f"{api}/v1/census", json={"patients": ["p"] * 5001}, headers=auth, timeout=30)
    outcome(answer, 422)
    assert censuses() == before


def test_a_huge_body_is_413_before_it_is_read(api: str, auth: dict[str, str]) -> None:
    body = json.dumps({"patients": [f"patient-{n:06d}" for n in range(200_000)]})
    answer = httpx.post(
        f"{api}/v1/census", content=body, headers={**auth, "Content-Type": "application/json"}, timeout=60
    )
    outcome(answer, 413)


def test_deep_json_is_400(api: str, auth: dict[str, str]) -> None:
    body = '{"group": "g1", "x": ' + "[" * 200 + "]" * 200 + "}"
    answer = httpx.post(
        f"{api}/v1/census", content=body, headers={**auth, "Content-Type": "application/json"}, timeout=30
    )
    outcome(answer, 400)


def test_no_token_is_401_and_the_wrong_scope_403(api: str, identity: IdentityProvider) -> None:
    before = censuses()
    answer = httpx.post(f"{api}/v1/census", json={"group": "g1"}, timeout=30)
    outcome(answer, 401)
    assert answer.headers["www-authenticate"].startswith("Bearer")
    reader = identity.headers("summaries.read")
    outcome(httpx.post(f"{api}/v1/census", json={"group": "g1"}, headers=reader, timeout=30), 403)
    outcome(httpx.get(f"{api}/v1/census/anything", timeout=30), 401)
    writer = identity.headers("summaries.write")
    outcome(httpx.get(f"{api}/v1/census/anything", headers=writer, timeout=30), 403)
    assert censuses() == before


@pytest.mark.parametrize(
    ("census_id", "status"),
    [("0b0e3c1e-0000-4000-8000-000000000000", 404), ("..%2Fsummaries", 404), ("x" * 37, 422)],
)
def test_an_unknown_or_malformed_census_id(
    api: str, auth: dict[str, str], census_id: str, status: int
) -> None:
    outcome(httpx.get(f"{api}/v1/census/{census_id}", headers=auth, timeout=30), status)


def test_a_listed_census_is_recorded_at_once_with_its_members(api: str, auth: dict[str, str]) -> None:
    body = {
        "patients": ["p-a", "Patient/p-b", "p-a"],
        "kinds": ["triage", "progress", "triage"],
        "run": "x-1",
    }
    answer = httpx.post(f"{api}/v1/census", json=body, headers=auth, timeout=30)
    assert answer.status_code == 202, answer.text
    got = answer.json()
    assert (got["source"], got["resolved_by"], got["total"]) == ("ids", "list", 2)
    assert got["kinds"] == ["triage", "progress"] and got["run"] == "x-1"
    assert got["status"] == "running" and got["pending"] + got["queued"] + got["running"] + got["failed"] == 2
    again = httpx.get(f"{api}/v1/census/{got['id']}", headers=auth, timeout=30)
    assert again.status_code == 200 and again.json()["id"] == got["id"]
