"""Static policy scan of the rendered manifests and the Dockerfile with checkov, offline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import venv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.llm_cpu import cache_dir
from tests.helm.manifests import REPO, Rendered

pytestmark = pytest.mark.helm

# checkov pins packaging<24 and networkx<2.7, which clash with the project's pytest; it lives in its own venv.
CHECKOV_VERSION = "3.3.30"
CHECKOV_VENV = cache_dir() / "checkov-venv"
ACCEPTED = Path(__file__).with_name("checkov-accepted.yaml")
RUNNER = Path(__file__).with_name("checkov_offline.py")
SEVERE = {"HIGH", "CRITICAL"}


def _checkov_python() -> Path:
    """The checkov venv's python, installing the pinned checkov into it on first use."""
    python = CHECKOV_VENV / "bin" / "python"
    stamp = CHECKOV_VENV / f".checkov-{CHECKOV_VERSION}"
    if not stamp.exists():
        if CHECKOV_VENV.exists():
            shutil.rmtree(CHECKOV_VENV)
        venv.create(CHECKOV_VENV, with_pip=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                f"checkov=={CHECKOV_VERSION}",
            ],
            check=True,
            timeout=600,
        )
        stamp.touch()
    return python


@pytest.fixture(scope="module")
def scan(
    default_render: Rendered, production_render: Rendered, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """One checkov run over both renders (one directory each) and the Dockerfile, with the network refused."""
    python = _checkov_python()
    root = tmp_path_factory.mktemp("checkov")
    for label, rendered in (("default", default_render), ("production", production_render)):
        (root / label).mkdir()
        for i, obj in enumerate(rendered.objects):
            name = f"{i:02d}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"
            (root / label / name).write_text(yaml.safe_dump(obj, sort_keys=False))
    (root / "dockerfile").mkdir()
    shutil.copy(REPO / "deploy" / "docker" / "Dockerfile", root / "dockerfile" / "Dockerfile")
    net_log = root / "network-attempts.log"
    net_log.touch()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root),
        "CHECKOV_NET_LOG": str(net_log),
        # No platform mapping/guidelines download, no PyPI update check, no proxy to reach anything.
        "BC_SKIP_MAPPING": "TRUE",
        "CKV_SKIP_PACKAGE_UPDATE_CHECK": "TRUE",
        "LOG_LEVEL": "WARNING",
    }
    args = [str(python), str(RUNNER), "-d", str(root), "--framework", "kubernetes", "dockerfile"]
    args += ["--skip-download", "--output", "json"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env, cwd=root, check=False)
    assert out.returncode in (0, 1), out.stderr[-3000:]
    reports = json.loads(out.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    yield {"reports": reports, "network": net_log.read_text(), "root": root}


def _failures(scan: dict[str, Any]) -> list[dict[str, Any]]:
    failed: list[dict[str, Any]] = []
    for report in scan["reports"]:
        for f in report["results"]["failed_checks"]:
            render = f["file_path"].strip("/").split("/", 1)[0]
            failed.append(
                {
                    "id": f["check_id"],
                    "render": render,
                    "resource": f["resource"],
                    "severity": f.get("severity"),
                }
            )
    return failed


def test_checkov_made_no_network_call(scan: dict[str, Any]) -> None:
    """checkov ran fully offline: no connection and no name lookup was even attempted."""
    assert scan["network"] == ""


def test_checkov_scanned_everything(scan: dict[str, Any]) -> None:
    """Both frameworks ran, parsed every file, and found the objects."""
    summaries = {r["check_type"]: r["summary"] for r in scan["reports"]}
    assert set(summaries) == {"kubernetes", "dockerfile"}
    assert all(s["parsing_errors"] == 0 for s in summaries.values())
    assert summaries["kubernetes"]["resource_count"] >= 40
    assert summaries["kubernetes"]["passed"] > 1000
    assert summaries["dockerfile"]["resource_count"] == 1


def test_checkov_findings_are_only_the_accepted_ones(scan: dict[str, Any]) -> None:
    """No HIGH/CRITICAL finding, and every failure is listed with its reason in checkov-accepted.yaml."""
    accepted = yaml.safe_load(ACCEPTED.read_text())
    failures = _failures(scan)
    assert not [f for f in failures if str(f["severity"]).upper() in SEVERE]
    unexpected = [f for f in failures if f["render"] not in accepted.get(f["id"], {}).get("renders", [])]
    assert unexpected == [], "fix these or add them with a reason to checkov-accepted.yaml"
    seen = {(f["id"], f["render"]) for f in failures}
    stale = [(cid, r) for cid, entry in accepted.items() for r in entry["renders"] if (cid, r) not in seen]
    assert stale == [], "accepted findings that no longer fail: remove them from checkov-accepted.yaml"
    for entry in accepted.values():
        assert len(entry["reason"]) > 80, "every accepted finding needs a real reason"


def test_production_render_fails_only_the_env_secret_check(scan: dict[str, Any]) -> None:
    """What ops deploy passes everything but CKV_K8S_35 (secrets via secretKeyRef env, see the list)."""
    assert {f["id"] for f in _failures(scan) if f["render"] == "production"} == {"CKV_K8S_35"}
