"""deploy/k8s: the kustomize base, every manifest parsed and held to the deployment rules.

A Deployment per service (the one image, `switchboard <service>`, liveness on
/healthz, readiness on /readyz, a startup probe, resources, a non-root
security context, the environment from the ConfigMap and the Secret), a
Service per Deployment, HorizontalPodAutoscalers for ingress and router,
a PodDisruptionBudget for every Deployment, the nginx edge rendered by the
same code as compose's, and no Kafka, PostgreSQL or ClickHouse (they are
outside the base). `kubectl kustomize` builds it where a kubectl is
installed (Debian's kubernetes-client when none is).
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from typing import Any

import pytest
import yaml

from tests.deploy.tools import (
    DEPLOY,
    K8S,
    ROOT,
    config_data,
    deployed_services,
    ensure_binary,
    k8s_by_kind,
    k8s_manifests,
    secret_data,
)

# Readiness on /healthz rather than /readyz, and why: their /readyz fails while a
# dependency is down that they are built to outlast (ingress: its spool; router:
# its in-memory routing table, loaded before it serves, and its outbox).
READY_ON_HEALTHZ = {
    "ingress": "Kafka down: webhooks go to the spool",
    "router": "Kafka or PostgreSQL down: routes from memory, events to the outbox",
}
AUTOSCALED = {"ingress", "router"}
# Values in the Secret, never in the ConfigMap.
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|_KEYS$|DATABASE_URL$|^CLICKHOUSE_URL$|^SMTP_URL$")
IMAGE_USER = 10001


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    found: dict[str, Any] = containers[0]
    return found


def service_port(service: str) -> int:
    return int(config_data()[f"{service.upper()}_BIND"].rpartition(":")[2])


def test_the_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    assert kustomization["namespace"] == "switchboard"


def test_every_manifest_names_its_kind_and_api_version() -> None:
    for doc in k8s_manifests():
        assert doc.get("apiVersion") and doc.get("kind") and doc["metadata"].get("name"), doc


@pytest.mark.parametrize("service", sorted(deployed_services()))
def test_a_deployment_per_service(service: str) -> None:
    deployment = k8s_by_kind()["Deployment"][service]
    main = container(deployment)
    assert main["image"] == "switchboard"
    assert main["args"] == [service]
    assert "command" not in main, "the image's entrypoint is `switchboard`"
    sources = {next(iter(ref)): ref[next(iter(ref))]["name"] for ref in main["envFrom"]}
    assert sources == {"configMapRef": "switchboard-env", "secretRef": "switchboard-secrets"}
    assert main["ports"] == [{"name": "http", "containerPort": service_port(service)}]


@pytest.mark.parametrize("service", sorted(deployed_services()))
def test_probes_liveness_healthz_readiness_readyz(service: str) -> None:
    main = container(k8s_by_kind()["Deployment"][service])
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert main["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    ready = "/healthz" if service in READY_ON_HEALTHZ else "/readyz"
    assert main["readinessProbe"]["httpGet"] == {"path": ready, "port": "http"}


def test_the_readiness_exceptions_are_explained_where_they_are() -> None:
    for service in READY_ON_HEALTHZ:
        text = (K8S / f"{service}.yaml").read_text()
        assert "Ready is /healthz, not /readyz" in text
        assert "ServiceNotReady" in text


@pytest.mark.parametrize("service", sorted(deployed_services() | {"edge"}))
def test_resources_and_a_non_root_security_context(service: str) -> None:
    spec = k8s_by_kind()["Deployment"][service]["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == IMAGE_USER
    for each in spec.get("initContainers", []) + spec["containers"]:
        resources = each["resources"]
        for part in ("requests", "limits"):
            assert set(resources[part]) == {"cpu", "memory"}, f"{service}/{each['name']}"
        context = each["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert context["readOnlyRootFilesystem"] is True


def test_the_image_user_is_the_manifests_user() -> None:
    assert f"--uid {IMAGE_USER} " in (DEPLOY / "Dockerfile").read_text()


def test_every_deployment_has_a_service_and_a_disruption_budget() -> None:
    kinds = k8s_by_kind()
    for name, deployment in kinds["Deployment"].items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items(), name
        service = kinds["Service"][name]
        assert service["spec"]["selector"] == selector
        port = service["spec"]["ports"][0]
        assert port["targetPort"] == "http"
        budget = kinds["PodDisruptionBudget"][name]
        assert budget["spec"]["selector"]["matchLabels"] == selector
        assert budget["spec"].get("maxUnavailable") or budget["spec"].get("minAvailable")
    for name in deployed_services():
        assert kinds["Service"][name]["spec"]["ports"][0]["port"] == service_port(name)


def test_ingress_and_router_scale_on_cpu() -> None:
    kinds = k8s_by_kind()
    assert set(kinds["HorizontalPodAutoscaler"]) == AUTOSCALED
    for name, hpa in kinds["HorizontalPodAutoscaler"].items():
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
        assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
        # The autoscaler owns the count; a fixed one would fight it on every apply.
        assert "replicas" not in kinds["Deployment"][name]["spec"]


def test_the_edge_is_nginx_rendered_by_the_same_code_as_compose() -> None:
    edge = k8s_by_kind()["Deployment"]["edge"]["spec"]["template"]["spec"]
    render = edge["initContainers"][0]
    nginx = edge["containers"][0]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert render["image"] == "switchboard"
    assert render["command"] == compose["services"]["edge-config"]["entrypoint"]
    assert nginx["image"] == compose["services"]["edge"]["image"]
    assert nginx["command"] == compose["services"]["edge"]["entrypoint"]
    assert nginx["readinessProbe"]["httpGet"]["path"] == "/healthz"
    # The edge reaches each service by its Service's name, on its bind's port.
    for service in deployed_services():
        assert service in k8s_by_kind()["Service"]
        url = config_data().get(f"{service.upper()}_URL")
        if url:
            assert url == f"http://{service}:{service_port(service)}"


def test_infrastructure_is_outside_the_base() -> None:
    kinds = k8s_by_kind()
    assert "StatefulSet" not in kinds
    images = [
        each["image"]
        for deployment in kinds["Deployment"].values()
        for each in deployment["spec"]["template"]["spec"].get("initContainers", [])
        + deployment["spec"]["template"]["spec"]["containers"]
    ]
    assert not [image for image in images if re.search("kafka|postgres|clickhouse", image)]


def test_secrets_are_in_the_secret_and_empty() -> None:
    config, secret = config_data(), secret_data()
    assert set(config) & set(secret) == set()
    assert [name for name in config if SECRET_NAME.search(name)] == []
    assert all(value == "" for value in secret.values()), "no secret values in the repository"
    assert all(isinstance(value, str) for value in config.values())


def kubectl_build() -> list[dict[str, Any]]:
    kubectl = ensure_binary("kubectl", "kubernetes-client")
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def test_kubectl_kustomize_builds_the_base() -> None:
    built = kubectl_build()
    assert len(built) == len(k8s_manifests())
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for doc in built:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "switchboard"
        if doc["kind"] == "Deployment":
            spec = doc["spec"]["template"]["spec"]
            for each in spec.get("initContainers", []) + spec["containers"]:
                if not each["image"].startswith("nginxinc/"):
                    assert each["image"] == f"switchboard:{version}"
