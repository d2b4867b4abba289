"""Model profiles: the one setting, and MedGemma's thinking span kept out of the parsed answer."""

from __future__ import annotations

import json

import pytest
import yaml

from deploy import llm_cpu
from services.core.errors import ConfigError
from services.core.model_profiles import GPU_PROFILES, PROFILES, VLLM_VERSION, strip_thinking
from services.core.settings import get_settings
from tests.helm.manifests import CHART_DIR, REPO


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ('{"a": 1}', '{"a": 1}'),
        ('<unused94>thought\nThe record shows {"x": 2}...<unused95>{"a": 1}', '{"a": 1}'),
        ('<unused94>one<unused95>\n<unused94>two<unused95>{"a": 1}', '\n{"a": 1}'),
        ('<unused94>cut off before the answer {"a"', ""),
        ('{"a": 1}<unused95>', '{"a": 1}'),
    ],
    ids=["none", "span", "two-spans", "unclosed", "stray-end"],
)
def test_thinking_span_is_stripped(text: str, answer: str) -> None:
    assert strip_thinking(text) == answer
    if answer.strip():
        assert json.loads(answer) == {"a": 1}


def test_gemma_profiles_are_bf16_and_name_their_sizing() -> None:
    for name in GPU_PROFILES:
        profile = PROFILES[name]
        assert profile.dtype == "bfloat16", name
        assert profile.multimodal and profile.context_tokens >= 16384 and profile.weights_gb > 0
        args = profile.vllm_args()
        assert args[args.index("--dtype") + 1] == "bfloat16"
    assert not PROFILES["cpu-stand-in"].multimodal


def test_an_unknown_profile_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EHRSUM_LLM_PROFILE", "medgemma-70b")
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigError, match="EHRSUM_LLM_PROFILE: unknown profile 'medgemma-70b'"):
            get_settings()
    finally:
        monkeypatch.delenv("EHRSUM_LLM_PROFILE")
        get_settings.cache_clear()


def test_one_pinned_vllm_version_everywhere() -> None:
    """The profiles, the CPU stand-in, the chart's image and annotation, and the VM unit pin one version."""
    assert llm_cpu.VLLM_VERSION == VLLM_VERSION
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert values["vllm"]["image"]["tag"] == f"v{VLLM_VERSION}"
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    assert chart["annotations"]["ehr-summarizer/vllm-version"] == f"v{VLLM_VERSION}"
    unit = (REPO / "deploy" / "systemd" / "ehrsum-vllm.service").read_text()
    assert f"vllm=={VLLM_VERSION}" in unit
