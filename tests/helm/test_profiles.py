"""Model profiles and LoRA adapters in the chart: the presets render what the profiles say, and vLLM's own
parser (the pinned 0.32, CPU build) reads the rendered arguments as meant."""

from __future__ import annotations

import json
import re
from typing import Any

import helm_python as helm
import pytest

from services.core.model_profiles import GPU_PROFILES, get_profile
from services.core.settings import AdapterRoute
from tests.helm.manifests import CHART_DIR, Rendered, load_values, pod_spec, render, vllm_parse

pytestmark = pytest.mark.helm

PRESETS = CHART_DIR / "examples" / "profiles"
LORA = {
    "llm": {"adapters": [{"adapter": "cardio-notes", "departments": ["Cardiology"], "kinds": ["progress"]}]},
    "vllm": {
        "lora": {
            "enabled": True,
            "maxRank": 32,
            "source": "hostPath",
            "hostPath": "/srv/adapters",
            "adapters": [{"name": "cardio-notes", "path": "cardiology/v3"}],
        }
    },
}
TRACED = {"tracing": {"otlpEndpoint": "http://otel-collector.monitoring.svc:4318/"}}
PARSE = """
import json, sys
from vllm.entrypoints.launchers.cli_args import make_arg_parser
from vllm.utils.argparse_utils import FlexibleArgumentParser
out = {}
for name, argv in json.loads(sys.argv[1]).items():
    a = make_arg_parser(FlexibleArgumentParser()).parse_args(argv)
    out[name] = {"model": a.model_tag, "served": a.served_model_name, "len": a.max_model_len,
                 "mem": a.gpu_memory_utilization, "dtype": a.dtype, "q": a.quantization,
                 "kv": a.kv_cache_dtype, "lora": a.enable_lora, "rank": a.max_lora_rank,
                 "modules": [[m.name, m.path] for m in a.lora_modules or []],
                 "otlp": a.otlp_traces_endpoint}
print(json.dumps(out))
"""


def vllm_args(rendered: Rendered) -> list[str]:
    """The rendered `vllm serve` arguments."""
    args: list[str] = pod_spec(rendered.one("Deployment", "vllm"))["containers"][0]["args"]
    return args


@pytest.fixture(scope="module")
def preset_renders(chart: helm.Chart) -> dict[str, Rendered]:
    """The chart rendered with each profile's preset values file."""
    return {name: render(chart, load_values(PRESETS / f"{name}.yaml")) for name in GPU_PROFILES}


@pytest.fixture(scope="module")
def parsed(chart: helm.Chart, preset_renders: dict[str, Rendered]) -> dict[str, dict[str, Any]]:
    """vLLM's reading of every preset's rendered arguments, of each profile's own, and of the LoRA render."""
    argvs = {f"chart:{name}": vllm_args(r) for name, r in preset_renders.items()}
    argvs |= {f"profile:{name}": get_profile(name).vllm_args() for name in GPU_PROFILES}
    argvs["lora"] = vllm_args(render(chart, LORA))
    argvs["traced"] = vllm_args(render(chart, TRACED))
    result: dict[str, dict[str, Any]] = vllm_parse(PARSE, argvs)  # type: ignore[assignment]
    return result


@pytest.mark.parametrize("name", GPU_PROFILES)
def test_preset_serves_what_the_profile_says(
    name: str, preset_renders: dict[str, Rendered], parsed: dict[str, dict[str, Any]]
) -> None:
    """The preset's rendered arguments mean to vLLM what the profile's own do, in bf16, and the workers
    are told the profile, the served name and the context."""
    profile = get_profile(name)
    assert parsed[f"chart:{name}"] == parsed[f"profile:{name}"]
    assert parsed[f"chart:{name}"]["dtype"] == "bfloat16"
    assert parsed[f"chart:{name}"]["len"] == profile.context_tokens
    config = preset_renders[name].one("ConfigMap", "config")["data"]
    assert config["EHRSUM_LLM_PROFILE"] == name
    assert config["EHRSUM_LLM_MODEL"] == profile.served_name == parsed[f"chart:{name}"]["served"][0]
    assert config["EHRSUM_LLM_CONTEXT_TOKENS"] == str(profile.context_tokens)


