"""`ehrsum triage` on real generated records: one JSON line per record, the rules alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploy.llm_cpu import cache_dir
from services.cli import main

CACHE = cache_dir()
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
