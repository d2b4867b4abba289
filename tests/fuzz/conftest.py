"""Fuzz fixtures: an API process of its own, its schema, and a token and secret that get bodies parsed.

The fuzzers make thousands of requests, many of which queue work (jobs, debounce flushes, gap recovery).
Their API publishes to a Redis db no worker consumes, so that work never delays the session's worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis

from tests.conftest import NOTIFICATION_SECRET, REDIS_URL, start_api
from tests.support.identity import IdentityProvider
from tests.support.redis_db import MAIN_SESSION_DBS, claim_redis_db


@pytest.fixture(scope="session")
def fuzz_api(
    stack: dict[str, str], identity: IdentityProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The real API (`ehrsum api`) publishing to a broker db of its own."""
    import redis

    broker = claim_redis_db(REDIS_URL, MAIN_SESSION_DBS)
    redis.Redis.from_url(broker).flushdb()
    proc, url = start_api(tmp_path_factory.mktemp("fuzz-api") / "api.log", EHRSUM_BROKER_URL=broker)
    yield url
    proc.terminate()
    proc.wait(timeout=20)
    redis.Redis.from_url(broker).flushdb()


@pytest.fixture(scope="session")
def api_headers(auth: dict[str, str]) -> dict[str, str]:
    """A token with every scope, plus the notification secret so webhook bodies get parsed."""
    return {**auth, "X-Ehrsum-Secret": NOTIFICATION_SECRET}


@pytest.fixture(scope="session")
def api_schema(fuzz_api: str, api_headers: dict[str, str]) -> Any:
    """The OpenAPI schema the running API serves."""
    return schemathesis.openapi.from_url(f"{fuzz_api}/openapi.json", headers=api_headers)
