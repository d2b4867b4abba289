"""Paging in every form servers use, in front of each real server: link styles, no total, stale tokens."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fhir_adapters.client import FhirClient
from services.core.errors import FhirError
from tests.support.fault_proxy import FaultProxy

pytestmark = pytest.mark.integration
Server = tuple[str, str, list[str]]
Paging = tuple[FaultProxy, dict[str, str]]


@pytest.fixture
def paging(any_fhir: Server) -> Iterator[Paging]:
    _, url, patients = any_fhir
    proxy = FaultProxy(url).start()
    yield proxy, {"subject": f"Patient/{patients[0]}", "_count": "150"}
    proxy.stop()


async def _ids(url: str, params: dict[str, str]) -> list[str]:
    async with FhirClient(url) as client:
        return [r["id"] async for r in client.search("Observation", params)]


@pytest.mark.parametrize("links", ["relative", "rooted", "getpages"])
async def test_every_link_form_reaches_every_page(paging: Paging, links: str) -> None:
    proxy, params = paging
    absolute = await _ids(proxy.url, params)
    proxy.links, proxy.drop_total = links, True
    proxy.seen.clear()
    reshaped = await _ids(proxy.url, params)
    assert len(proxy.seen) > 2, "the record should span several pages"
    assert sorted(reshaped) == sorted(absolute) and len(set(absolute)) == len(absolute)
    if links == "getpages":
        assert all("_getpages=" in path for path in proxy.seen[1:])


async def test_a_stale_page_token_restarts_the_search_once(paging: Paging) -> None:
    proxy, params = paging
    expected = await _ids(proxy.url, params)
    proxy.links, proxy.expire = "getpages", 1
    proxy.seen.clear()
    found = await _ids(proxy.url, params)
    assert sorted(found) == sorted(expected)
    first_pages = [path for path in proxy.seen if "_getpages" not in path]
    assert len(first_pages) == 2, "one restart from the first page"


async def test_a_token_stale_twice_fails_clearly(paging: Paging) -> None:
    proxy, params = paging
    proxy.links, proxy.expire = "getpages", 2
    with pytest.raises(FhirError, match="page token expired: Observation"):
        await _ids(proxy.url, params)
