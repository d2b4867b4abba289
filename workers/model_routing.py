"""Per note: which served model writes it (a LoRA adapter or the base) and in which language."""

from __future__ import annotations

from clinical_notes.kinds import KINDS
from services.core.errors import ConfigError
from services.core.settings import Language, Settings


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


def language_for(settings: Settings, departments: list[str]) -> Language:
    """The department's language when one is configured for it, else the deployment's."""
    by_department = {name.casefold(): language for name, language in settings.department_languages.items()}
    for department in departments:
        if department.casefold() in by_department:
            return by_department[department.casefold()]
    return settings.note_language


def check_routes(settings: Settings) -> None:
    """ConfigError naming an adapter route's unknown note kind (it would never match)."""
    for route in settings.llm_adapters:
        unknown = sorted(set(route.kinds) - set(KINDS))
        if unknown:
            raise ConfigError(
                f"EHRSUM_LLM_ADAPTERS: route to {route.adapter} names unknown note kinds "
                f"{', '.join(unknown)} (known: {', '.join(sorted(KINDS))})"
            )
