"""The Helm chart: lint, render, values schema, and what the rendered objects must hold."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from tests.helm.manifests import (
    CHART_DIR,
    LONG_RUNNING_KINDS,
    PRODUCTION_VALUES,
    Obj,
    Rendered,
    component_of,
    containers,
    env_of,
    env_value,
    labels_match,
    load_values,
    merge,
    pod_spec,
    production_values,
    render,
    vllm_parse,
    workloads,
)

pytestmark = pytest.mark.helm

SECRET_NAME = re.compile(
    r"PASSWORD|PASSWD|SECRET|TOKEN$|API_KEY$|APIKEY$|PRIVATE_KEY$|CREDENTIALS?$|REDISCLI_AUTH"
)
CRD_KINDS = {"ServiceMonitor", "ScaledObject", "TriggerAuthentication"}


def _both(default_render: Rendered, production_render: Rendered) -> list[tuple[str, Rendered]]:
    return [("default", default_render), ("production", production_render)]


# ---------------------------------------------------------------- lint and render


@pytest.mark.parametrize("values_file", [None, PRODUCTION_VALUES], ids=["default", "production"])
@pytest.mark.parametrize("kube_version", ["v1.27.0", "v1.33.0"])
def test_lint_is_clean(values_file: Path | None, kube_version: str) -> None:
    """helm lint --strict passes for the oldest and a recent supported Kubernetes: no warnings, no errors."""
    values = load_values(values_file) if values_file else None
    report = helm.lint(CHART_DIR, values, strict=True, kube_version=kube_version)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["total_charts_linted"] == 1
    assert not report["errors"], report["errors"]
    assert not problems, problems


def test_default_render_objects(default_render: Rendered) -> None:
    """Defaults are a trial: bundled Postgres, Redis and vLLM, a generated Secret, policies for everything."""
    kinds = sorted(o["kind"] for o in default_render.objects)
    assert {k: kinds.count(k) for k in set(kinds)} == {
        "ConfigMap": 1,
        "Deployment": 4,  # api, worker, beat, vllm
        "Job": 1,
        "NetworkPolicy": 7,  # api, worker, beat, migrations, vllm, postgresql, redis
        "PersistentVolumeClaim": 1,  # vLLM weights
        "PodDisruptionBudget": 3,
        "Secret": 1,
        "Service": 6,
        "ServiceAccount": 1,
        "StatefulSet": 2,
    }


def test_production_render_objects(production_render: Rendered) -> None:
    """Production: no bundled stores, no Secret objects; HPA, KEDA, Ingress, ServiceMonitors on."""
    kinds = sorted(o["kind"] for o in production_render.objects)
    assert {k: kinds.count(k) for k in set(kinds)} == {
        "ConfigMap": 1,
        "Deployment": 4,
        "HorizontalPodAutoscaler": 1,
        "Ingress": 1,
        "Job": 1,
        "NetworkPolicy": 5,
        "PodDisruptionBudget": 3,
        "ScaledObject": 1,
        "Service": 2,
        "ServiceAccount": 1,
        "ServiceMonitor": 2,
        "TriggerAuthentication": 1,
    }


@pytest.mark.parametrize("kube_version", ["1.27.0", "1.37.0"])
def test_objects_valid_against_kubernetes_openapi(
    default_render: Rendered, production_render: Rendered, kube_version: str
) -> None:
    """Every built-in object validates strictly (unknown fields rejected) against Kubernetes' own schemas."""
    for label, rendered in _both(default_render, production_render):
        for obj in rendered.objects:
            if obj["kind"] in CRD_KINDS:
                continue
            try:
                kubernetes_validate.validate(obj, kube_version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{label}: {obj['kind']}/{obj['metadata']['name']}: {exc.message} at {exc.path}")


def test_crd_objects_are_well_formed(production_render: Rendered) -> None:
    """The CRD objects (no schema offline) carry the fields their operators need."""
    monitors = production_render.of_kind("ServiceMonitor")
    assert {component_of(m) for m in monitors} == {"api", "vllm"}
    scrape = {"port": "http", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
    for m in monitors:
        assert m["apiVersion"] == "monitoring.coreos.com/v1"
        [endpoint] = [dict(e) for e in m["spec"]["endpoints"]]
        # Our /metrics needs a metrics.read token (client credentials); vLLM's own does not.
        oauth2 = endpoint.pop("oauth2", None)
        assert endpoint == scrape
        assert (oauth2 is not None) == (component_of(m) == "api")
        assert m["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    [api_monitor] = [m for m in monitors if component_of(m) == "api"]
    assert api_monitor["spec"]["endpoints"][0]["oauth2"]["scopes"] == ["metrics.read"]
    scaled = production_render.one("ScaledObject", "worker")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    auth = production_render.one("TriggerAuthentication", "worker")
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "password", "name": "ehrsum-redis", "key": "password"}
    ]


# ---------------------------------------------------------------- values and schema


@pytest.mark.parametrize(
    ("bad", "where"),
    [
        ({"fhir": {"auth": "kerberos"}}, "/fhir/auth"),
        ({"postgresql": {"auth": {"password": "hunter2"}}}, "/postgresql/auth"),
        ({"redis": {"auth": {"password": "hunter2"}}}, "/redis/auth"),
        ({"api": {"extraEnv": [{"name": "DB_PASSWORD", "value": "hunter2"}]}}, "/api/extraEnv/0"),
        ({"config": {"extraEnv": [{"name": "EHRSUM_FHIR_TOKEN", "value": "abc"}]}}, "/config/extraEnv/0"),
        (
            {"config": {"extraEnv": [{"name": "HTTP_PROXY", "value": "http://proxy:3128"}]}},
            "/config/extraEnv/0",
        ),
        ({"vllm": {"gpuMemoryUtilization": 1.5}}, "/vllm/gpuMemoryUtilization"),
        ({"vllm": {"tensorParallelSize": 3}}, "/vllm/tensorParallelSize"),
        ({"vllm": {"quantization": "int3"}}, "/vllm/quantization"),
        ({"vllm": {"weights": {"source": "s3"}}}, "/vllm/weights/source"),
        ({"image": {"digest": "sha256:abc"}}, "/image/digest"),
        ({"api": {"replicaCount": -1}}, "/api/replicaCount"),
        ({"api": {"containerPort": 70000}}, "/api/containerPort"),
        ({"api": {"resources": {"limits": {"memory": "lots"}}}}, "/api/resources/limits/memory"),
        (
            {"networkPolicy": {"ingress": {"api": {"cidrs": ["10.0.0.0"]}}}},
            "/networkPolicy/ingress/api/cidrs/0",
        ),
        ({"fhir": {"baseUrl": "fhir.hospital.internal"}}, "/fhir/baseUrl"),
        ({"worker": {"pool": "gevent"}}, "/worker/pool"),
        ({"worker": {"queues": []}}, "/worker/queues"),
        ({"config": {"logLevel": "chatty"}}, "/config/logLevel"),
        ({"triage": {"scale": "mts"}}, "/triage/scale"),
        ({"triage": {"departmentScales": {"Pediatric Emergency": "paedCTAS"}}}, "/triage/departmentScales"),
        ({"externalDatabase": {"sslMode": "sometimes"}}, "/externalDatabase/sslMode"),
        ({"typoKey": True}, "typoKey"),
        ({"api": {"livenessProbe": {"periodSeconds": 0}}}, "/api/livenessProbe/periodSeconds"),
    ],
    ids=lambda v: json.dumps(v, separators=(",", ":"))[:60] if isinstance(v, dict) else v,
)
def test_schema_rejects_bad_values(chart: helm.Chart, bad: dict[str, Any], where: str) -> None:
    """A bad value fails schema validation, and so does the render (the install) with it."""
    with pytest.raises(helm.HelmValuesError, match=re.escape(where)):
        chart.validate_schema(bad)
    with pytest.raises(helm.HelmValuesError):
        render(chart, bad)


def test_schema_accepts_defaults_and_production(chart: helm.Chart) -> None:
    """The shipped values pass the schema."""
    chart.validate_schema(None)
    chart.validate_schema(load_values(CHART_DIR / "values.yaml"))
    chart.validate_schema(production_values())


def _leaf_paths(value: Any, prefix: str = "") -> set[str]:
    """Documentable paths: scalars, lists and empty maps are leaves; non-empty maps recurse."""
    if isinstance(value, dict) and value:
        out: set[str] = set()
        for key, sub in value.items():
            out |= _leaf_paths(sub, f"{prefix}.{key}" if prefix else key)
        return out
    return {prefix}


def _schema_node(schema: dict[str, Any], path: str) -> dict[str, Any] | None:
    node: dict[str, Any] | None = schema
    for part in path.split("."):
        while node is not None and "$ref" in node:
            node = schema["definitions"][node["$ref"].rsplit("/", 1)[1]]
        if node is None:
            return None
        props = node.get("properties", {})
        if part in props:
            node = props[part]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return None
    return node


def test_every_value_documented_and_typed() -> None:
    """Every key of values.yaml has a `## @param` line and a schema entry; no @param names a missing key."""
    text = (CHART_DIR / "values.yaml").read_text()
    params = set(re.findall(r"^## @param (\S+)", text, flags=re.M))
    leaves = _leaf_paths(yaml.safe_load(text))
    # A @param on a map (e.g. api.resources.requests) documents everything under it, as in bitnami charts.
    prefixes = {".".join(leaf.split(".")[:i]) for leaf in leaves for i in range(1, leaf.count(".") + 2)}
    undocumented = [leaf for leaf in leaves if not any(leaf == p or leaf.startswith(p + ".") for p in params)]
    assert sorted(undocumented) == [], "values without ## @param"
    assert sorted(params - prefixes) == [], "## @param for keys that do not exist"
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    assert [p for p in sorted(leaves) if _schema_node(schema, p) is None] == [], (
        "values missing from the schema"
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"vllm": {"enabled": False}}, "llm.baseUrl is required"),
        ({"postgresql": {"enabled": False}}, "externalDatabase.host"),
        ({"redis": {"enabled": False}}, "externalRedis.host"),
        ({"fhir": {"auth": "basic"}}, "fhir.existingSecret is required"),
        (
            {
                "secrets": {"generate": False},
                "postgresql": {"auth": {"existingSecret": "pg"}},
                "redis": {"auth": {"existingSecret": "r"}},
                "webhook": {"existingSecret": "w"},
                "apiAuth": {"devToken": {"enabled": True}},
            },
            "apiAuth.devToken.existingSecret",
        ),
        ({"secrets": {"generate": False}}, "postgresql.auth.existingSecret"),
        ({"llm": {"model": "other"}}, "must equal vllm.model.servedName"),
        ({"llm": {"contextTokens": 65536}}, "exceeds vllm.maxModelLen"),
        ({"vllm": {"tensorParallelSize": 2, "gpu": {"count": 1}}}, "vllm.gpu.count"),
    ],
)
def test_inconsistent_values_fail_with_a_clear_message(
    chart: helm.Chart, override: dict[str, Any], message: str
) -> None:
    """Values that pass the schema but cannot work together fail the render and say what to set."""
    with pytest.raises(helm.HelmRenderError, match=re.escape(message)):
        render(chart, override)


