"""The Kubernetes manifests (infra/k8s): both overlays render with kustomize, and every rendered
object validates, the built-in kinds against Kubernetes' own schemas (kubernetes-validate,
strict: an unknown field is an error) and the operators' custom resources against the CRD schemas
of the operators (vendored in infra/k8s/crd-schemas, closed the way the API server prunes and
kubectl's strict field validation refuses unknown fields). Then what the manifests promise:
topics equal to libs/contracts/topics.py, probes on the services' real ports and paths, only
variables their settings read, secrets from the Secret by file, a PDB for every workload, the
autoscalers on the signals docs/kubernetes.md names, and the image compose builds.

kustomize is built from the Go module proxy by infra/scripts/install-k8stools.sh (idempotent;
the first run on a fresh machine takes a minute or two)."""

import copy
import json
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml  # type: ignore[import-untyped]
from aggregator.settings import AggregatorSettings
from contracts.topics import ALL_TOPICS, CLICKS

from tests.conftest import ROOT
from tests.unit.service_settings import all_secret_fields, secret_fields, unknown_variables

pytestmark = pytest.mark.unit

K8S = ROOT / "infra" / "k8s"
OVERLAYS = ("dev", "prod")
KUSTOMIZE = ROOT / ".local" / "tools" / "bin" / "kustomize"
# The oldest Kubernetes the manifests are for (the StatefulSet pod-index label is on by default
# from 1.28, CronJob timeZone from 1.27) and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.utils.latest_version())
SECRETS_MOUNT = "/run/shortlink-secrets/app"
APP_IMAGE = "shortlink/app"
# name -> (settings field of its port, probes expected); the relay serves no HTTP.
HTTP_SERVICES = {
    "redirect": "REDIRECT_PORT",
    "shorten": "SHORTEN_PORT",
    "analytics": "ANALYTICS_PORT",
    "aggregator": "AGGREGATOR_WEB_PORT",
}


