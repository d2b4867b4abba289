"""Imports go one way: API/CLI → workers → fhir_adapters → clinical_notes → services.core; no cycles."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("clinical_notes", "fhir_adapters", "workers", "services")


def modules() -> dict[str, set[str]]:
    """Every module of ours → the modules of ours it imports (at the top or inside functions)."""
    graph: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            found: set[str] = set()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    found.add(node.module)
                    found.update(f"{node.module}.{alias.name}" for alias in node.names)
                elif isinstance(node, ast.Import):
                    found.update(alias.name for alias in node.names)
            graph[name] = found
    return {name: {m for m in found if m in graph} for name, found in graph.items()}


def imported_by(package: str) -> set[str]:
    """Every module (ours or third-party, top-level name) a package's modules import."""
    names: set[str] = set()
    for path in (REPO / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
    return names


def test_the_note_domain_imports_no_fhir_models_celery_web_or_database() -> None:
    forbidden = ("fhir", "celery", "fastapi", "starlette", "sqlmodel", "sqlalchemy", "httpx", "redis")
    ours = ("fhir_adapters", "workers", "services")
    for name in imported_by("clinical_notes"):
        assert not name.startswith(forbidden), name
        assert not name.startswith(ours) or name.startswith("services.core"), name


def test_fhir_adapters_import_no_workers_web_or_stores() -> None:
    for name in imported_by("fhir_adapters"):
        assert not name.startswith(("workers", "celery", "fastapi", "sqlmodel")), name
        assert not name.startswith("services") or name.startswith("services.core"), name


def test_the_kernel_imports_nothing_of_ours() -> None:
    for name in imported_by("services/core"):
        assert not name.startswith(("clinical_notes", "fhir_adapters", "workers")), name
        assert not name.startswith("services") or name.startswith("services.core"), name


def test_no_import_cycles() -> None:
    graph = modules()
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError(" -> ".join([*path[path.index(nxt) :], nxt]))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