# ---------------------------------------------------------------- pods and containers


def test_every_container_is_hardened(default_render: Rendered, production_render: Rendered) -> None:
    """Resources, non-root, read-only root, no capabilities, seccomp, no token, probes where long-running."""
    for label, rendered in _both(default_render, production_render):
        for obj in workloads(rendered):
            where = f"{label} {obj['kind']}/{obj['metadata']['name']}"
            spec = pod_spec(obj)
            assert spec["automountServiceAccountToken"] is False, where
            assert spec["securityContext"]["runAsNonRoot"] is True, where
            assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
            volumes = {v["name"]: v for v in spec.get("volumes", [])}
            for role, c in containers(obj):
                cwhere = f"{where} container {c['name']}"
                res = c["resources"]
                for part in ("requests", "limits"):
                    assert {"cpu", "memory"} <= set(res.get(part, {})), f"{cwhere}: {part}"
                sc = c["securityContext"]
                assert sc["runAsNonRoot"] is True, cwhere
                assert sc["runAsUser"] >= 10000, cwhere
                assert sc["readOnlyRootFilesystem"] is True, cwhere
                assert sc["allowPrivilegeEscalation"] is False, cwhere
                assert sc["privileged"] is False, cwhere
                assert sc["capabilities"] == {"drop": ["ALL"]}, cwhere
                assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, cwhere
                tmp = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
                assert tmp and "emptyDir" in volumes[tmp[0]["name"]], f"{cwhere}: /tmp must be an emptyDir"
                if obj["kind"] in LONG_RUNNING_KINDS and role == "main":
                    assert "livenessProbe" in c and "readinessProbe" in c, f"{cwhere}: probes"


