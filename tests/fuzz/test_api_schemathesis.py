"""Schemathesis against the real API process: no generated request gets a 5xx or kills the process."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

EXAMPLES_PER_OPERATION = 60


def test_no_server_errors(api: str, api_schema: Any, api_headers: dict[str, str]) -> None:
    # Schemathesis's pytest plugin does not load under this pytest (Function._nodeid), so each operation
    # runs as its own hypothesis test built from the operation's strategy: same generation, same check.
    statuses: Counter[str] = Counter()
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    for operation in operations:

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            response = case.call(headers=api_headers, timeout=30)
            statuses[f"{case.method} {case.path} {response.status_code // 100}xx"] += 1
            case.validate_response(response, checks=[not_a_server_error])

        try:
            check()
        except Exception as exc:  # keep going: report every operation that fails, not just the first
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:400]}")
    total = sum(statuses.values())
    print(f"\nschemathesis: {len(operations)} operations, {total} requests")
    for key, count in sorted(statuses.items()):
        print(f"  {key}: {count}")
    assert not failures, "\n".join(failures)
    assert total >= len(operations)
    assert httpx.get(f"{api}/healthz", timeout=10).status_code == 200, "the API process died"


NUL_CASES = [
    ("GET", "/v1/drafts?patient=%00", None),
    ("GET", "/v1/summaries/%00", None),
    ("POST", "/v1/summaries", {"patient": "a\u0000b", "kinds": ["progress"]}),
]


@pytest.mark.parametrize(("method", "path", "body"), NUL_CASES)
def test_nul_bytes_are_client_errors(
    api: str, api_headers: dict[str, str], method: str, path: str, body: Any
) -> None:
    # Found by schemathesis (NUL reached Postgres: 500); fixed in 7f57c92, kept as a regression test.
    response = httpx.request(method, f"{api}{path}", json=body, headers=api_headers, timeout=30)
    assert 400 <= response.status_code < 500, response.text
