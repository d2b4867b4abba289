"""Per note: which served model writes it (a LoRA adapter or the base), in which language, in which triage
scale."""

from __future__ import annotations

from typing import TypeVar

from clinical_notes.kinds import KINDS
from services.core.errors import ConfigError
from services.core.settings import Language, Settings, TriageScale


def _known(name: str, wanted: list[str]) -> bool:
    return not wanted or name.casefold() in {w.casefold() for w in wanted}


def adapter_for(settings: Settings, kind: str, departments: list[str]) -> str | None:
    """The first adapter route matching the kind and one of the departments; None: the base model."""
    for route in settings.llm_adapters:
        if _known(kind, route.kinds) and (
            not route.departments or any(_known(d, route.departments) for d in departments)
        ):
            return route.adapter
    return None


T = TypeVar("T")


def _by_department(per_department: dict[str, T], departments: list[str], default: T) -> T:
    """The first of the departments configured in per_department (names case-insensitive), else default."""
    folded = {name.casefold(): value for name, value in per_department.items()}
    for department in departments:
        if department.casefold() in folded:
            return folded[department.casefold()]
    return default


def language_for(settings: Settings, departments: list[str]) -> Language:
    """The department's language when one is configured for it, else the deployment's."""
    return _by_department(settings.department_languages, departments, settings.note_language)


def scale_for(settings: Settings, departments: list[str]) -> TriageScale:
    """The department's triage scale when one is configured for it, else the hospital's."""
    return _by_department(settings.department_triage_scales, departments, settings.triage_scale)


def check_routes(settings: Settings) -> None:
    """ConfigError naming an adapter route's unknown note kind (it would never match)."""
    for route in settings.llm_adapters:
        unknown = sorted(set(route.kinds) - set(KINDS))
        if unknown:
            raise ConfigError(
                f"EHRSUM_LLM_ADAPTERS: route to {route.adapter} names unknown note kinds "
                f"{', '.join(unknown)} (known: {', '.join(sorted(KINDS))})"
            )
