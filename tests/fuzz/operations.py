"""One schemathesis run per operation of a schema, as hypothesis tests (the API's and the review app's)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

Prepare = Callable[[Any, bool], None]


def fuzz_operations(
    schema: Any,
    mode: GenerationMode,
    fuzz_settings: settings,
    headers: dict[str, str],
    prepare: Prepare | None = None,
) -> tuple[Counter[str], list[str], int]:
    """Every operation with requests that fit it (positive) or break it (negative): statuses by operation,
    the operations that answered 5xx (or failed otherwise), and how many operations there were.

    Schemathesis's pytest plugin does not load under this pytest (Function._nodeid), so each operation runs
    as its own hypothesis test built from the operation's strategy: same generation, same check. `prepare`
    may change a case before it is sent, given a coin drawn with it.
    """
    statuses: Counter[str] = Counter()
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:

        @fuzz_settings
        @given(case=operation.as_strategy(generation_mode=mode), coin=st.booleans())
        def check(case: Any, coin: bool) -> None:
            if prepare is not None:
                prepare(case, coin)
            response = case.call(headers=headers, timeout=30)
            statuses[f"{case.method} {case.path} {response.status_code // 100}xx"] += 1
            case.validate_response(response, checks=[not_a_server_error])

        try:
            check()
        except Unsatisfiable:
            # No parameters, no body: nothing about the request can be made invalid (GET /healthz).
            assert mode == GenerationMode.NEGATIVE, f"{operation.path}: no valid request could be made"
        except Exception as exc:  # keep going: report every operation that fails, not just the first
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:400]}")
    return statuses, failures, len(operations)
