"""The boundary: raw FHIR JSON → validated fhir.resources (R4B) models, with references normalized."""

from __future__ import annotations

import copy
import logging
import re
from dataclasses import dataclass, field
from typing import Any, cast

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError

log = logging.getLogger(__name__)

_ABSOLUTE_REF = re.compile(
    r"^https?://.+/(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(/_history/[^/]+)?$"
)
_MAX_REPAIRS = 5


@dataclass
class ParsedResources:
    """Validated resources keyed by "Type/id", plus what could not be used."""

    resources: dict[str, Resource] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)


def ref_of(resource: dict[str, Any] | Resource) -> str:
    """The "Type/id" reference of a resource."""
    if isinstance(resource, dict):
        return f"{resource.get('resourceType')}/{resource.get('id')}"
    return f"{resource.get_resource_type()}/{resource.id}"


def normalize_reference(reference: str, aliases: dict[str, str]) -> str:
    """Rewrite urn:uuid and absolute references to "Type/id"."""
    if reference in aliases:
        return aliases[reference]
    match = _ABSOLUTE_REF.match(reference)
    if match:
        return f"{match['type']}/{match['id']}"
    return reference.split("/_history/")[0]


def rewrite_references(node: Any, aliases: dict[str, str]) -> Any:
    """Walk a JSON tree and normalize every Reference.reference in place."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                node[key] = normalize_reference(value, aliases)
            else:
                rewrite_references(value, aliases)
    elif isinstance(node, list):
        for item in node:
            rewrite_references(item, aliases)
    return node


def preload_models(resource_types: frozenset[str]) -> None:
    """Import the model classes of these resource types now rather than during the first parse."""
    for resource_type in resource_types:
        get_fhir_model_class(resource_type)


def parse_resource(raw: dict[str, Any]) -> Resource:
    """Validate one resource as R4B, dropping elements the model does not know (and only those)."""
    resource_type = raw.get("resourceType")
    if not isinstance(resource_type, str):
        raise ValueError("no resourceType")
    try:
        model = get_fhir_model_class(resource_type)
    except KeyError as exc:
        raise ValueError(f"unknown resourceType {resource_type}") from exc
    data = raw
    for _ in range(_MAX_REPAIRS):
        try:
            return cast(Resource, model.model_validate(data))
        except ValidationError as exc:
            unknown = [err["loc"] for err in exc.errors() if err["type"] == "extra_forbidden"]
            if not unknown:
                raise ValueError(f"{len(exc.errors())} validation errors") from exc
            data = _without_paths(data, unknown)
    raise ValueError("too many unknown elements")


def _without_paths(data: dict[str, Any], paths: list[tuple[int | str, ...]]) -> dict[str, Any]:
    clean = copy.deepcopy(data)
    for path in paths:
        node: Any = clean
        for step in path[:-1]:
            try:
                node = node[step]
            except (KeyError, IndexError, TypeError):
                node = None
                break
        if isinstance(node, dict):
            node.pop(str(path[-1]), None)
    return clean


def parse_all(
    raw_resources: list[dict[str, Any]],
    aliases: dict[str, str] | None = None,
    *,
    types: frozenset[str] | None = None,
) -> ParsedResources:
    """Normalize references, validate, de-duplicate by "Type/id" (latest version wins); only `types`."""
    parsed = ParsedResources()
    versions: dict[str, tuple[str, str]] = {}
    for raw in raw_resources:
        if types is not None and raw.get("resourceType") not in types:
            continue
        ref = ref_of(raw)
        rewrite_references(raw, aliases or {})
        meta = raw.get("meta") or {}
        version = (str(meta.get("lastUpdated", "")), str(meta.get("versionId", "")).zfill(12))
        if ref in versions and versions[ref] >= version:
            continue
        try:
            parsed.resources[ref] = parse_resource(raw)
        except ValueError as exc:
            parsed.rejected[ref] = str(exc)
            log.warning("resource rejected at the boundary: %s (%s)", ref, exc)
            continue
        parsed.rejected.pop(ref, None)
        versions[ref] = version
    return parsed
