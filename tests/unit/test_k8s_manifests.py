"""The kustomize overlays render, and what they render is locked down and complete.

`kubectl kustomize` prints YAML and PyYAML is not a dependency, so the rendered
stream is piped through `kubectl annotate --local ... -o json`, which parses it with
kubectl's own decoder without contacting a cluster and prints one JSON object per
document. (`kubectl create --dry-run=client` would need the API server for its
REST mapping.) The annotation removed is one that never exists, so the objects come
out unchanged apart from an empty `annotations` map.

Skipped only when kubectl is missing outside CI; with CI set a missing kubectl fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from services.registry import SERVICES as REGISTRY

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ROOT / "deploy" / "k8s" / "overlays"
NAMESPACE = "backcrm"
PORT = 50051
UID = 10001
SHUTDOWN_GRACE_SECONDS = 10

# registered service -> the name its readiness probe asks grpc.health.v1 about
SERVICES = {name: entry.contract.full_name for name, entry in REGISTRY.items()}
WORKLOADS = {"Deployment", "StatefulSet", "Job"}
CLUSTER_SCOPED = {"Namespace"}

Obj = dict[str, Any]


def _kubectl() -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if os.environ.get("CI"):
            pytest.fail("kubectl is required in CI to validate deploy/k8s")
        pytest.skip("kubectl not installed")
    return kubectl


@cache
def _render(overlay: str) -> tuple[Obj, ...]:
    kubectl = _kubectl()
    built = subprocess.run(
        [kubectl, "kustomize", str(OVERLAYS / overlay)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert built.returncode == 0, f"kubectl kustomize {overlay} failed:\n{built.stderr}"
    parsed = subprocess.run(
        [kubectl, "annotate", "--local", "-f", "-", "-o", "json", "backcrm.invalid/none-"],
        input=built.stdout,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert parsed.returncode == 0, f"rendered {overlay} does not parse:\n{parsed.stderr}"
    objects = list(_json_stream(parsed.stdout))
    documents = sum(1 for line in built.stdout.splitlines() if line.startswith("kind: "))
    assert len(objects) == documents, "some rendered documents were lost in parsing"
    return tuple(objects)


def _json_stream(text: str) -> Iterator[Obj]:
    decoder = json.JSONDecoder()
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            return
        obj, pos = decoder.raw_decode(text, pos)
        # A single document comes out bare, several may come out as a List.
        yield from obj["items"] if obj.get("kind") == "List" else [obj]


def _of_kind(objects: tuple[Obj, ...], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def _pod_spec(workload: Obj) -> Obj:
    spec: Obj = workload["spec"]["template"]["spec"]
    return spec


def _containers(workload: Obj) -> list[Obj]:
    spec = _pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def _is_ours(container: Obj) -> bool:
    return container["image"].rsplit("/", 1)[-1].split(":")[0].split("@")[0] == "backcrm"


@pytest.fixture(params=["dev", "prod"])
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def objects(overlay: str) -> tuple[Obj, ...]:
    return _render(overlay)


def test_every_object_is_labelled_and_namespaced(objects: tuple[Obj, ...]) -> None:
    for o in objects:
        where = f"{o['kind']}/{o['metadata']['name']}"
        labels = o["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/name"), f"{where} has no app.kubernetes.io/name"
        assert labels.get("app.kubernetes.io/part-of") == "backcrm", where
        if o["kind"] not in CLUSTER_SCOPED:
            assert o["metadata"].get("namespace") == NAMESPACE, where
    namespaces = _of_kind(objects, "Namespace")
    assert namespaces[NAMESPACE]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == (
        "restricted"
    )


def test_each_service_has_its_full_set(objects: tuple[Obj, ...]) -> None:
    for kind in ("Deployment", "Service", "ServiceAccount", "HorizontalPodAutoscaler"):
        missing = set(SERVICES) - set(_of_kind(objects, kind))
        assert not missing, f"no {kind} for {sorted(missing)}"
    missing = set(SERVICES) - set(_of_kind(objects, "PodDisruptionBudget"))
    assert not missing, f"no PodDisruptionBudget for {sorted(missing)}"
    for kind in ("Deployment", "Service", "ServiceAccount"):
        for name in SERVICES:
            labels = _of_kind(objects, kind)[name]["metadata"]["labels"]
            assert labels["app.kubernetes.io/name"] == name
            assert labels["app.kubernetes.io/component"] == "grpc-server"
    servers = {
        name
        for name, deployment in _of_kind(objects, "Deployment").items()
        if deployment["metadata"]["labels"].get("app.kubernetes.io/component") == "grpc-server"
    }
    assert servers == set(SERVICES), "only registered services are deployed"


def test_every_container_is_locked_down(objects: tuple[Obj, ...]) -> None:
    workloads = [o for o in objects if o["kind"] in WORKLOADS]
    assert workloads
    for w in workloads:
        pod = _pod_spec(w)
        pod_sc = pod.get("securityContext", {})
        assert pod["automountServiceAccountToken"] is False, w["metadata"]["name"]
        for c in _containers(w):
            where = f"{w['kind']}/{w['metadata']['name']}/{c['name']}"
            sc = c.get("securityContext", {})
            assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {}))
            assert seccomp.get("type") == "RuntimeDefault", where
            uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
            assert uid, f"{where} runs as root (or as the image's user, unverified)"
            if _is_ours(c):
                assert uid == UID, where
                assert pod_sc.get("runAsUser") == UID, where


def test_every_container_has_requests_and_limits(objects: tuple[Obj, ...]) -> None:
    for w in (o for o in objects if o["kind"] in WORKLOADS):
        for c in _containers(w):
            where = f"{w['kind']}/{w['metadata']['name']}/{c['name']}"
            resources = c.get("resources", {})
            for bound in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    assert resources.get(bound, {}).get(resource), f"{where}: {bound}.{resource}"


def test_our_containers_write_only_to_emptydirs(objects: tuple[Obj, ...]) -> None:
    for w in (o for o in objects if o["kind"] in WORKLOADS):
        volumes = {v["name"]: v for v in _pod_spec(w).get("volumes", [])}
        for c in filter(_is_ours, _containers(w)):
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            for path in ("/tmp", "/var/lib/backcrm"):
                assert path in mounts, f"{w['metadata']['name']}: nothing mounted at {path}"
                assert "emptyDir" in volumes[mounts[path]], f"{path} is not an emptyDir"


def test_services_have_grpc_probes(objects: tuple[Obj, ...]) -> None:
    deployments = _of_kind(objects, "Deployment")
    for name, full_name in SERVICES.items():
        (container,) = _pod_spec(deployments[name])["containers"]
        assert container["args"] == ["serve", name]
        assert {"name": "grpc", "containerPort": PORT, "protocol": "TCP"} in container["ports"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            grpc = container.get(probe, {}).get("grpc")
            assert grpc, f"{name}: {probe} is not a native grpc probe"
            assert grpc["port"] == PORT, f"{name}: {probe} port"
        assert container["readinessProbe"]["grpc"]["service"] == full_name
        # Liveness asks about the server as a whole, not the service's dependencies.
        assert container["livenessProbe"]["grpc"].get("service", "") == ""


def test_services_expose_grpc_ports(objects: tuple[Obj, ...]) -> None:
    services = _of_kind(objects, "Service")
    deployments = _of_kind(objects, "Deployment")
    for name in SERVICES:
        (port,) = services[name]["spec"]["ports"]
        assert port["name"] == "grpc"
        assert port["port"] == PORT
        assert port["appProtocol"] == "grpc"
        assert port["targetPort"] in ("grpc", PORT)
        selector = services[name]["spec"]["selector"]
        pod_labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= pod_labels.items(), f"Service {name} selects no pods"


def test_env_comes_from_the_shared_configmap_and_secret(
    overlay: str, objects: tuple[Obj, ...]
) -> None:
    (config,) = [
        o
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("backcrm-config")
    ]
    assert config["data"]["BACKCRM_ADDRESS"] == f"0.0.0.0:{PORT}"
    assert config["data"]["BACKCRM_VAR_DIR"] == "/var/lib/backcrm"
    assert config["data"]["BACKCRM_OTEL_EXPORTER"] in {"none", "console", "otlp"}
    assert float(config["data"]["BACKCRM_SHUTDOWN_GRACE_SECONDS"]) == SHUTDOWN_GRACE_SECONDS
    secrets = _of_kind(objects, "Secret")
    for w in (o for o in objects if o["kind"] in WORKLOADS):
        for c in filter(_is_ours, _containers(w)):
            refs = c["envFrom"]
            assert {"configMapRef": {"name": config["metadata"]["name"]}} in refs
            (secret_ref,) = [r["secretRef"]["name"] for r in refs if "secretRef" in r]
            assert secret_ref.startswith("backcrm-secrets")
            if overlay == "prod":
                # Pre-existing, referenced by its plain name.
                assert secret_ref == "backcrm-secrets"
            else:
                assert {"DATABASE_URL", "REDIS_URL", "BACKCRM_AUTH_TOKENS"} <= set(
                    secrets[secret_ref]["data"]
                )


def test_pods_outlive_the_drain(objects: tuple[Obj, ...]) -> None:
    deployments = _of_kind(objects, "Deployment")
    for name in SERVICES:
        pod = _pod_spec(deployments[name])
        (container,) = pod["containers"]
        pre_stop = container.get("lifecycle", {}).get("preStop", {})
        sleep = int(pre_stop.get("exec", {}).get("command", ["sleep", "0"])[-1])
        assert pod["terminationGracePeriodSeconds"] > SHUTDOWN_GRACE_SECONDS + sleep, name


def test_service_accounts_carry_no_token(objects: tuple[Obj, ...]) -> None:
    accounts = _of_kind(objects, "ServiceAccount")
    for w in (o for o in objects if o["kind"] in WORKLOADS):
        name = _pod_spec(w).get("serviceAccountName")
        if name is not None:
            assert accounts[name]["automountServiceAccountToken"] is False, name
    for name in SERVICES:
        assert accounts[name]["automountServiceAccountToken"] is False


def test_autoscaling_and_disruption_budgets(overlay: str, objects: tuple[Obj, ...]) -> None:
    hpas = _of_kind(objects, "HorizontalPodAutoscaler")
    pdbs = _of_kind(objects, "PodDisruptionBudget")
    deployments = _of_kind(objects, "Deployment")
    for name in SERVICES:
        hpa = hpas[name]
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        (metric,) = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"
        assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
        # The HPA alone owns the replica count.
        assert "replicas" not in deployments[name]["spec"], name
        pdb = pdbs[name]
        assert pdb["apiVersion"] == "policy/v1"
        assert pdb["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": name}
        if overlay == "prod":
            assert hpa["spec"]["minReplicas"] >= 2
            assert hpa["spec"]["maxReplicas"] == 10
            assert pdb["spec"]["minAvailable"] == 1
        else:
            assert hpa["spec"]["minReplicas"] == hpa["spec"]["maxReplicas"] == 1


def test_migrations_run_once_as_a_job(objects: tuple[Obj, ...]) -> None:
    (job,) = _of_kind(objects, "Job").values()
    (container,) = _pod_spec(job)["containers"]
    assert container["args"] == ["migrate"]
    assert _pod_spec(job)["restartPolicy"] == "Never"
    assert job["spec"].get("parallelism", 1) == 1
    for name in SERVICES:
        assert not _pod_spec(_of_kind(objects, "Deployment")[name]).get("initContainers")


def test_dev_runs_its_own_storage() -> None:
    objects = _render("dev")
    assert {"postgres", "redis"} <= set(_of_kind(objects, "StatefulSet"))
    assert {"postgres", "redis"} <= set(_of_kind(objects, "Service"))


def test_dev_redis_persists_what_the_outbox_hands_it() -> None:
    """The outbox deletes a row once XADD returns: Redis must keep the event (AOF, fsync every
    second, on a volume) and must never evict a stream to make room."""
    redis = _of_kind(_render("dev"), "StatefulSet")["redis"]
    (container,) = _containers(redis)
    args = container["args"]
    settings = dict(zip(args[::2], args[1::2], strict=True))
    assert settings["--appendonly"] == "yes"
    assert settings["--appendfsync"] == "everysec"
    assert settings["--maxmemory-policy"] in ("noeviction", "volatile-lru", "volatile-lfu")
    (claim,) = redis["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == "/data"  # the AOF outlives the pod


def test_prod_is_pinned_spread_and_brings_no_secrets() -> None:
    objects = _render("prod")
    assert not _of_kind(objects, "Secret"), "prod must reference the existing Secret"
    assert not _of_kind(objects, "StatefulSet"), "prod uses external PostgreSQL"
    for w in (o for o in objects if o["kind"] in WORKLOADS):
        for c in _containers(w):
            image = c["image"]
            tag = image.rsplit("/", 1)[-1].partition(":")[2]
            assert "@sha256:" in image or (tag and tag != "latest"), f"{image} is not pinned"
    deployments = _of_kind(objects, "Deployment")
    for name in SERVICES:
        spread = _pod_spec(deployments[name]).get("topologySpreadConstraints", [])
        keys = {s["topologyKey"] for s in spread}
        assert {"kubernetes.io/hostname", "topology.kubernetes.io/zone"} <= keys, name
    config = next(o for o in objects if o["kind"] == "ConfigMap")
    assert config["data"]["BACKCRM_OTEL_EXPORTER"] == "otlp"
    policies = _of_kind(objects, "NetworkPolicy")
    ingress = policies["backcrm-grpc-servers"]["spec"]["ingress"]
    assert [p["port"] for rule in ingress for p in rule["ports"]] == [PORT]
