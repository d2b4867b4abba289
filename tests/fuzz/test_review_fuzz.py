"""Schemathesis and hypothesis against the review app's routes (/review), signed in as a clinician.

The review routes are not in the API's OpenAPI (a browser's pages, not an API): their document is built here
from the same routes, as FastAPI would publish them. A real `ehrsum api` serves them, signed in through the
SMART EHR of the tests (deploy/smart_dev_server.py), so requests reach the form parsing, the compartment
checks and the FHIR server; no generated request, valid or not, may answer 5xx or kill the process, and no
draft may be decided by one.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
import schemathesis
from fastapi.openapi.utils import get_openapi
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from starlette.routing import Route

from deploy.processes import stop
from deploy.smart_dev_server import SmartEhr
from fhir_adapters.compartment import _wanted, of_patient
from services.review.app import router
from services.review.sessions import COOKIE
from tests.conftest import free_port, start_api_on
from tests.fuzz.operations import fuzz_operations
from tests.support.review_records import ReviewRecord, seeded_ehr

CLIENT_ID = "ehrsum-review-fuzz"
CLINICIAN = "Practitioner/dr-fuzz"
EXAMPLES = 15
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@dataclass
class SignedIn:
    """The review app, the EHR behind it, a clinician's session and its form token, the seeded record."""

    app: str
    ehr: SmartEhr
    sid: str
    csrf: str
    record: ReviewRecord

    def headers(self) -> dict[str, str]:
        """The session cookie (every request is a signed-in clinician's)."""
        return {"Cookie": f"{COOKIE}={self.sid}"}


@pytest.fixture(scope="module")
def signed_in(
    postgres_db: str, redis_broker: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SignedIn]:
    """The app behind a SMART EHR, launched for the seeded patient as a browser would (redirects followed)."""
    port = free_port()
    app = f"http://127.0.0.1:{port}"
    workdir = tmp_path_factory.mktemp("fuzz-ehr")
    roles = ["fuzzed", "foreign"]
    ehr, record = seeded_ehr(workdir, free_port(), client_id=CLIENT_ID, app=app, user=CLINICIAN, roles=roles)
    proc, _ = start_api_on(
        tmp_path_factory.mktemp("fuzz-review-api") / "api.log",
        port,
        EHRSUM_FHIR_BASE_URL=ehr.fhir_base,
        EHRSUM_REVIEW_CLIENT_ID=CLIENT_ID,
        EHRSUM_REVIEW_URL=app,
        EHRSUM_REVIEW_LAUNCHES_PER_MINUTE="1000",
    )
    try:
        launch = ehr.launch(record.patient)
        with httpx.Client(follow_redirects=True, timeout=30) as browser:
            page = browser.get(f"{app}/review/launch?iss={quote(ehr.fhir_base, safe='')}&launch={launch}")
            token = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert page.status_code == 200 and token is not None, page.text[:500]
            yield SignedIn(app, ehr, str(browser.cookies[COOKIE]), token[1], record)
    finally:
        stop(proc)
        ehr.stop()


def review_schema() -> dict[str, Any]:
    """The OpenAPI document FastAPI would publish for the review routes, were they in the schema (but the
    drafts page, whose one parameter only picks a notice, and which re-reads and re-checks every draft)."""
    routes = []
    for route in router.routes:
        if isinstance(route, Route) and route.path != "/review/":
            shown = copy.copy(route)
            shown.include_in_schema = True
            routes.append(shown)
    return get_openapi(title="review", version="1", routes=routes)


def _undecided(signed_in: SignedIn) -> None:
    headers = {"Authorization": f"Bearer {signed_in.ehr.setup_token}"}
    for ref in signed_in.record.drafts.values():
        doc = httpx.get(f"{signed_in.ehr.fhir_base}/{ref}", headers=headers, timeout=10).json()
        assert doc["status"] == "current" and doc["docStatus"] == "preliminary", ref


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_review_routes_have_no_server_errors(signed_in: SignedIn, mode: GenerationMode) -> None:
    """Every review operation, with requests that fit it and that break it; the real form token half the
    time, so bodies get past it to the compartment checks."""
    schema: Any = schemathesis.openapi.from_dict(review_schema())
    schema.config.update(base_url=signed_in.app)
    paths = {result.ok().path for result in schema.get_all_operations()}
    assert paths >= {"/review/evidence", "/review/drafts/{draft_id}/{decision}"}

    def real_token(case: Any, coin: bool) -> None:
        if coin and isinstance(case.body, dict) and "csrf" in case.body:
            case.body["csrf"] = signed_in.csrf

    statuses, failures, _ = fuzz_operations(schema, mode, FUZZ, signed_in.headers(), real_token)
    print(f"\nschemathesis review {mode.value}: {sum(statuses.values())} requests")
    for key, count in sorted(statuses.items()):
        print(f"  {key}: {count}")
    assert not failures, "\n".join(failures)
    assert httpx.get(f"{signed_in.app}/healthz", timeout=10).status_code == 200
    _undecided(signed_in)


