"""FHIR ids and references from outside, parsed in one place before any of them reaches a URL.

A FHIR id is 1-64 of A-Z a-z 0-9 - . (but not "." or "..", which a URL would read as a path step); a
reference is `Type/id` (a `/_history/v` tail is dropped) with a resource type this FHIR version defines, or
an absolute URL of that form under the configured server's base. Anything else is an InputError.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache

import httpx
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource

from services.core.errors import InputError

_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")
_RELATIVE = re.compile(r"(?P<type>[^/]+)/(?P<id>[^/]+)(?:/_history/(?P<version>[^/]+))?")
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Reference:
    """A checked `Type/id`."""

    type: str
    id: str

    def __str__(self) -> str:
        return f"{self.type}/{self.id}"


def is_fhir_id(value: object) -> bool:
    """Whether `value` is a FHIR id that is safe as one URL path segment."""
    return isinstance(value, str) and bool(_ID.fullmatch(value)) and value not in (".", "..")


def fhir_id(value: object, what: str = "id") -> str:
    """`value` if it is a FHIR id; InputError otherwise."""
    if not is_fhir_id(value):
        raise InputError(f"{what} must be a FHIR id (1-64 of A-Z a-z 0-9 - ., not . or ..)")
    assert isinstance(value, str)
    return value


def id_of(value: object, resource: str, what: str) -> str:
    """The id of a resource of one type, given as `123` or `Type/123`; InputError otherwise."""
    if isinstance(value, str) and "/" in value:
        return parse_reference(value, types=(resource,), what=what).id
    return fhir_id(value, what)


@lru_cache(maxsize=512)
def is_resource_type(name: str) -> bool:
    """Whether `name` is a resource type of FHIR R4 (as fhir.resources knows them)."""
    if not _TYPE.fullmatch(name):
        return False
    try:
        model = get_fhir_model_class(name)
    except (ValueError, KeyError):
        return False
    return issubclass(model, Resource)


def resource_type(value: object, what: str = "resource type") -> str:
    """`value` if it is a known resource type; InputError otherwise."""
    if not isinstance(value, str) or not is_resource_type(value):
        raise InputError(f"{what} is not a FHIR resource type")
    return value


def origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """Scheme, host and port (the default port filled in) of a URL."""
    return url.scheme, url.host, url.port or DEFAULT_PORTS.get(url.scheme)


def within_base(url: httpx.URL, base: httpx.URL) -> bool:
    """Whether an absolute URL lies under the base URL: same origin, path below the base path."""
    prefix = base.path.rstrip("/") + "/"
    return origin(url) == origin(base) and (url.path + "/").startswith(prefix)


def parse_reference(
    value: object,
    *,
    base_url: str | None = None,
    types: Collection[str] | None = None,
    what: str = "reference",
) -> Reference:
    """A `Type/id` reference, or an absolute one under `base_url`, of one of `types` (any when None)."""
    if not isinstance(value, str) or not value or len(value) > 1024:
        raise InputError(f"{what} must be a FHIR reference Type/id")
    relative = value
    if "://" in value:
        relative = _under_base(value, base_url, what)
    match = _RELATIVE.fullmatch(relative)
    if match is None:
        raise InputError(f"{what} must be a FHIR reference Type/id")
    ref = Reference(resource_type(match["type"], what), fhir_id(match["id"], what))
    if match["version"] is not None:
        fhir_id(match["version"], f"{what} version")
    if types is not None and ref.type not in types:
        raise InputError(f"{what} must refer to {' or '.join(sorted(types))}")
    return ref


def _under_base(value: str, base_url: str | None, what: str) -> str:
    """The part of an absolute URL after the base, when the URL is the configured server's."""
    if base_url is None:
        raise InputError(f"{what}: absolute references are not accepted here")
    try:
        url, base = httpx.URL(value), httpx.URL(base_url)
    except httpx.InvalidURL as exc:
        raise InputError(f"{what} is not a valid URL") from exc
    if url.query or url.fragment or not within_base(url, base):
        raise InputError(f"{what} is not on the configured FHIR server")
    # The raw path keeps %2F as it was sent, so an encoded slash cannot pass for a path step.
    raw = url.raw_path.decode("ascii")
    return raw[len(base.raw_path.decode("ascii").rstrip("/")) + 1 :]
