"""`ehrsum verify` as a user runs it: exit 0 when clean, 1 with a violation, 2 for bad input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BIN, REPO
from tests.unit.test_verifier import RESOURCES

pytestmark = pytest.mark.e2e


def run_verify(tmp_path: Path, draft: Any) -> subprocess.CompletedProcess[str]:
    record = tmp_path / "record.json"
    record.write_text(
        json.dumps(
            {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in RESOURCES]}
        )
    )
    path = tmp_path / "draft.json"
    path.write_text(draft if isinstance(draft, str) else json.dumps(draft))
    return subprocess.run(
        [str(BIN / "ehrsum"), "verify", "--record", str(record), "--draft", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )


def draft(text: str) -> dict[str, Any]:
    return {
        "kind": "progress",
        "sections": [
            {"title": "Recent results", "statements": [{"text": text, "citations": ["Observation/k1"]}]}
        ],
    }


def test_clean_draft_exits_0(tmp_path: Path) -> None:
    done = run_verify(tmp_path, draft("Potassium 5.9 mmol/L on 2024-03-01."))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["passed"] is True


def test_violation_exits_1_with_the_report(tmp_path: Path) -> None:
    done = run_verify(tmp_path, draft("Potassium 9.5 mmol/L on 2024-03-01."))
    report = json.loads(done.stdout)
    assert done.returncode == 1 and report["passed"] is False
    assert [v["rule"] for v in report["violations"]] == ["number_unsupported"]


@pytest.mark.parametrize("bad", ["{nope", {"sections": []}])
def test_malformed_draft_is_one_line_exit_2(tmp_path: Path, bad: Any) -> None:
    done = run_verify(tmp_path, bad)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and done.stderr.startswith("ehrsum: error:")


def test_hollow_filler_and_ungrounded_statements_are_violations(tmp_path: Path) -> None:
    """Whatever made the draft: a title, filler, and a statement naming nothing it cites all fail."""
    bad = {
        "kind": "triage",
        "sections": [
            {
                "title": "Summary",
                "statements": [
                    {"text": "Recent results", "citations": ["Observation/k1"]},
                    {"text": "This is a summary of the patient's record.", "citations": ["Observation/k1"]},
                    {"text": "Lisinopril 10 mg daily.", "citations": ["Condition/c1"]},
                ],
            }
        ],
        "flags": [
            {
                "severity": "critical",
                "title": "Hypertension",
                "rationale": "Hypertension since 2015-01-10.",
                "citations": ["Condition/c1"],
            }
        ],
    }
    done = run_verify(tmp_path, bad)
    rules = {(v["location"], v["rule"]) for v in json.loads(done.stdout)["violations"]}
    assert done.returncode == 1
    assert {
        ("sections[0].statements[0]", "hollow_statement"),
        ("sections[0].statements[1]", "filler"),
        ("sections[0].statements[2]", "ungrounded"),
        ("flags[0]", "flag_unbacked"),
    } <= rules
