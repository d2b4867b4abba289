"""Item 12: every EHRSUM_* name the chart, the VM env file and the docs set boots the service's Settings.

The chart configured SMART with names Settings never read, so a production install failed at its first
FHIR call. Here each source's variables are put in a clean environment and Settings is built from them
exactly as a process would at start: an unknown name or an inconsistent value fails the test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.core.settings import PREFIX, TOOLING_ENV, Settings
from tests.helm.manifests import REPO, Rendered, component_of, containers, env_of, workloads

pytestmark = pytest.mark.helm

ENV_EXAMPLE = REPO / "deploy" / "systemd" / "ehrsum.env.example"
OPERATIONS = REPO / "docs" / "operations.md"
# Every page that may name a setting: the README and all of docs/.
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# Stand-ins for what Secrets hold; URL-valued ones must still be URLs.
SECRET_VALUES = {
    "EHRSUM_API_JWKS_URL": "https://idp.hospital.internal/jwks.json",
    "EHRSUM_FHIR_TOKEN_URL": "https://idp.hospital.internal/oauth2/token",
    "EHRSUM_DATABASE_URL": "postgresql+psycopg://ehrsum@pg.hospital.internal:5432/ehrsum",
    "EHRSUM_BROKER_URL": "redis://redis.hospital.internal:6379/0",
    "EHRSUM_FHIR_PRIVATE_KEY_PATH": "/etc/ehrsum/secrets/private-key.pem",
    "EHRSUM_TOKENIZER_PATH": "/srv/models/medgemma-27b-it",
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The environment without any EHRSUM_* variable of the test session."""
    import os

    for name in [n for n in os.environ if n.upper().startswith(PREFIX)]:
        monkeypatch.delenv(name)
    yield monkeypatch


def boot(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    """Settings as a process with exactly `env` builds them."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def _expand(value: str, env: dict[str, str]) -> str:
    """The kubelet's $(VAR) expansion."""
    return re.sub(r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), value)


def chart_env(rendered: Rendered, component: str) -> dict[str, str]:
    """What one service container's environment holds: the ConfigMap, then its env (secrets stood in for)."""
    env = {k: str(v) for k, v in rendered.one("ConfigMap", "config")["data"].items()}
    [workload] = [w for w in workloads(rendered) if component_of(w) == component]
    for _, container in containers(workload):
        for item in env_of(container):
            value = item.get("value")
            env[item["name"]] = (
                _expand(value, env) if value is not None else SECRET_VALUES.get(item["name"], "secret")
            )
    return {k: v for k, v in env.items() if k.startswith(PREFIX)}


@pytest.mark.parametrize("component", ["api", "worker", "beat"])
def test_chart_environment_boots_settings(
    clean_env: pytest.MonkeyPatch, default_render: Rendered, production_render: Rendered, component: str
) -> None:
    """Default and production renders: every variable is a setting (or the chart's Redis password)."""
    for rendered in (default_render, production_render):
        settings = boot(clean_env, chart_env(rendered, component))
        clean_env.undo()
        assert settings.fhir_auth in ("none", "smart")
    production = boot(clean_env, chart_env(production_render, component))
    assert production.fhir_auth == "smart" and production.fhir_client_id == "secret"
    assert production.triage_scale == "ctas"
    assert production.department_triage_scales == {"Pediatric Emergency": "esi"}
    assert production.fhir_private_key_path == Path("/var/run/secrets/ehrsum/smart/private-key.pem")
    assert production.fhir_token_url == "https://idp.hospital.internal/oauth2/token"
    assert production.worker_queues and production.fhir_key_alg == "RS384"


def _env_file(text: str) -> dict[str, str]:
    """Every NAME=value of an env file, commented-out ones included (empty ones stood in for)."""
    found = dict(re.findall(r"^#?(EHRSUM_\w+)=(.*)$", text, re.M))
    return {k: v or SECRET_VALUES.get(k, "secret") for k, v in found.items()}


def test_vm_env_file_boots_settings(clean_env: pytest.MonkeyPatch) -> None:
    """The systemd env template, with every optional line uncommented, builds Settings."""
    env = _env_file(ENV_EXAMPLE.read_text())
    assert "EHRSUM_FHIR_CLIENT_ID" in env and "EHRSUM_WORKER_QUEUES" in env
    settings = boot(clean_env, env)
    assert settings.fhir_base_url.startswith("https://")
    assert settings.llm_model == "medgemma-27b"
    assert settings.sqlalchemy_url().startswith("postgresql+psycopg://ehrsum@")


def test_docs_name_only_settings() -> None:
    """Every EHRSUM_* name the README and the docs/ pages mention is one a process accepts."""
    known = {f"{PREFIX}{name.upper()}" for name in Settings.model_fields} | TOOLING_ENV
    assert OPERATIONS in DOCS and len(DOCS) > 2
    for doc in DOCS:
        named = set(re.findall(r"\bEHRSUM_[A-Z0-9_]*[A-Z0-9]\b", doc.read_text()))
        assert sorted(named - known) == [], doc.name


def test_chart_variables_are_documented(default_render: Rendered, production_render: Rendered) -> None:
    """What the chart sets appears in the operations guide, and (but for its Redis password) the VM file."""
    docs = OPERATIONS.read_text()
    env_example = ENV_EXAMPLE.read_text()
    names = {
        name
        for r in (default_render, production_render)
        for c in ("api", "worker")
        for name in chart_env(r, c)
    }
    for name in sorted(names):
        assert name in docs, f"{name} is not in docs/operations.md"
        if name != "EHRSUM_REDIS_PASSWORD":  # the chart's own: on a VM the password is in the broker URL
            assert name in env_example, f"{name} is not in ehrsum.env.example"


def test_an_unknown_name_would_fail(clean_env: pytest.MonkeyPatch) -> None:
    """Control: the same boot fails for a misspelt name, so the passes above mean something."""
    with pytest.raises(ValueError, match="EHRSUM_SMART_CLIENT_ID"):
        boot(clean_env, {"EHRSUM_SMART_CLIENT_ID": "x"})
