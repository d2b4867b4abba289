"""Fuzz fixtures: the real API's OpenAPI schema, loaded with a valid token."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis

from tests.conftest import NOTIFICATION_SECRET


@pytest.fixture(scope="session")
def api_headers(auth: dict[str, str]) -> dict[str, str]:
    """A token with every scope, plus the notification secret so webhook bodies get parsed."""
    return {**auth, "X-Ehrsum-Secret": NOTIFICATION_SECRET}


@pytest.fixture(scope="session")
def api_schema(api: str, api_headers: dict[str, str]) -> Any:
    """The OpenAPI schema the running API serves."""
    return schemathesis.openapi.from_url(f"{api}/openapi.json", headers=api_headers)
