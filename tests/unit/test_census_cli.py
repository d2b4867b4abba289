"""`ehrsum census` without servers: the ids file, the progress bar and lines, the closing table."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fhir_adapters.bulk import declares_group_export
from services.census_cli import Progress, bar_line, closing_table, duration, read_ids, status_line
from services.cli import main
from services.core.errors import InputError
from services.jobs.census import CensusFailure, CensusPublic, CensusStatus, member_job_key


def census(**changes: Any) -> CensusPublic:
    values: dict[str, Any] = {
        "id": "c-1",
        "source": "Group/ward-7",
        "kinds": ["progress"],
        "run": "2026-12-02",
        "concurrency": 4,
        "status": CensusStatus.running,
        "reason": None,
        "resolved_by": "bulk export",
        "total": 10,
        "pending": 3,
        "queued": 1,
        "running": 2,
        "succeeded": 2,
        "skipped": 1,
        "failed": 1,
        "drafts_written": 2,
        "failures": [CensusFailure(patient="p9", job_id="j9", reason="GET Patient/p9/$everything -> 404")],
        "created_at": datetime(2026, 12, 2, 6, 0, tzinfo=UTC),
        "finished_at": None,
        "elapsed_s": 90.0,
        "eta_s": 150.0,
    }
    return CensusPublic(**{**values, **changes})


def test_ids_file_takes_ids_and_references_and_skips_comments(tmp_path: Path) -> None:
    path = tmp_path / "ids.txt"
    path.write_text("# ward 7\np1\n\nPatient/p2  # bed 3\np1\n", encoding="utf-8")
    assert read_ids(path) == ("p1", "p2", "p1")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("p1\n../etc/passwd\n", "line 2"),
        ("Patient/a b\n", "line 1"),
        ("# nothing\n\n", "no patient ids"),
        ("x" * 65 + "\n", "line 1"),
    ],
)
def test_a_bad_ids_file_names_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "ids.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        read_ids(path)


def test_a_binary_or_missing_ids_file_is_input_error(tmp_path: Path) -> None:
    path = tmp_path / "ids.bin"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InputError, match="not UTF-8"):
        read_ids(path)
    with pytest.raises(InputError, match="cannot read"):
        read_ids(tmp_path / "missing.txt")


@pytest.mark.parametrize(
    "argv",
    [
        ["census"],
        ["census", "g1", "--location", "w1"],
        ["census", "../g"],
        ["census", "g1", "--kind", "poem"],
        ["census", "g1", "--concurrency", "0"],
        ["census", "g1", "--run", "x" * 65],
    ],
)
def test_bad_census_arguments_are_one_line_and_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("ehrsum: error:") and err.count("\n") == 1


def test_durations_read_as_a_clock() -> None:
    assert [duration(s) for s in (None, 4.4, 185, 3725)] == ["?", "4s", "3m05s", "1h02m"]


def test_the_bar_fills_with_what_finished_and_shows_the_eta() -> None:
    line = bar_line(census())
    assert line.startswith("[" + "#" * 11 + "." * 17 + "] 4/10 1 failed")
    assert "2 running" in line and "ETA 2m30s" in line and "elapsed 1m30s" in line


def test_a_terminal_gets_one_redrawn_bar_and_a_pipe_a_line_per_change() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty, pipe = Tty(), io.StringIO()
    for out in (tty, pipe):
        shown = Progress(out)
        shown.show(census(status=CensusStatus.resolving))
        shown.show(census())
        shown.show(census(eta_s=140.0))  # only the ETA moved: no new plain line
        shown.show(census(succeeded=3, running=1))
        shown.close()
    assert tty.getvalue().count("\r\x1b[2K[") == 3 and tty.getvalue().endswith("\n")
    lines = pipe.getvalue().splitlines()
    assert len(lines) == 3 and "\r" not in pipe.getvalue()
    assert lines[0] == "census c-1: finding the patients of Group/ward-7"
    assert lines[2] == status_line(census(succeeded=3, running=1))
    assert "5/10 done (3 succeeded, 1 failed, 1 skipped), 1 running, 1 queued" in lines[2]


def test_the_closing_table_counts_drafts_time_and_failures_with_reasons() -> None:
    table = closing_table(census(status=CensusStatus.finished, pending=0, queued=0, running=0, eta_s=None))
    assert "  succeeded       2\n" in table
    assert "  skipped         1 (succeeded in an earlier run of '2026-12-02')\n" in table
    assert "  failed          1\n" in table
    assert "  drafts written  2\n" in table
    assert "  time            1m30s (2.0 patients/min)\n" in table
    assert "    Patient/p9  job j9  GET Patient/p9/$everything -> 404\n" in table


def test_a_member_job_key_depends_on_run_patient_and_kinds_not_their_order() -> None:
    key = member_job_key("2026-12-02", "p1", ["soap", "progress"])
    assert key == member_job_key("2026-12-02", "p1", ["progress", "soap"])
    assert key != member_job_key("2026-12-03", "p1", ["progress", "soap"])
    assert key != member_job_key("2026-12-02", "p2", ["progress", "soap"])
    assert key != member_job_key("2026-12-02", "p1", ["progress"])


def test_group_export_is_read_from_the_capability_statement() -> None:
    def capability(**rest: Any) -> dict[str, Any]:
        return {"resourceType": "CapabilityStatement", "rest": [{"mode": "server", **rest}]}

    group = {"type": "Group", "operation": [{"name": "export"}]}
    assert declares_group_export(capability(resource=[group]))
    assert declares_group_export(
        capability(
            operation=[
                {
                    "name": "export",
                    "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export",
                }
            ]
        )
    )
    assert not declares_group_export(
        capability(resource=[{"type": "Group", "operation": [{"name": "everything"}]}])
    )
    assert not declares_group_export(
        capability(resource=[{"type": "Patient", "operation": [{"name": "export"}]}])
    )
    assert not declares_group_export({"resourceType": "CapabilityStatement"})