def test_service_probes(default_render: Rendered) -> None:
    """API probes: /healthz and /readyz; the worker answers a Celery ping; vLLM has a long startup probe."""
    api = pod_spec(default_render.one("Deployment", "api"))["containers"][0]
    assert api["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert api["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert api["ports"] == [{"name": "http", "containerPort": 8400, "protocol": "TCP"}]
    worker = pod_spec(default_render.one("Deployment", "worker"))["containers"][0]
    assert "inspect ping" in worker["livenessProbe"]["exec"]["command"][-1]
    vllm = pod_spec(default_render.one("Deployment", "vllm"))["containers"][0]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert vllm[probe]["httpGet"] == {"path": "/health", "port": "http"}
    startup = vllm["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 1200, "weights take minutes to load"


def test_worker_grace_outlasts_an_llm_call(default_render: Rendered) -> None:
    """A rolling update lets the running job finish (warm shutdown, acks_late)."""
    spec = pod_spec(default_render.one("Deployment", "worker"))
    config = default_render.one("ConfigMap", "config")["data"]
    assert spec["terminationGracePeriodSeconds"] > float(config["EHRSUM_LLM_TIMEOUT_S"])


def test_beat_is_a_singleton(default_render: Rendered) -> None:
    """Two beats would schedule every poll twice: one replica, Recreate."""
    beat = default_render.one("Deployment", "beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    assert pod_spec(beat)["containers"][0]["args"][0] == "beat"


def test_config_changes_roll_the_pods(chart: helm.Chart, default_render: Rendered) -> None:
    """The pods carry a checksum of the ConfigMap, so `helm upgrade` with new config restarts them."""
    before = default_render.one("Deployment", "api")["spec"]["template"]["metadata"]["annotations"]
    after_render = render(chart, {"config": {"logLevel": "DEBUG"}})
    after = after_render.one("Deployment", "api")["spec"]["template"]["metadata"]["annotations"]
    assert before["checksum/config"] != after["checksum/config"]


# ---------------------------------------------------------------- network policies


def test_every_pod_is_under_a_network_policy(default_render: Rendered, production_render: Rendered) -> None:
    """Each workload's pods are selected by exactly one policy that restricts both directions."""
    for label, rendered in _both(default_render, production_render):
        policies = rendered.of_kind("NetworkPolicy")
        for obj in workloads(rendered):
            pod_labels = obj["spec"]["template"]["metadata"]["labels"]
            selecting = [
                p for p in policies if labels_match(p["spec"]["podSelector"]["matchLabels"], pod_labels)
            ]
            assert len(selecting) == 1, f"{label}: {obj['metadata']['name']} under {len(selecting)} policies"
            assert selecting[0]["spec"]["policyTypes"] == ["Ingress", "Egress"]


def test_egress_goes_only_to_named_destinations(
    default_render: Rendered, production_render: Rendered
) -> None:
    """No egress rule without a destination (that would mean anywhere); stores have no egress, nor vLLM but
    for DNS and the OpenTelemetry collector when the values name one (production's)."""
    for label, rendered in _both(default_render, production_render):
        for policy in rendered.of_kind("NetworkPolicy"):
            for rule in policy["spec"]["egress"]:
                assert rule.get("to"), f"{label}: {policy['metadata']['name']} has an egress rule to anywhere"
                assert rule.get("ports"), (
                    f"{label}: {policy['metadata']['name']} has an egress rule on any port"
                )
            traced = rendered is production_render
            if component_of(policy) in {"postgresql", "redis"} or (
                component_of(policy) == "vllm" and not traced
            ):
                assert policy["spec"]["egress"] == []
            elif component_of(policy) == "vllm":
                ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
                assert ports == {53, 4318}, label


def test_production_egress_is_exactly_the_configured_hosts(production_render: Rendered) -> None:
    """The worker reaches DNS, the DB, Redis, FHIR, the bundled vLLM and the IdP, and nothing else."""
    worker = production_render.one("NetworkPolicy", "worker")
    cidrs = sorted(
        peer["ipBlock"]["cidr"]
        for rule in worker["spec"]["egress"]
        for peer in rule["to"]
        if "ipBlock" in peer
    )
    assert cidrs == ["10.10.1.20/32", "10.10.2.10/32", "10.10.2.20/32", "10.10.3.5/32"]
    pod_targets = [
        peer["podSelector"]["matchLabels"].get("app.kubernetes.io/component", "kube-dns")
        for rule in worker["spec"]["egress"]
        for peer in rule["to"]
        if "podSelector" in peer
    ]
    assert sorted(pod_targets) == ["kube-dns", "vllm"]
    ports = {
        (rule["to"][0].get("ipBlock", {}).get("cidr"), p["port"])
        for rule in worker["spec"]["egress"]
        for p in rule["ports"]
    }
    assert ("10.10.2.10/32", 5432) in ports and ("10.10.2.20/32", 6380) in ports
    migrations = production_render.one("NetworkPolicy", "migrations")
    assert len(migrations["spec"]["egress"]) == 2, "migrations reach DNS and the database only"


def test_api_ingress_only_from_configured_sources(
    default_render: Rendered, production_render: Rendered
) -> None:
    """The API admits the configured CIDRs and peers on its port; by default nothing at all."""
    assert default_render.one("NetworkPolicy", "api")["spec"]["ingress"] == []
    (rule,) = production_render.one("NetworkPolicy", "api")["spec"]["ingress"]
    assert rule["ports"] == [{"port": 8400, "protocol": "TCP"}]
    assert [p["ipBlock"]["cidr"] for p in rule["from"] if "ipBlock" in p] == ["10.20.0.0/24", "10.30.0.0/16"]
    for component in ("worker", "beat", "migrations"):
        assert production_render.one("NetworkPolicy", component)["spec"]["ingress"] == []
    (vllm_rule,) = production_render.one("NetworkPolicy", "vllm")["spec"]["ingress"]
    from_components = [
        p["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        for p in vllm_rule["from"]
        if "podSelector" in p
    ]
    assert from_components == ["api", "worker"]


def test_allow_external_egress_is_explicit(chart: helm.Chart) -> None:
    """Only networkPolicy.allowExternalEgress opens egress to anywhere, and NOTES says so."""
    rendered = render(chart, {"networkPolicy": {"allowExternalEgress": True}})
    assert {} in rendered.one("NetworkPolicy", "worker")["spec"]["egress"]
    assert "egress to ANY address is allowed" in rendered.notes


# ---------------------------------------------------------------- secrets


def _secret_refs(rendered: Rendered) -> set[str]:
    names: set[str] = set()
    for obj in workloads(rendered):
        for _, c in containers(obj):
            for e in env_of(c):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    names.add(ref["name"])
        for v in pod_spec(obj).get("volumes", []):
            if "secret" in v:
                names.add(v["secret"]["secretName"])
    return names


def test_no_secret_is_inline(default_render: Rendered, production_render: Rendered) -> None:
    """Secret-looking variables come from secretKeyRef; URLs carry no password; the ConfigMap holds none."""
    for label, rendered in _both(default_render, production_render):
        for obj in workloads(rendered):
            for _, c in containers(obj):
                for e in env_of(c):
                    if SECRET_NAME.search(e["name"]):
                        assert "secretKeyRef" in e.get("valueFrom", {}), (
                            f"{label}: {c['name']} {e['name']} inline"
                        )
                    value = e.get("value", "")
                    assert not re.search(r"://[^/@\s]*:(?!\$\()[^@/\s]+@", value), (
                        f"{label}: password in {e['name']}"
                    )
        config = rendered.one("ConfigMap", "config")["data"]
        assert not [k for k in config if SECRET_NAME.search(k)]


def test_production_references_only_existing_secrets(production_render: Rendered) -> None:
    """In production the chart creates no Secret and reads only the hospital's own, by name and key."""
    assert production_render.of_kind("Secret") == []
    assert _secret_refs(production_render) == {
        "ehrsum-db",
        "ehrsum-redis",
        "ehrsum-fhir-client",
        "ehrsum-llm",
        "ehrsum-api-auth",
        "ehrsum-webhook",
    }
    api = pod_spec(production_render.one("Deployment", "api"))["containers"][0]
    assert env_value(api, "PGPASSWORD")["valueFrom"]["secretKeyRef"] == {
        "name": "ehrsum-db",
        "key": "password",
    }
    assert env_value(api, "EHRSUM_DATABASE_URL")["value"] == (
        "postgresql+psycopg://ehrsum@pg.hospital.internal:5432/ehrsum?sslmode=verify-full"
    )
    names = [e["name"] for e in env_of(api)]
    assert names.index("EHRSUM_REDIS_PASSWORD") < names.index("EHRSUM_BROKER_URL"), (
        "$(VAR) needs it defined first"
    )
    assert env_value(api, "EHRSUM_BROKER_URL")["value"] == (
        "rediss://:$(EHRSUM_REDIS_PASSWORD)@redis.hospital.internal:6380/0?ssl_cert_reqs=required"
    )
    assert (
        env_value(api, "EHRSUM_FHIR_PRIVATE_KEY_PATH")["value"]
        == "/var/run/secrets/ehrsum/smart/private-key.pem"
    )
    key_volume = [
        v for v in pod_spec(production_render.one("Deployment", "api"))["volumes"] if v["name"] == "smart-key"
    ]
    assert key_volume[0]["secret"]["defaultMode"] == 0o400
    vllm = pod_spec(production_render.one("Deployment", "vllm"))["containers"][0]
    assert env_value(vllm, "VLLM_API_KEY")["valueFrom"]["secretKeyRef"] == {
        "name": "ehrsum-llm",
        "key": "api-key",
    }


def test_trial_secret_is_generated_once_and_kept(default_render: Rendered) -> None:
    """Trial passwords live in one Secret that survives upgrades (lookup) and uninstall (keep)."""
    (secret,) = default_render.of_kind("Secret")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert set(secret["data"]) == {"postgres-password", "redis-password", "webhook-secret"}
    assert _secret_refs(default_render) == {secret["metadata"]["name"]}


# ---------------------------------------------------------------- images


def _images(rendered: Rendered) -> list[str]:
    return [c["image"] for obj in workloads(rendered) for _, c in containers(obj)]


def test_production_images_come_from_the_mirror_by_digest(production_render: Rendered) -> None:
    """global.imageRegistry rewrites every registry; every image is pinned by digest."""
    images = _images(production_render)
    assert images
    for image in images:
        assert image.startswith("registry.hospital.internal/"), image
        assert re.search(r"@sha256:[0-9a-f]{64}$", image), image
    assert (
        "registry.hospital.internal/vllm/vllm-openai@sha256:"
        "0000000000000000000000000000000000000000000000000000000000000003"
    ) in images


def test_default_images_are_pinned_tags(default_render: Rendered) -> None:
    """Defaults use explicit tags (never latest); the service tag follows the chart's appVersion."""
    chart_meta = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    images = set(_images(default_render))
    assert f"ghcr.io/ehr-summarizer/ehrsum:{chart_meta['appVersion']}" in images
    assert f"docker.io/vllm/vllm-openai:{chart_meta['annotations']['ehr-summarizer/vllm-version']}" in images
    assert not [i for i in images if i.endswith(":latest") or ":" not in i.rsplit("/", 1)[-1]]


# ---------------------------------------------------------------- vLLM


VLLM_BASE = {"vllm": {"structuredOutputsConfig": {"backend": "guidance", "disable_any_whitespace": True}}}


@pytest.mark.parametrize(
    ("override", "expected_tail", "gpus"),
    [
        (
            {},
            [
                "--tensor-parallel-size",
                "1",
                "--enable-prefix-caching",
                "--prefix-cache-retention-interval",
                "256",
            ],
            1,
        ),
        (
            {
                "vllm": {
                    "tensorParallelSize": 2,
                    "quantization": "fp8",
                    "kvCacheDtype": "fp8",
                    "prefixCacheRetentionInterval": 512,
                }
            },
            [
                "--tensor-parallel-size",
                "2",
                "--enable-prefix-caching",
                "--prefix-cache-retention-interval",
                "512",
                "--quantization",
                "fp8",
                "--kv-cache-dtype",
                "fp8",
            ],
            2,
        ),
        (
            {"vllm": {"prefixCacheRetentionInterval": 0}},
            ["--tensor-parallel-size", "1", "--enable-prefix-caching"],
            1,
        ),
        (
            {
                "vllm": {
                    "enablePrefixCaching": False,
                    "extraArgs": ["--max-num-seqs", "16"],
                    "gpu": {"count": 4},
                }
            },
            ["--tensor-parallel-size", "1", "--no-enable-prefix-caching"],
            4,
        ),
    ],
    ids=["defaults", "tp2-fp8", "no-retention-for-a-model-without-swa", "no-prefix-cache-extra-args"],
)
def test_vllm_args_follow_values(
    chart: helm.Chart, override: dict[str, Any], expected_tail: list[str], gpus: int
) -> None:
    """`vllm serve` gets exactly the model, name, length, memory, parallelism and quantization asked for."""
    rendered = render(
        chart,
        merge(
            override,
            {"vllm": {"maxModelLen": 16384, "gpuMemoryUtilization": 0.85}, "llm": {"contextTokens": 16384}},
        ),
    )
    c = pod_spec(rendered.one("Deployment", "vllm"))["containers"][0]
    assert c["command"] == ["vllm", "serve"]
    head = [
        "google/medgemma-27b-it",
        "--served-model-name",
        "medgemma-27b",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
    ]
    head += ["--max-model-len", "16384", "--gpu-memory-utilization", "0.85", "--dtype", "bfloat16"]
    tail = ["--structured-outputs-config", '{"backend":"guidance","disable_any_whitespace":true}']
    tail += override.get("vllm", {}).get("extraArgs", [])
    assert c["args"] == head + expected_tail + tail
    assert c["resources"]["limits"]["nvidia.com/gpu"] == gpus
    assert c["resources"]["requests"]["nvidia.com/gpu"] == gpus
    for name, value in {
        "HF_HUB_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "HF_HUB_CACHE": "/models/hub",
    }.items():
        assert env_value(c, name)["value"] == value
    assert env_value(c, "VLLM_HOST_IP")["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}


def test_vllm_weights_and_placement(default_render: Rendered, production_render: Rendered) -> None:
    """Weights mount read-only from a PVC (default) or hostPath (production); GPU nodes by selector/taint."""
    default = pod_spec(default_render.one("Deployment", "vllm"))
    weights = next(v for v in default["volumes"] if v["name"] == "weights")
    assert weights["persistentVolumeClaim"] == {
        "claimName": "ehrsum-ehr-summarizer-vllm-weights",
        "readOnly": True,
    }
    assert (
        default_render.one("PersistentVolumeClaim", "vllm")["metadata"]["annotations"][
            "helm.sh/resource-policy"
        ]
        == "keep"
    )
    prod = pod_spec(production_render.one("Deployment", "vllm"))
    assert next(v for v in prod["volumes"] if v["name"] == "weights")["hostPath"] == {
        "path": "/srv/models",
        "type": "Directory",
    }
    assert prod["containers"][0]["args"][0] == "/models/medgemma-27b-it"
    assert prod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert prod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert prod["runtimeClassName"] == "nvidia"
    shm = next(v for v in prod["volumes"] if v["name"] == "dshm")
    assert shm["emptyDir"]["medium"] == "Memory"


def test_existing_llm_server_instead_of_vllm(chart: helm.Chart) -> None:
    """vllm.enabled=false deploys no vLLM and points the workers at llm.baseUrl."""
    rendered = render(
        chart,
        {
            "vllm": {"enabled": False},
            "llm": {"baseUrl": "https://llm.hospital.internal/v1"},
            "networkPolicy": {"egress": {"llm": {"cidrs": ["10.10.4.30/32"], "ports": [{"port": 443}]}}},
        },
    )
    assert not [o for o in rendered.objects if component_of(o) == "vllm"]
    assert (
        rendered.one("ConfigMap", "config")["data"]["EHRSUM_LLM_BASE_URL"]
        == "https://llm.hospital.internal/v1"
    )
    egress = rendered.one("NetworkPolicy", "worker")["spec"]["egress"]
    assert {"to": [{"ipBlock": {"cidr": "10.10.4.30/32"}}], "ports": [{"port": 443}]} in egress


VLLM_PARSE = """
import json, sys
from vllm.entrypoints.launchers.cli_args import make_arg_parser
from vllm.utils.argparse_utils import FlexibleArgumentParser
out = []
for argv in json.loads(sys.argv[1]):
    a = make_arg_parser(FlexibleArgumentParser()).parse_args(argv)
    so = a.structured_outputs_config
    out.append({"model": a.model_tag, "tp": a.tensor_parallel_size, "q": a.quantization,
                "so": [so.backend, so.disable_any_whitespace]})
print(json.dumps(out))
"""


def test_vllm_args_parse_with_the_pinned_vllm(production_render: Rendered, chart: helm.Chart) -> None:
    """vLLM's own parser (0.32, the pinned version, CPU build here) accepts the rendered arguments."""
    tp2 = render(chart, {"vllm": {"tensorParallelSize": 2, "kvCacheDtype": "fp8"}})
    argvs = [pod_spec(r.one("Deployment", "vllm"))["containers"][0]["args"] for r in (production_render, tp2)]
    parsed = vllm_parse(VLLM_PARSE, argvs)
    assert parsed == [
        {"model": "/models/medgemma-27b-it", "tp": 1, "q": "fp8", "so": ["guidance", True]},
        {"model": "google/medgemma-27b-it", "tp": 2, "q": None, "so": ["guidance", True]},
    ]


# ---------------------------------------------------------------- migrations, scaling, ingress


def test_migrations_hook_runs_before_upgrades(default_render: Rendered, production_render: Rendered) -> None:
    """External DB: before install and upgrade. Bundled DB: after install (it does not exist before)."""
    prod = production_render.one("Job", "migrations")
    assert prod["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert (
        default_render.one("Job", "migrations")["metadata"]["annotations"]["helm.sh/hook"]
        == "post-install,pre-upgrade"
    )
    c = pod_spec(prod)["containers"][0]
    assert c["args"] == ["init-db"]
    assert {e["name"] for e in env_of(c)} == {
        "EHRSUM_LOG_LEVEL",
        "EHRSUM_DATA_DIR",
        "PGPASSWORD",
        "EHRSUM_DATABASE_URL",
    }
    assert pod_spec(prod)["restartPolicy"] == "Never"


def test_autoscaling(production_render: Rendered) -> None:
    """API: HPA on CPU with a PDB; workers: KEDA on the Celery queue lists, no fixed replica count."""
    hpa = production_render.one("HorizontalPodAutoscaler", "api")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "ehrsum-ehr-summarizer-api"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    assert "replicas" not in production_render.one("Deployment", "api")["spec"]
    assert production_render.one("PodDisruptionBudget", "api")["spec"]["minAvailable"] == 1
    scaled = production_render.one("ScaledObject", "worker")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "ehrsum-ehr-summarizer-worker"
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis"
    assert trigger["metadata"] == {
        "address": "redis.hospital.internal:6380",
        "listName": "celery",
        "listLength": "4",
        "databaseIndex": "0",
        "enableTLS": "true",
    }
    assert "replicas" not in production_render.one("Deployment", "worker")["spec"]


def test_ingress_terminates_tls(production_render: Rendered) -> None:
    """The API Ingress serves its host over TLS with the named certificate."""
    ingress = production_render.one("Ingress", "api")
    assert ingress["spec"]["tls"] == [
        {"hosts": ["ehr-summarizer.hospital.internal"], "secretName": "ehr-summarizer-tls"}
    ]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend == {"service": {"name": "ehrsum-ehr-summarizer-api", "port": {"name": "http"}}}


# ---------------------------------------------------------------- configuration names and NOTES


def test_notes_warn_about_insecure_settings(
    chart: helm.Chart, default_render: Rendered, production_render: Rendered
) -> None:
    """Trial defaults get warnings; production values get none; turning off protections is called out."""
    assert "WARNINGS" in default_render.notes
    for phrase in (
        "GENERATED",
        "bundled PostgreSQL",
        "fhir.auth=none",
        "pinned by tag only",
        "apiAuth.existingSecret is empty",
    ):
        assert phrase in default_render.notes
    assert "No insecure settings detected." in production_render.notes
    loose = merge(
        production_values(),
        {
            "networkPolicy": {"enabled": False},
            "fhir": {"baseUrl": "http://fhir.hospital.internal/fhir"},
            "ingress": {"tls": {"enabled": False}},
            "containerSecurityContext": {"readOnlyRootFilesystem": False},
        },
    )
    notes = render(chart, loose).notes
    for phrase in (
        "networkPolicy.enabled=false",
        "plain HTTP",
        "ingress.tls.enabled=false",
        "readOnlyRootFilesystem=false",
    ):
        assert phrase in notes


def test_names_fit_kubernetes_limits(chart: helm.Chart) -> None:
    """A long release name still yields valid object names (63 characters, DNS labels)."""
    long_name = {"fullnameOverride": "a-very-long-release-name-for-an-ehr-summarizer-installation-xyz"}
    rendered = render(chart, long_name)
    for obj in rendered.objects:
        name: str = obj["metadata"]["name"]
        assert len(name) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), name


def _paths(obj: Obj) -> list[str]:
    return [m["mountPath"] for _, c in containers(obj) for m in c.get("volumeMounts", [])]


def test_bundled_stores_write_only_to_their_volumes(default_render: Rendered) -> None:
    """Postgres and Redis run with a read-only root: data, run and tmp are volumes."""
    assert sorted(_paths(default_render.one("StatefulSet", "postgresql"))) == [
        "/tmp",
        "/var/lib/postgresql/data",
        "/var/run/postgresql",
    ]
    assert sorted(_paths(default_render.one("StatefulSet", "redis"))) == ["/data", "/tmp"]
    redis = pod_spec(default_render.one("StatefulSet", "redis"))["containers"][0]
    assert "$(REDIS_PASSWORD)" in redis["args"]
    assert env_value(redis, "REDISCLI_AUTH")["valueFrom"]["secretKeyRef"]["key"] == "redis-password"


def test_api_auth_wiring(chart: helm.Chart, production_render: Rendered) -> None:
    """Production: JWTs checked against the IdP's JWKS, no dev token; a trial dev token is generated."""
    config = production_render.one("ConfigMap", "config")["data"]
    assert config["EHRSUM_API_DEV_TOKEN_ENABLED"] == "false"
    assert config["EHRSUM_API_JWT_ISSUER"] == "https://idp.hospital.internal"
    assert json.loads(config["EHRSUM_API_JWT_ALGORITHMS"]) == ["RS256", "ES256"]
    api = pod_spec(production_render.one("Deployment", "api"))["containers"][0]
    assert env_value(api, "EHRSUM_API_JWKS_URL")["valueFrom"]["secretKeyRef"] == {
        "name": "ehrsum-api-auth",
        "key": "jwks-url",
    }
    assert "EHRSUM_API_DEV_TOKEN" not in {e["name"] for e in env_of(api)}
    trial = render(chart, {"apiAuth": {"devToken": {"enabled": True}}})
    (secret,) = trial.of_kind("Secret")
    assert "api-dev-token" in secret["data"]
    api = pod_spec(trial.one("Deployment", "api"))["containers"][0]
    assert env_value(api, "EHRSUM_API_DEV_TOKEN")["valueFrom"]["secretKeyRef"] == {
        "name": secret["metadata"]["name"],
        "key": "api-dev-token",
    }
    assert trial.one("ConfigMap", "config")["data"]["EHRSUM_API_DEV_TOKEN_ENABLED"] == "true"
    assert "apiAuth.devToken.enabled=true" in trial.notes
