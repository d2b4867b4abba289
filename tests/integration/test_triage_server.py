"""`ehrsum triage --patient ID` against the real sekmet-fhir server: the same screen as from the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.cli import main

pytestmark = pytest.mark.integration


def test_triage_a_patient_on_the_server_matches_the_file(
    capsys: pytest.CaptureFixture[str],
    fhir_server: str,
    loaded_patients: list[str],
    synthea_files: list[Path],
) -> None:
    assert main(["triage", "--json", "--patient", loaded_patients[0], "--fhir-url", fhir_server]) == 0
    served = json.loads(capsys.readouterr().out)
    assert main(["triage", "--json", str(synthea_files[0])]) == 0
    from_file = json.loads(capsys.readouterr().out)
    assert served["file"] is None and served["patient"] == f"Patient/{loaded_patients[0]}"
    assert served["severity"] == from_file["severity"]
    # The server assigns new ids; what the rules found must not depend on them.
    assert [f["title"] for f in served["flags"]] == [f["title"] for f in from_file["flags"]]


def test_unknown_patient_is_a_one_line_error(capsys: pytest.CaptureFixture[str], fhir_server: str) -> None:
    assert main(["triage", "--json", "--patient", "no-such-patient", "--fhir-url", fhir_server]) == 1
    assert "Patient/no-such-patient not found" in capsys.readouterr().err
