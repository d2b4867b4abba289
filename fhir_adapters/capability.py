"""What a FHIR server declares in its CapabilityStatement, read once per server and cached."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from fhir_adapters.client import FhirClient
from services.core.errors import FhirError, FhirUnavailable

log = logging.getLogger(__name__)

BACKPORT_TOPIC_EXT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/capabilitystatement-subscriptiontopic-canonical"
EVERYTHING_DEFINITION = "http://hl7.org/fhir/OperationDefinition/Patient-everything"


@dataclass(frozen=True)
class Capabilities:
    """The parts of a CapabilityStatement that decide how we fetch, page, poll and subscribe."""

    declared: bool
    software: str = "unknown"
    everything: bool = False
    search_params: dict[str, frozenset[str]] = field(default_factory=dict)
    common_params: frozenset[str] = frozenset()
    subscriptions: bool = False
    channel_types: frozenset[str] = frozenset()
    topics: frozenset[str] = frozenset()

    def searchable(self, resource_type: str) -> bool:
        """Whether the server declares a search on the type (any type when it declared nothing)."""
        return not self.declared or resource_type in self.search_params

    def supports_param(self, resource_type: str, name: str) -> bool:
        """Whether a search parameter is declared for the type or for all (assumed when nothing is)."""
        if not self.declared:
            return True
        return name in self.common_params or name in self.search_params.get(resource_type, frozenset())

    def patient_param(self, resource_type: str) -> str | None:
        """The parameter that finds a type's resources by patient: `subject` where declared, else `patient`.

        `patient` is defined as `subject.where(resolve() is Patient)` on most types; a server that evaluates
        it per resource (Medplum's router) answers it ~40 times slower than the plain `subject` reference.
        """
        if not self.searchable(resource_type):
            return None
        for name in ("subject", "patient"):
            if self.declared and self.supports_param(resource_type, name):
                return name
        return None if self.declared else "patient"

    def subscribable(self, wanted: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The wanted Subscriptions the server supports: rest-hook criteria, the Backport topics it lists."""
        if not self.declared:
            return wanted
        if not self.subscriptions:
            return []
        # A Backport subscription's criteria is its topic's canonical URL; a rest-hook's is a search.
        return [
            s
            for s in wanted
            if not str(s.get("criteria")).startswith("http") or s.get("criteria") in self.topics
        ]

    def fetch_plan(self) -> str:
        """`$everything` when declared (or when nothing is declared, then tried), else `search`."""
        return "$everything" if self.everything or not self.declared else "search"


def parse_capabilities(statement: dict[str, Any]) -> Capabilities:
    """The Capabilities of a CapabilityStatement resource."""
    if statement.get("resourceType") != "CapabilityStatement":
        return Capabilities(declared=False)
    rests = [r for r in statement.get("rest") or [] if r.get("mode", "server") == "server"]
    rest: dict[str, Any] = rests[0] if rests else {}
    params: dict[str, frozenset[str]] = {}
    everything = any(_is_everything(op) for op in rest.get("operation") or [])
    channels: set[str] = set()
    topics: set[str] = set()
    subscriptions = False
    for resource in rest.get("resource") or []:
        type_name = str(resource.get("type", ""))
        codes = {i.get("code") for i in resource.get("interaction") or []}
        if "search-type" in codes:
            params[type_name] = frozenset(str(p.get("name")) for p in resource.get("searchParam") or [])
        if type_name == "Patient" and any(_is_everything(op) for op in resource.get("operation") or []):
            everything = True
        if type_name == "Subscription" and "create" in codes:
            subscriptions = True
            topics.update(_extension_values(resource, BACKPORT_TOPIC_EXT))
            channels.update(_channel_types(resource))
    software = statement.get("software") or {}
    name = " ".join(str(software[k]) for k in ("name", "version") if software.get(k)) or "unknown"
    return Capabilities(
        declared=True,
        software=name[:120],
        everything=everything,
        search_params=params,
        common_params=frozenset(str(p.get("name")) for p in rest.get("searchParam") or []),
        subscriptions=subscriptions,
        channel_types=frozenset(channels),
        topics=frozenset(topics),
    )


def _is_everything(operation: dict[str, Any]) -> bool:
    definition = str(operation.get("definition") or "")
    named = operation.get("name") in ("everything", "$everything")
    return named or definition.startswith(EVERYTHING_DEFINITION)


def _extension_values(element: dict[str, Any], url: str) -> set[str]:
    return {v for ext in element.get("extension") or [] if ext.get("url") == url for v in _values(ext)}


def _channel_types(resource: dict[str, Any]) -> set[str]:
    # R4 has no element for it: servers that say name channel types in an extension or the documentation.
    named = [ext for ext in resource.get("extension") or [] if "channel" in str(ext.get("url"))]
    found = {v for ext in named for v in _values(ext)}
    text = str(resource.get("documentation") or "").lower()
    return found | {c for c in ("rest-hook", "websocket", "email", "message") if c in text}


def _values(extension: dict[str, Any]) -> set[str]:
    return {str(v) for k, v in extension.items() if k.startswith("value")}


_cache: dict[str, Capabilities] = {}
_locks: dict[str, asyncio.Lock] = {}


async def capabilities(client: FhirClient) -> Capabilities:
    """The server's Capabilities, read at the first call for its base URL and kept for the process."""
    base = client.base_url
    if base in _cache:
        return _cache[base]
    async with _locks.setdefault(base, asyncio.Lock()):
        if base not in _cache:
            _cache[base] = await _read(client)
    return _cache[base]


async def _read(client: FhirClient) -> Capabilities:
    try:
        found = parse_capabilities(await client.capability())
    except FhirUnavailable:
        raise
    except FhirError as exc:
        log.info("no CapabilityStatement (%s); trying $everything, then searches", exc.status)
        return Capabilities(declared=False)
    plan = found.fetch_plan() if found.declared else "unknown"
    log.info(
        "FHIR server %s: fetch by %s, %d searchable types, _lastUpdated %s, subscriptions %s, topics %d",
        found.software,
        plan,
        len(found.search_params),
        "for all" if "_lastUpdated" in found.common_params else "per type",
        "yes" if found.subscriptions else "no",
        len(found.topics),
    )
    return found


def forget(base_url: str | None = None) -> None:
    """Drop the cached statement of one server (or of all): after a server upgrade, or in tests."""
    if base_url is None:
        _cache.clear()
    else:
        _cache.pop(base_url.rstrip("/") + "/", None)