def test_quantized_profiles(parsed: dict[str, dict[str, Any]]) -> None:
    """FP8 quantizes the bf16 checkpoint at load; W4A16 is a local checkpoint naming its own scheme."""
    assert parsed["chart:medgemma-27b-fp8"] == {
        **parsed["chart:medgemma-27b"],
        "q": "fp8",
        "kv": "fp8",
    }
    assert parsed["chart:medgemma-27b-w4a16"]["model"] == "/models/medgemma-27b-it-w4a16"
    assert parsed["chart:medgemma-27b-w4a16"]["q"] is None
    assert parsed["chart:medgemma-4b"]["model"] == "google/medgemma-4b-it"


def test_lora_adapters_are_served_and_mounted_read_only(
    chart: helm.Chart, parsed: dict[str, dict[str, Any]]
) -> None:
    """--enable-lora with each named adapter under the read-only adapters mount; the routes reach the
    workers as a setting they parse."""
    assert parsed["lora"]["lora"] is True and parsed["lora"]["rank"] == 32
    assert parsed["lora"]["modules"] == [["cardio-notes", "/adapters/cardiology/v3"]]
    assert not parsed["chart:medgemma-27b"]["lora"]
    rendered = render(chart, LORA)
    spec = pod_spec(rendered.one("Deployment", "vllm"))
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "adapters")
    assert mount == {"name": "adapters", "mountPath": "/adapters", "readOnly": True}
    volume = next(v for v in spec["volumes"] if v["name"] == "adapters")
    assert volume["hostPath"] == {"path": "/srv/adapters", "type": "Directory"}
    routes = json.loads(rendered.one("ConfigMap", "config")["data"]["EHRSUM_LLM_ADAPTERS"])
    assert [AdapterRoute.model_validate(r).adapter for r in routes] == ["cardio-notes"]
    pvc = render(chart, {"vllm": {"lora": {"enabled": True, "existingClaim": "adapters"}}})
    volume = next(v for v in pod_spec(pvc.one("Deployment", "vllm"))["volumes"] if v["name"] == "adapters")
    assert volume["persistentVolumeClaim"] == {"claimName": "adapters", "readOnly": True}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"llm": LORA["llm"]}, "llm.adapters names cardio-notes, which vLLM does not serve"),
        ({"vllm": {"lora": {"enabled": True}}}, "vllm.lora.source=pvc needs vllm.lora.existingClaim"),
    ],
)
def test_adapter_values_that_cannot_work_fail(
    chart: helm.Chart, override: dict[str, Any], message: str
) -> None:
    """A route to an adapter vLLM does not serve, or adapters without a volume, fail the render."""
    with pytest.raises(helm.HelmRenderError, match=re.escape(message)):
        render(chart, override)


def test_vllm_exports_its_spans_to_the_services_collector(
    chart: helm.Chart, parsed: dict[str, dict[str, Any]]
) -> None:
    """With a collector named, vLLM is given it (OTLP/HTTP: its traces path, and the protocol by env);
    without, no tracing argument at all."""
    assert parsed["traced"]["otlp"] == "http://otel-collector.monitoring.svc:4318/v1/traces"
    assert all(parsed[f"chart:{name}"]["otlp"] is None for name in GPU_PROFILES)
    rendered = render(chart, TRACED)
    env = {
        e["name"]: e.get("value")
        for e in pod_spec(rendered.one("Deployment", "vllm"))["containers"][0]["env"]
    }
    assert env["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] == "http/protobuf"
    config = rendered.one("ConfigMap", "config")["data"]
    assert config["EHRSUM_OTEL_ENDPOINT"] == "http://otel-collector.monitoring.svc:4318/"
    assert config["EHRSUM_FHIR_AUDIT_EVENTS"] == "true"
