"""`ehrsum triage` on real generated records: one JSON line per record, the rules alone."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from services.cli import main

CACHE = Path(os.environ.get("EHRSUM_CACHE", Path(__file__).resolve().parents[2] / ".cache"))
KEYS = {"file", "patient", "encounter", "severity", "flags", "statement"}


@pytest.fixture(scope="module")
def ed_files() -> list[Path]:
    """clinosim patients with ED triage notes (population 200, seed 11; cached)."""
    from deploy import patients

    folder = CACHE / "patients" / "clinosim-ed-pop200-seed11"
    files = sorted(folder.glob("*.json"))
    if not files:
        folder.mkdir(parents=True, exist_ok=True)
        files = patients.clinosim_ed_bundles(11, folder, population=200)
    return files


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, object]]]:
    code = main(["triage", "--json", *argv])
    return code, [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_one_json_line_per_record(
    capsys: pytest.CaptureFixture[str], ed_files: list[Path], synthea_files: list[Path]
) -> None:
    files = [*ed_files, *synthea_files]
    code, lines = run(capsys, *map(str, files))
    assert code == 0 and len(lines) == len(files)
    assert [line["file"] for line in lines] == [str(f) for f in files]
    for line in lines:
        assert set(line) >= KEYS
        assert line["severity"] in ("critical", "warning", "info", "none")
        assert str(line["patient"]).startswith("Patient/")
    flagged = [line for line in lines if line["severity"] in ("critical", "warning")]
    assert flagged, "no ED patient was flagged"
    rules = {f["rule"] for line in flagged for f in line["flags"]}  # type: ignore[attr-defined]
    assert any(r.startswith("ESI v4") for r in rules)


def test_a_bad_file_is_reported_and_the_rest_still_screened(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, ed_files: list[Path]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}", encoding="utf-8")
    code, lines = run(capsys, str(bad), str(ed_files[0]))
    assert code == 2
    assert lines[0] == {"file": str(bad), "error": f"{bad} is not a FHIR Bundle"}
    assert lines[1]["file"] == str(ed_files[0]) and "severity" in lines[1]


def test_worker_processes_give_the_same_lines(
    capsys: pytest.CaptureFixture[str], ed_files: list[Path]
) -> None:
    files = [str(f) for f in ed_files[:6]]
    assert run(capsys, *files) == run(capsys, "--jobs", "2", *files)


def ed_visit_bundle(complaint: str, department: str | None = None) -> dict[str, object]:
    """One adult ED visit as a Bundle: the encounter's department, complaint and quiet triage vital signs."""
    vital = [{"coding": [{"code": "vital-signs"}]}]

    def obs(rid: str, code: str, value: float, unit: str) -> dict[str, object]:
        return {
            "resourceType": "Observation",
            "id": rid,
            "status": "final",
            "category": vital,
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "encounter": {"reference": "Encounter/e1"},
            "effectiveDateTime": "2024-03-01T08:05:00Z",
            "valueQuantity": {"value": value, "unit": unit},
        }

    encounter = {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"},
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2024-03-01T08:00:00Z"},
        "reasonCode": [{"text": complaint}],
        **({"serviceType": {"text": department}} if department else {}),
    }
    resources = [
        {"resourceType": "Patient", "id": "p1", "birthDate": "1960-05-01"},
        encounter,
        obs("hr", "8867-4", 84, "/min"),
        obs("rr", "9279-1", 18, "/min"),
        obs("t", "8310-5", 36.8, "Cel"),
    ]
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def _ed_visit(folder: Path, complaint: str, department: str) -> Path:
    path = folder / "visit.json"
    path.write_text(json.dumps(ed_visit_bundle(complaint, department), ensure_ascii=False), encoding="utf-8")
    return path


def test_the_scale_is_the_option_else_the_department_s_else_the_hospital_s(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.core.settings import get_settings

    visit = _ed_visit(tmp_path, "흉통", "Adult ED")
    monkeypatch.setenv("EHRSUM_TRIAGE_SCALE", "ctas")
    monkeypatch.setenv("EHRSUM_DEPARTMENT_TRIAGE_SCALES", '{"adult ed": "ktas"}')
    get_settings.cache_clear()
    try:
        _, [by_department] = run(capsys, str(visit))
        _, [chosen] = run(capsys, "--scale", "esi", str(visit))
        monkeypatch.setenv("EHRSUM_DEPARTMENT_TRIAGE_SCALES", "{}")
        get_settings.cache_clear()
        _, [hospital] = run(capsys, str(visit))
    finally:
        get_settings.cache_clear()
    assert (by_department["scale"], by_department["level"], by_department["severity"]) == (
        "ktas",
        2,
        "warning",
    )
    assert str(by_department["statement"]).startswith("Meets KTAS level 2 (긴급 Emergency): Chest pain")
    assert (chosen["scale"], chosen["level"]) == ("esi", 2)
    assert str(chosen["statement"]).startswith("Meets ESI level 2 (emergent): chest pain")
    assert (hospital["scale"], hospital["level"]) == ("ctas", 2)
    assert main(["triage", "--scale", "ctas", str(visit)]) == 0
    assert "WARNING (CTAS level 2)" in capsys.readouterr().out
