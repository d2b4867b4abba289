"""The hospital's guideline library: a folder of Markdown, text and HTML documents and of FHIR PlanDefinition
and Library resources (JSON, or a Bundle of them), and the same resources read from the FHIR server.

A file that cannot be read, is larger than the limit, is not UTF-8 or is JSON of another resource type is
skipped and listed with the reason; the rest still load. A PlanDefinition's actions become its sections
(title, description, textEquivalent); a Library's text attachments are split like documents. Both are cited
as `Guideline/{id}` passages whose source names the resource.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from clinical_notes.guidelines import Library, slug, split_document
from clinical_notes.timeline import Passage
from fhir_adapters.client import FhirClient

FORMATS = {".md": "md", ".markdown": "md", ".txt": "txt", ".text": "txt", ".html": "html", ".htm": "html"}
TEXT_TYPES = {"text/markdown": "md", "text/plain": "txt", "text/html": "html"}
NOT_GUIDELINES = ("readme", "licence", "license", "labels")


def _actions(actions: list[dict[str, Any]], trail: str = "") -> Iterator[tuple[str, str]]:
    for n, action in enumerate(actions, 1):
        title = str(action.get("title") or action.get("id") or f"{trail}action {n}".strip())
        parts = [action.get("description"), action.get("textEquivalent")]
        parts += [d.get("display") for d in action.get("documentation") or [] if isinstance(d, dict)]
        text = "\n\n".join(str(p) for p in parts if p)
        if text:
            yield title, text
        yield from _actions(action.get("action") or [], f"{title} / ")


def passages_of_resource(resource: dict[str, Any]) -> list[Passage]:
    """The passages of a PlanDefinition or Library (ValueError for any other resource)."""
    type_name = resource.get("resourceType")
    if type_name not in ("PlanDefinition", "Library"):
        raise ValueError(f"a {type_name or 'JSON document'}, not a PlanDefinition or Library")
    meta = {
        "id": str(resource.get("name") or resource.get("id") or "guideline"),
        "title": str(resource.get("title") or resource.get("name") or resource.get("id") or ""),
        "version": str(resource.get("version") or resource.get("date") or "unversioned"),
        "source": f"{type_name}/{resource.get('id')}"
        if resource.get("id")
        else str(resource.get("url") or ""),
        "licence": str(resource.get("copyright") or "") or "",
    }
    if type_name == "PlanDefinition":
        body = "\n\n".join(f"## {title}\n\n{text}" for title, text in _actions(resource.get("action") or []))
        if resource.get("description"):
            body = f"## {meta['title']}\n\n{resource['description']}\n\n{body}"
        return split_document(body, meta["id"], "md", meta)
    passages = []
    for content in resource.get("content") or []:
        fmt = TEXT_TYPES.get(str(content.get("contentType", "")).split(";")[0])
        if fmt and content.get("data"):
            try:
                text = base64.b64decode(content["data"]).decode("utf-8")
            except (binascii.Error, ValueError) as exc:
                raise ValueError("an attachment that is not base64 UTF-8 text") from exc
            passages += split_document(text, meta["id"], fmt, meta)
    return passages


def _resources(data: Any) -> Iterator[dict[str, Any]]:
    if isinstance(data, dict) and data.get("resourceType") == "Bundle":
        for entry in data.get("entry") or []:
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                yield entry["resource"]
    elif isinstance(data, dict):
        yield data
    else:
        raise ValueError("not a FHIR resource")


def read_file(path: Path, max_bytes: int) -> list[Passage]:
    """The passages of one file; ValueError (the reason it is skipped) when it cannot be used."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ValueError(
                f"{size} bytes, over the {max_bytes}-byte limit (EHRSUM_GUIDELINES_MAX_FILE_BYTES)"
            )
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ValueError(f"unreadable ({exc.strerror or type(exc).__name__})") from exc
    except UnicodeDecodeError as exc:
        raise ValueError("not UTF-8 text") from exc
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"not JSON ({exc})") from exc
        return [p for resource in _resources(data) for p in passages_of_resource(resource)]
    return split_document(text, path.stem, FORMATS[suffix])


def _files(folder: Path) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(root) / name
            if name.startswith(".") or path.stem.lower().startswith(NOT_GUIDELINES):
                continue
            if path.suffix.lower() in {*FORMATS, ".json"}:
                found.append(path)
    return found


def load_library(folder: Path, max_bytes: int, extra: list[Passage] | None = None) -> Library:
    """Every passage of the folder's documents (and `extra` ones, read from the server), with what was
    skipped and why; ValueError when the folder itself cannot be read."""
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder")
    passages: list[Passage] = list(extra or [])
    skipped: list[tuple[str, str]] = []
    documents = 0
    for path in _files(folder):
        try:
            found = read_file(path, max_bytes)
        except ValueError as exc:
            skipped.append((str(path.relative_to(folder)), str(exc)))
            continue
        documents += 1
        passages += found
    unique = {p.id: p for p in passages}
    if len(unique) < len(passages):
        skipped.append(("(several)", f"{len(passages) - len(unique)} passages with a repeated id kept once"))
    return Library(list(unique.values()), skipped, documents)


@lru_cache(maxsize=4)
def _cached(folder: str, max_bytes: int, signature: tuple[tuple[str, int, int], ...]) -> Library:
    return load_library(Path(folder), max_bytes)


def library_for(folder: Path, max_bytes: int) -> Library:
    """The folder's library, built again only when a file in it changed (name, size or time)."""
    signature = (
        tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in _files(folder))
        if folder.is_dir()
        else ()
    )
    return _cached(str(folder), max_bytes, signature)


async def server_passages(client: FhirClient) -> list[Passage]:
    """The passages of the active PlanDefinitions and Libraries on the FHIR server."""
    found: list[Passage] = []
    for type_name in ("PlanDefinition", "Library"):
        async for resource in client.search(type_name, {"status": "active"}):
            try:
                found += passages_of_resource(resource)
            except ValueError:
                continue  # a Library of logic (CQL, ELM) or without text: nothing to cite
    return found


def document_ids(library: Library) -> list[str]:
    """The documents of a library, in order."""
    return list(dict.fromkeys(slug(p.document) for p in library.passages))