form_values = st.one_of(
    st.text(max_size=50),
    st.sampled_from(["", 'W/"1"', "../..", "a\x00b", "é" * 200, "x" * 5000, "<script>x</script>"]),
)
form_keys = st.one_of(
    st.sampled_from(["csrf", "version", "reason", "override_reason", "remove", "ref", "fragment"]),
    st.from_regex(r"sections\[-?[0-9]{1,3}\]\.statements\[-?[0-9]{1,3}\]", fullmatch=True),
    st.text(max_size=30),
)


def test_review_forms_never_answer_5xx(signed_in: SignedIn) -> None:
    """Hypothesis: arbitrary forms (repeated keys, statement locations, odd and huge values, raw bytes, the
    wrong media type) to every review POST, with the real form token or without: 2xx/3xx/4xx only."""
    draft_id = signed_in.record.drafts["fuzzed"].split("/")[1]
    foreign = signed_in.record.refs["other"]
    paths = [
        "/review/evidence",
        f"/review/drafts/{draft_id}/edit",
        f"/review/drafts/{draft_id}/approve",
        f"/review/drafts/{draft_id}/reject",
        "/review/drafts/..%2F..%2Fx/approve",
        "/review/drafts/x/edit",
    ]
    statuses: Counter[int] = Counter()
    with httpx.Client(base_url=signed_in.app, headers=signed_in.headers(), timeout=30) as client:

        @settings(
            max_examples=100,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(
            path=st.sampled_from(paths),
            fields=st.lists(st.tuples(form_keys, form_values), max_size=12),
            real_token=st.booleans(),
            ref=st.sampled_from(
                [foreign, "Observation/..", "Patient/x", signed_in.record.refs["a1c"], "x" * 300]
            ),
            raw=st.one_of(st.none(), st.binary(max_size=300)),
            media=st.sampled_from(
                ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json"]
            ),
        )
        def post(
            path: str,
            fields: list[tuple[str, str]],
            real_token: bool,
            ref: str,
            raw: bytes | None,
            media: str,
        ) -> None:
            sent = [*fields, ("ref", ref), *([("csrf", signed_in.csrf)] if real_token else [])]
            body = raw if raw is not None else urlencode(sent).encode()
            answer = client.post(path, content=body, headers={"Content-Type": media})
            statuses[answer.status_code] += 1
            assert answer.status_code < 500, (path, body[:200], answer.text[:300])
            assert "Troponin" not in answer.text  # another patient's result never shows

        post()
    print(f"\nreview forms: {sum(statuses.values())} requests: {dict(sorted(statuses.items()))}")
    assert httpx.get(f"{signed_in.app}/healthz", timeout=10).status_code == 200
    _undecided(signed_in)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=20,
)


@settings(max_examples=200, derandomize=True, deadline=None, database=None)
@given(
    resource=st.fixed_dictionaries(
        {"resourceType": st.sampled_from(["Observation", "Patient", "Condition", "Group"])},
        optional={
            "id": st.one_of(st.just("p1"), json_values),
            "subject": st.one_of(
                st.fixed_dictionaries({"reference": st.one_of(st.just("Patient/p1"), json_values)}),
                json_values,
            ),
            "patient": json_values,
        },
    )
)
def test_only_a_resource_that_names_the_patient_is_theirs(resource: dict[str, Any]) -> None:
    """Hypothesis: whatever the shape, a resource is the patient's only when it names them; never a crash."""
    mine = of_patient(resource, "p1")
    if mine:
        names = resource.get("id") if resource["resourceType"] == "Patient" else None
        subject = resource.get("subject")
        assert (
            names == "p1"
            or (isinstance(subject, dict) and subject.get("reference") == "Patient/p1")
            or (
                isinstance(resource.get("patient"), dict)
                and resource["patient"].get("reference") == "Patient/p1"
            )
        )


@settings(max_examples=200, derandomize=True, deadline=None, database=None)
@given(
    refs=st.lists(
        st.one_of(st.text(max_size=40), st.from_regex(r"[A-Z][a-z]{2,12}/[a-z0-9.\-]{1,8}", fullmatch=True))
    )
)
def test_the_compartment_asks_only_for_references_it_can_scope(refs: list[str]) -> None:
    """Hypothesis: only well-formed references of compartment types (or the patient itself) are searched."""
    for type_name, ids in _wanted(refs, "p1").items():
        for rid, written in ids.items():
            assert type_name != "Patient" or rid == "p1"
            assert all(w in refs for w in written)
