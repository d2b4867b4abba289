"""Routing a note to a LoRA adapter, a language and a triage scale by its kind and the encounter's
department."""

from __future__ import annotations

import pytest

from fhir_adapters.departments import departments
from fhir_adapters.record import record_from_bundle_json
from services.core.errors import ConfigError
from services.core.settings import AdapterRoute, Settings, get_settings
from workers.pipeline import Pipeline
from workers.routing import adapter_for, language_for, scale_for

ROUTES = [
    AdapterRoute(adapter="triage-notes", kinds=["triage"]),
    AdapterRoute(adapter="cardio-notes", departments=["Cardiology"]),
    AdapterRoute(adapter="cardio-soap", kinds=["soap"], departments=["cardiology"]),
]


def test_first_matching_route_wins_else_the_base_model() -> None:
    settings = Settings(llm_adapters=ROUTES)
    assert adapter_for(settings, "triage", ["Cardiology"]) == "triage-notes"
    assert adapter_for(settings, "soap", ["CARDIOLOGY"]) == "cardio-notes"
    assert adapter_for(settings, "progress", ["Ward 3", "cardiology"]) == "cardio-notes"
    assert adapter_for(settings, "progress", ["Dermatology"]) is None
    assert adapter_for(settings, "progress", []) is None
    assert adapter_for(Settings(), "triage", ["Cardiology"]) is None


def test_language_by_department_else_the_deployment() -> None:
    settings = Settings(note_language="en", department_languages={"Cardiologie": "fr"})
    assert language_for(settings, ["cardiologie"]) == "fr"
    assert language_for(settings, ["Cardiology"]) == "en"
    assert language_for(Settings(note_language="fr"), []) == "fr"


def test_triage_scale_by_department_else_the_hospital_s() -> None:
    settings = Settings(triage_scale="ctas", department_triage_scales={"Urgences pédiatriques": "esi"})
    assert scale_for(settings, ["Ward 3", "URGENCES PÉDIATRIQUES"]) == "esi"
    assert scale_for(settings, ["Emergency"]) == "ctas"
    assert scale_for(Settings(), []) == "esi"


def test_triage_scale_is_read_from_the_environment_and_a_wrong_one_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EHRSUM_TRIAGE_SCALE", "ktas")
    monkeypatch.setenv("EHRSUM_DEPARTMENT_TRIAGE_SCALES", '{"Pediatric ED": "ctas"}')
    get_settings.cache_clear()
    try:
        settings = get_settings()
        assert settings.triage_scale == "ktas" and settings.department_triage_scales == {
            "Pediatric ED": "ctas"
        }
        monkeypatch.setenv("EHRSUM_TRIAGE_SCALE", "mts")
        get_settings.cache_clear()
        with pytest.raises(ConfigError, match="EHRSUM_TRIAGE_SCALE: Input should be 'esi', 'ctas' or 'ktas'"):
            get_settings()
    finally:
        get_settings.cache_clear()


def test_departments_come_from_the_latest_encounter() -> None:
    def encounter(eid: str, start: str, **extra: object) -> dict[str, object]:
        return {
            "resourceType": "Encounter",
            "id": eid,
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": {"reference": "Patient/p"},
            "period": {"start": start},
            **extra,
        }

    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": {"resourceType": "Patient", "id": "p"}},
            {"resource": encounter("old", "2020-01-01", serviceType={"text": "Dermatology"})},
            {
                "resource": encounter(
                    "new",
                    "2024-05-01",
                    serviceType={"coding": [{"code": "394579002", "display": "Cardiology"}]},
                    location=[{"location": {"display": "Ward 3"}}],
                )
            },
        ],
    }
    assert departments(record_from_bundle_json(bundle)) == ["Cardiology", "394579002", "Ward 3"]


def test_a_route_naming_an_unknown_kind_is_a_config_error() -> None:
    settings = Settings(llm_adapters=[AdapterRoute(adapter="x", kinds=["discharge", "soap"])])
    with pytest.raises(ConfigError, match="route to x names unknown note kinds discharge"):
        Pipeline(settings, llm=None)  # type: ignore[arg-type]