def ensure_kustomize() -> Path:
    done = subprocess.run(
        ["bash", str(ROOT / "infra" / "scripts" / "install-k8stools.sh")], capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return KUSTOMIZE


def build(path: Path) -> list[dict[str, Any]]:
    done = subprocess.run([str(ensure_kustomize()), "build", str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"kustomize build {path}: {done.stderr}"
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    return tuple(build(K8S / "overlays" / overlay))


def objects(overlay: str, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in rendered(overlay) if o["kind"] == kind}


# ---------------------------------------------------------------- schema validation


def closed(schema: Any) -> Any:
    """The schema with every object that lists its properties closed to others (what the API
    server prunes silently, and `kubectl apply`'s default strict validation refuses)."""
    if isinstance(schema, dict):
        schema = {k: closed(v) for k, v in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [closed(v) for v in schema]
    return schema


@cache
def crd_validator(api_version: str, kind: str) -> jsonschema.Draft4Validator:
    group, _, version = api_version.rpartition("/")
    path = K8S / "crd-schemas" / f"{group}_{kind}_{version}.json"
    assert path.exists(), f"no CRD schema for {api_version} {kind} (vendor it into {path.parent})"
    schema = closed(json.loads(path.read_text()))
    # metadata is the API server's ObjectMeta, not part of the CRD's schema.
    schema.setdefault("properties", {})["metadata"] = {"type": "object"}
    schema["properties"]["apiVersion"] = {"type": "string"}
    schema["properties"]["kind"] = {"type": "string"}
    return jsonschema.Draft4Validator(schema)


def is_builtin(obj: dict[str, Any]) -> bool:
    group = obj["apiVersion"].rpartition("/")[0]
    return group == "" or group.endswith(".k8s.io") or "." not in group


def problems(obj: dict[str, Any]) -> list[str]:
    """Why `obj` would be refused (empty: valid)."""
    name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    if is_builtin(obj):
        found = []
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                found.append(f"{name} (Kubernetes {version}): {'/'.join(map(str, error.path))}: {error.message}")
        return found
    validator = crd_validator(obj["apiVersion"], obj["kind"])
    return [f"{name}: {'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_is_valid(overlay: str) -> None:
    found = [p for obj in rendered(overlay) for p in problems(obj)]
    assert found == []
    kinds = {o["kind"] for o in rendered(overlay)}
    # The whole stack is there: the app, its autoscalers and the operators' resources.
    assert {
        "Deployment",
        "StatefulSet",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "Job",
        "CronJob",
        "ConfigMap",
        "NetworkPolicy",
        "Namespace",
        "ScaledObject",
        "PodMonitor",
        "Kafka",
        "KafkaNodePool",
        "KafkaTopic",
        "Cluster",
        "Pooler",
        "ClickHouseInstallation",
        "ClickHouseKeeperInstallation",
        "RedisReplication",
        "RedisSentinel",
    } <= kinds


def test_validation_refuses_a_broken_builtin_and_a_broken_custom_resource() -> None:
    misspelt = copy.deepcopy(objects("prod", "Deployment")["shorten"])
    misspelt["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pth"] = "/readyz"
    mistyped = copy.deepcopy(objects("prod", "Deployment")["shorten"])
    mistyped["spec"]["replicas"] = "two"
    budget = copy.deepcopy(objects("prod", "PodDisruptionBudget")["shorten"])
    del budget["spec"]["selector"]["matchLabels"]
    budget["spec"]["selector"]["matchLabel"] = {"app": "x"}
    for broken in (misspelt, mistyped, budget):
        assert len(problems(broken)) == len(KUBERNETES_VERSIONS), broken["kind"]  # refused by every version
    topic = copy.deepcopy(objects("prod", "KafkaTopic")["clicks"])
    topic["spec"]["partitons"] = 6
    pool = copy.deepcopy(objects("prod", "KafkaNodePool")["brokers"])
    pool["spec"]["roles"] = ["leader"]
    scaled = copy.deepcopy(objects("prod", "ScaledObject")["aggregator"])
    del scaled["spec"]["scaleTargetRef"]
    for broken in (topic, pool, scaled):
        assert problems(broken), broken["kind"]


def test_a_broken_overlay_does_not_render(tmp_path: Path) -> None:
    overlay = tmp_path / "broken"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        f"resources: [{K8S / 'base'}]\n"
        "patches:\n"
        "  - target: {kind: Deployment, name: shorten}\n"
        "    patch: '[{op: replace, path: /spec/template/spec/nosuch/0, value: 1}]'\n"
    )
    done = subprocess.run([str(ensure_kustomize()), "build", str(overlay)], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0


# ---------------------------------------------------------------- topics


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_kafka_topics_are_those_of_the_contracts(overlay: str) -> None:
    topics = objects(overlay, "KafkaTopic")
    assert {t["spec"]["topicName"] for t in topics.values()} == {t.name for t in ALL_TOPICS}
    cluster = next(iter(objects(overlay, "Kafka")))
    for declared in ALL_TOPICS:
        spec = topics[declared.name]["spec"]
        assert spec["partitions"] == declared.partitions, declared.name
        assert spec["config"] == declared.config, declared.name
        assert topics[declared.name]["metadata"]["labels"]["strimzi.io/cluster"] == cluster
    brokers = sum(
        p["spec"]["replicas"] for p in objects(overlay, "KafkaNodePool").values() if "broker" in p["spec"]["roles"]
    )
    config = objects(overlay, "Kafka")[cluster]["spec"]["kafka"]["config"]
    for topic in topics.values():
        assert topic["spec"]["replicas"] == config["default.replication.factor"] <= brokers
    if overlay == "prod":  # the cluster profile's durability
        assert (brokers, config["default.replication.factor"], config["min.insync.replicas"]) == (3, 3, 2)


def test_the_topics_file_is_generated_from_the_contracts() -> None:
    done = subprocess.run(
        ["python", str(K8S / "render_topics.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "libs"), "PATH": _path()},
    )
    assert done.returncode == 0, done.stderr


def _path() -> str:
    import os
    import sys

    return f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"


# ---------------------------------------------------------------- workloads


def app_containers(overlay: str) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """name -> (pod spec, container) of every container running the app image."""
    found = {}
    for obj in rendered(overlay):
        spec = obj.get("spec", {})
        pod = (spec.get("jobTemplate", {}).get("spec", spec)).get("template", {}).get("spec")
        for container in (pod or {}).get("containers", []):
            if container["image"].rpartition(":")[0].endswith(APP_IMAGE):
                found[obj["metadata"]["name"]] = (pod, container)
    return found


def container_environment(overlay: str, container: dict[str, Any]) -> dict[str, str]:
    maps = objects(overlay, "ConfigMap")
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(maps[source["configMapRef"]["name"]]["data"])
    for variable in container.get("env", []):
        env[variable["name"]] = variable.get("value", "<from field>")
    return env


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_app_runs_the_image_compose_builds_under_its_init(overlay: str) -> None:
    containers = app_containers(overlay)
    assert set(containers) == {
        "redirect",
        "shorten",
        "shorten-relay",
        "aggregator",
        "analytics",
        "migrate",
        "retention",
    }
    compose = yaml.safe_load((ROOT / "compose" / "docker-compose.yml").read_text())
    built = compose["services"]["secrets"]["image"]
    for name, (_, container) in containers.items():
        if overlay == "dev":  # the image compose builds, loaded into the dev cluster
            assert container["image"] == built, name
        # `args`, never `command`: a command would replace the image's entrypoint (tini).
        assert "command" not in container and container["args"][:2] == ["python", "-m"], name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_variable_is_read_by_the_settings_of_the_command(overlay: str) -> None:
    for name, (_, container) in app_containers(overlay).items():
        env = container_environment(overlay, container)
        assert unknown_variables(container["args"], set(env)) == set(), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_files_of_the_secret_never_values(overlay: str) -> None:
    for name, (pod, container) in app_containers(overlay).items():
        env = container_environment(overlay, container)
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        secret = volumes[mounts[SECRETS_MOUNT]["name"]]["secret"]
        assert secret["secretName"] == "shortlink-app" and mounts[SECRETS_MOUNT]["readOnly"] is True, name
        given = {k.removesuffix("_FILE") for k, v in env.items() if k.endswith("_FILE") and v.startswith(SECRETS_MOUNT)}
        # The pod mounts exactly the files its settings name: no secret it does not read.
        named = {v.removeprefix(f"{SECRETS_MOUNT}/") for k, v in env.items() if k.endswith("_FILE")}
        assert {item["path"] for item in secret["items"]} == named, name
        assert all(item["key"] == item["path"] for item in secret["items"]), name
        assert secret_fields(container["args"]) <= given, name
        assert (given & all_secret_fields(container["args"])) - secret_fields(container["args"]) == set(), name
        for key in ("POSTGRES_DSN", "REDIS_URL", "REDIS_REPLICA_URL", "CLICKHOUSE_URL"):
            assert key in given and key not in env, (name, key)
    # Session state (the relay's advisory lock, DDL) goes to the primary, not through PgBouncer's
    # transaction pooling; everything else through the pooler.
    for name, (_, container) in app_containers(overlay).items():
        dsn = container_environment(overlay, container)["POSTGRES_DSN_FILE"]
        direct = name in ("shorten-relay", "migrate")
        assert dsn == f"{SECRETS_MOUNT}/{'postgres-direct-dsn' if direct else 'postgres-dsn'}", name
    for obj in rendered(overlay):  # no Secret object with values anywhere in the manifests
        assert obj["kind"] != "Secret", obj["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_services_probe_their_own_health_routes_on_their_ports(overlay: str) -> None:
    containers = app_containers(overlay)
    for name, port_setting in HTTP_SERVICES.items():
        _, container = containers[name]
        port = {p["name"]: p["containerPort"] for p in container["ports"]}["http"]
        assert str(port) == container_environment(overlay, container)[port_setting], name
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}, name
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}, name
        host = port_setting.replace("_PORT", "_HOST")
        assert container_environment(overlay, container)[host] == "0.0.0.0", name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_has_requests_and_a_disruption_budget(overlay: str) -> None:
    budgets = [b["spec"]["selector"]["matchLabels"] for b in objects(overlay, "PodDisruptionBudget").values()]
    for kind in ("Deployment", "StatefulSet"):
        for name, workload in objects(overlay, kind).items():
            labels = workload["spec"]["template"]["metadata"]["labels"]
            assert any(b.items() <= labels.items() for b in budgets), f"{kind}/{name} has no PodDisruptionBudget"
            for container in workload["spec"]["template"]["spec"]["containers"]:
                requests = container["resources"]["requests"]
                assert {"cpu", "memory"} <= set(requests) and "memory" in container["resources"]["limits"], name


# ---------------------------------------------------------------- autoscaling


def adapter_metrics(overlay: str) -> set[str]:
    rules = yaml.safe_load(objects(overlay, "ConfigMap")["prometheus-adapter-rules"]["data"]["rules.yaml"])
    return {rule["name"]["as"] for rule in rules["rules"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_redirect_and_shorten_scale_separately_on_cpu_and_their_own_p95(overlay: str) -> None:
    hpas = objects(overlay, "HorizontalPodAutoscaler")
    served = adapter_metrics(overlay)
    for name, kind, metric in (
        ("redirect", "StatefulSet", "redirect_request_duration_seconds_p95"),
        ("shorten", "Deployment", "shorten_create_duration_seconds_p95"),
    ):
        hpa = hpas[name]["spec"]
        assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": kind, "name": name}
        assert name in objects(overlay, kind)
        signals = {
            (m["type"], m.get("resource", m.get("pods", {})).get("name") or m["pods"]["metric"]["name"])
            for m in hpa["metrics"]
        }
        assert signals == {("Resource", "cpu"), ("Pods", metric)}, name
        assert metric in served, f"prometheus-adapter has no rule serving {metric}"
        assert hpa["minReplicas"] <= hpa["maxReplicas"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_aggregator_scales_on_its_consumer_lag_up_to_the_partitions(overlay: str) -> None:
    scaled = objects(overlay, "ScaledObject")["aggregator"]["spec"]
    assert scaled["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "aggregator"}
    (trigger,) = scaled["triggers"]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["consumerGroup"] == AggregatorSettings().aggregator_app_id
    assert trigger["metadata"]["topic"] == CLICKS.name
    bootstrap = container_environment(overlay, app_containers(overlay)["aggregator"][1])["KAFKA_BOOTSTRAP_SERVERS"]
    assert trigger["metadata"]["bootstrapServers"] == bootstrap
    assert scaled["minReplicaCount"] <= scaled["maxReplicaCount"] <= CLICKS.partitions
    if overlay == "prod":  # more partitions in libs/contracts/topics.py must raise the ceiling here too
        assert scaled["maxReplicaCount"] == CLICKS.partitions
    assert "aggregator" not in objects(overlay, "HorizontalPodAutoscaler")  # KEDA owns its HPA
