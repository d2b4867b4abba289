"""FHIR Bulk Data Access 2.0 client: Group/$export kick-off, status polling, NDJSON download.

Kick-off sends `Prefer: respond-async` and expects 202 with the status URL in Content-Location; the status
URL answers 202 (with Retry-After, honoured, and X-Progress) until the manifest is ready (200). Every URL
goes through the FHIR client, so a manifest pointing at another host (a cloud bucket) is refused rather
than sent our credentials; files are fetched with the same authorization the server asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fhir_adapters.client import FhirClient, json_body, retry_after_seconds
from fhir_adapters.references import fhir_id, resource_type
from services.core.errors import FhirError, FhirNotFound

log = logging.getLogger(__name__)
NDJSON = "application/fhir+ndjson"
DEFAULT_POLL_S = 2.0


@dataclass
class ExportStats:
    """What one export cost: status polls, seconds waited, bytes and resources downloaded."""

    polls: int = 0
    waits_s: list[float] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    resources: int = 0
    seconds: float = 0.0


def declares_group_export(capability: dict[str, Any]) -> bool:
    """Whether a CapabilityStatement declares Group/$export (on the Group resource or server-wide)."""
    for rest in capability.get("rest", []):
        if rest.get("mode", "server") != "server":
            continue
        for resource in rest.get("resource", []):
            if resource.get("type") == "Group" and _has_export(resource.get("operation", [])):
                return True
        for op in rest.get("operation", []):
            if "group-export" in str(op.get("definition", "")).lower():
                return True
    return False


def _has_export(operations: list[dict[str, Any]]) -> bool:
    return any(str(op.get("name", "")).lstrip("$") == "export" for op in operations)


class BulkExport:
    """One Group export on one server, from kick-off to the downloaded files."""

    def __init__(
        self, client: FhirClient, *, max_wait_s: float = 3600.0, default_poll_s: float = DEFAULT_POLL_S
    ):
        self.client = client
        self.max_wait_s = max_wait_s
        self.default_poll_s = default_poll_s
        self.stats = ExportStats()

    async def kick_off(self, group_id: str, types: list[str], since: str | None = None) -> str:
        """Start a Group export; the status URL (FhirError when the server does not answer 202)."""
        params = {"_type": ",".join(resource_type(t, "_type") for t in types)} if types else {}
        if since:
            params["_since"] = since
        response = await self.client.request(
            "GET",
            f"Group/{fhir_id(group_id, 'group')}/$export",
            params=params,
            headers={"Accept": "application/fhir+json", "Prefer": "respond-async"},
        )
        location = response.headers.get("Content-Location")
        if response.status_code != 202 or not location:
            raise FhirError(f"Group/$export kick-off answered {response.status_code} without a status URL")
        self.client.target(location)  # refuse a status URL on another server before waiting on it
        return str(location)

    async def wait(self, status_url: str) -> dict[str, Any]:
        """Poll the status URL until the manifest is ready, waiting what Retry-After asks between polls."""
        started = time.monotonic()
        while True:
            response = await self.client.request("GET", status_url, headers={"Accept": "application/json"})
            self.stats.polls += 1
            if response.status_code == 200:
                return json_body(response, "bulk status")
            if response.status_code != 202:
                raise FhirError(f"bulk status answered {response.status_code}")
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            wait = self.default_poll_s if wait is None else wait
            if time.monotonic() - started + wait > self.max_wait_s:
                raise FhirError(f"bulk export not ready after {self.max_wait_s:.0f} s")
            log.info(
                "bulk export in progress", extra={"progress": response.headers.get("X-Progress", "")[:80]}
            )
            self.stats.waits_s.append(wait)
            await asyncio.sleep(wait)

    async def resources(self, manifest: dict[str, Any], type_name: str) -> AsyncIterator[dict[str, Any]]:
        """Every resource of one type in the manifest's output files, line by line."""
        for item in manifest.get("output", []):
            if item.get("type") != type_name or not item.get("url"):
                continue
            response = await self.client.request("GET", str(item["url"]), headers={"Accept": NDJSON})
            self.stats.files += 1
            self.stats.bytes += len(response.content)
            for number, line in enumerate(response.text.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    resource = json.loads(line)
                except ValueError as exc:
                    raise FhirError(f"bulk file of {type_name}: line {number} is not JSON") from exc
                if not isinstance(resource, dict) or resource.get("resourceType") != type_name:
                    raise FhirError(f"bulk file of {type_name}: line {number} is not a {type_name}")
                self.stats.resources += 1
                yield resource

    async def finish(self, status_url: str) -> None:
        """Tell the server we are done with the files (DELETE on the status URL); one that forgot is fine."""
        with contextlib.suppress(FhirNotFound):
            await self.client.request("DELETE", status_url)

    async def group_patients(self, group_id: str) -> list[str]:
        """The ids of a Group's patients, by exporting only its Patient resources."""
        started = time.monotonic()
        status_url = await self.kick_off(group_id, ["Patient"])
        manifest = await self.wait(status_url)
        ids = [str(r["id"]) async for r in self.resources(manifest, "Patient") if "id" in r]
        await self.finish(status_url)
        self.stats.seconds = time.monotonic() - started
        return list(dict.fromkeys(fhir_id(i, "exported Patient id") for i in ids))
