"""Every CLI command on a fresh checkout: no EHRSUM_DATABASE_URL, no var/ yet, nobody ran `ehrsum init-db`.

The embedded SQLite file is created and migrated before the first audit row; a correct run prints no ERROR.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BIN
from tests.support.drafts import make_draft

pytestmark = pytest.mark.e2e


def test_every_command_works_on_a_fresh_checkout(
    fhir_server: str,
    loaded_patients: list[str],
    synthea_files: list[Path],
    postgres_db: str,
    redis_broker: str,
    tmp_path: Path,
) -> None:
    patient = loaded_patients[0]
    draft = make_draft(fhir_server, patient)
    empty = tmp_path / "draft.json"
    empty.write_text(json.dumps({"kind": "progress", "sections": [], "flags": []}))
    bundle = str(synthea_files[0])
    server = ["--fhir-url", fhir_server]
    commands = [
        ["timeline", bundle],
        ["timeline", "--patient", patient, *server, "--json"],
        ["triage", "--patient", patient, *server],
        ["draft", draft, *server],
        ["verify", "--record", bundle, "--draft", str(empty)],
        ["subscriptions", *server],
        ["retry", "--failed-since", "1"],
        ["sweep"],
        ["summarize", "--patient", patient],
        ["openapi"],
        ["init-db"],
    ]
    fresh = tmp_path / "checkout"
    fresh.mkdir()
    # Nothing of this session's configuration but its Redis db, and a queue no worker takes from.
    env = {k: v for k, v in os.environ.items() if not k.startswith("EHRSUM_")}
    env.update(EHRSUM_BROKER_URL=redis_broker, EHRSUM_WORKER_QUEUES='["fresh-checkout"]')
    for command in commands:
        done = subprocess.run(
            [str(BIN / "ehrsum"), *command], cwd=fresh, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, (command, done.stderr[-2000:])
        assert "ERROR" not in done.stderr and "ehrsum: error" not in done.stderr, (
            command,
            done.stderr[-2000:],
        )
    with sqlite3.connect(fresh / "var" / "ehrsum.db") as db:
        audited = db.execute(
            "SELECT resource_ids FROM audit_record WHERE action = 'fhir read GET'"
        ).fetchall()
    assert any(f"Patient/{patient}" in row[0] for row in audited)
    assert oct((fresh / "var" / "ehrsum.db").stat().st_mode & 0o777) == "0o600"
