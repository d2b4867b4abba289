"""Rendering the chart offline (Helm's own Go SDK through helm-python-sdk) and walking the objects."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "helm" / "ehr-summarizer"
PRODUCTION_VALUES = CHART_DIR / "examples" / "values-production.yaml"
RELEASE = "ehrsum"
NAMESPACE = "ehr"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
LONG_RUNNING_KINDS = {"Deployment", "StatefulSet", "DaemonSet"}

Obj = dict[str, Any]


@dataclass(frozen=True)
class Rendered:
    """The objects a render produced, and its NOTES.txt."""

    objects: list[Obj]
    notes: str

    def of_kind(self, kind: str) -> list[Obj]:
        """Objects of one kind."""
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, component: str) -> Obj:
        """The single object of a kind for a component (app.kubernetes.io/component)."""
        found = [o for o in self.of_kind(kind) if component_of(o) == component]
        assert len(found) == 1, f"expected one {kind} for {component}, found {len(found)}"
        return found[0]


def load_values(path: Path) -> dict[str, Any]:
    """A values file as a dict."""
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def production_values() -> dict[str, Any]:
    """A fresh copy of the production example's values."""
    return copy.deepcopy(load_values(PRODUCTION_VALUES))


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge override into a copy of base (dicts merge, everything else replaces)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def render(chart: helm.Chart, values: dict[str, Any] | None = None) -> Rendered:
    """Render the chart as `helm template` would, parsed into objects."""
    manifests = chart.render(values=values, name=RELEASE, namespace=NAMESPACE)
    objects: list[Obj] = []
    notes = ""
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return Rendered(objects=objects, notes=notes)


def component_of(obj: Obj) -> str:
    """The app.kubernetes.io/component label of an object."""
    return str(obj["metadata"].get("labels", {}).get("app.kubernetes.io/component", ""))


def pod_spec(obj: Obj) -> Obj:
    """The pod spec inside a workload."""
    spec: Obj = obj["spec"]["template"]["spec"]
    return spec


def workloads(rendered: Rendered) -> list[Obj]:
    """Every object that runs pods."""
    return [o for o in rendered.objects if o["kind"] in WORKLOAD_KINDS]


def containers(obj: Obj) -> Iterator[tuple[str, Obj]]:
    """(init or main, container) for every init container and container of a workload."""
    spec = pod_spec(obj)
    for c in spec.get("initContainers", []):
        yield "init", c
    for c in spec["containers"]:
        yield "main", c


def env_of(container: Obj) -> list[Obj]:
    """A container's env list."""
    env: list[Obj] = container.get("env", [])
    return env


def env_value(container: Obj, name: str) -> Obj:
    """One env entry of a container by name."""
    found = [e for e in env_of(container) if e["name"] == name]
    assert found, f"{container['name']} has no env {name}"
    return found[0]


def labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """Does a matchLabels selector select these labels?"""
    return all(labels.get(k) == v for k, v in selector.items())


def vllm_parse(script: str, argvs: object) -> object:
    """Run a parsing script with the pinned vLLM (the CPU venv, set up when missing) on JSON argument lists;
    its last JSON line."""
    from deploy import llm_cpu

    llm_cpu.ensure_setup()
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}
    out = subprocess.run(
        [str(llm_cpu.venv_python()), "-c", script, json.dumps(argvs)],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])
