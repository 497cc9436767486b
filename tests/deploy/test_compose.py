"""deploy/compose.yaml, as Debian's docker-compose reads it (`docker-compose config`).

There is no Docker daemon here: these tests check what compose would run.
docker-compose is installed from Debian's package when missing
(devstack.packages). The file must be accepted with the secrets set and
refused without one; every deployed service runs from the one image with its
health check; every container that others wait for is health-checked or is a
one-shot job waited for with service_completed_successfully; state is on
named volumes; and the edge's configuration job, run here as written,
renders the nginx template and the API documents.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack.nginx import UPSTREAMS
from tests.deploy.tools import DEPLOY, ROOT, deployed_services, ensure_binary, healthcheck_command

COMPOSE = DEPLOY / "compose.yaml"
# What an operator puts in deploy/.env; compose refuses to start without each.
SECRETS = {
    "POSTGRES_PASSWORD": "pg-password",
    "CLICKHOUSE_PASSWORD": "ch-password",
    "GRAFANA_CLICKHOUSE_PASSWORD": "grafana-ch-password",
    "GRAFANA_ADMIN_PASSWORD": "grafana-admin-password",
    "ADMIN_API_TOKEN": "a" * 43,
    "PRIVACY_TOKEN_SECRET": "p" * 43,
    "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
    "TWILIO_AUTH_TOKEN": "t" * 32,
    "PUBLIC_BASE_URL": "https://calls.example.com",
    "RECORDINGS_ENCRYPTION_KEYS": "k1:" + "A" * 43 + "=",
    "RECORDINGS_LINK_SECRET": "l" * 43,
    "SMTP_URL": "smtp://alerts:password@mail.example.com:587",
}
INFRASTRUCTURE = {"kafka-1", "kafka-2", "kafka-3", "postgres", "clickhouse"}


def compose(env: dict[str, str], tmp: Path) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` with only `env` (no deploy/.env, no variables of this shell)."""
    empty = tmp / "empty.env"
    empty.write_text("")
    return subprocess.run(
        [ensure_binary("docker-compose", "docker-compose"), "--env-file", str(empty)]
        + ["-f", str(COMPOSE), "config"],
        env={"PATH": os.environ["PATH"], "HOME": str(tmp), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    result = compose(SECRETS, tmp_path_factory.mktemp("compose"))
    assert result.returncode == 0, result.stderr
    resolved: dict[str, Any] = yaml.safe_load(result.stdout)
    return resolved


def services(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = config["services"]
    return found


def one_shot(service: dict[str, Any]) -> bool:
    return service.get("restart") == "no"


def volume_targets(service: dict[str, Any]) -> dict[str, str]:
    """{target: source} of a service's volumes, short or long syntax."""
    found = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume["source"], volume["target"]
        found[target] = source
    return found


def test_debian_docker_compose_accepts_the_file(config: dict[str, Any]) -> None:
    assert set(services(config)) >= INFRASTRUCTURE | deployed_services() | {"edge"}


def test_compose_refuses_to_run_without_a_secret(tmp_path: Path) -> None:
    without = {name: value for name, value in SECRETS.items() if name != "ADMIN_API_TOKEN"}
    result = compose(without, tmp_path)
    assert result.returncode != 0
    assert "ADMIN_API_TOKEN" in result.stderr


def test_every_deployed_service_runs_from_the_one_image(config: dict[str, Any]) -> None:
    for name in deployed_services():
        service = services(config)[name]
        assert service["command"] == [name], name
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert Path(service["build"]["context"]) == ROOT
        assert service["image"] == services(config)["router"]["image"]
        assert "entrypoint" not in service, f"{name} must run `switchboard {name}`"


def test_each_service_is_health_checked_on_its_own_port(config: dict[str, Any]) -> None:
    for name in deployed_services():
        service = services(config)[name]
        env = service["environment"]
        bind = env[f"{name.upper()}_BIND"]
        assert bind.startswith("0.0.0.0:"), f"{name} must listen beyond its container"
        assert env["PORT"] == bind.rpartition(":")[2], f"{name}: PORT is not its bind's port"
        assert service["healthcheck"]["test"] == ["CMD", *healthcheck_command()]


def test_kafka_runs_in_kraft_mode_with_three_replicas(config: dict[str, Any]) -> None:
    brokers = [services(config)[f"kafka-{n}"] for n in (1, 2, 3)]
    voters = brokers[0]["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
    assert len(voters) == 3
    for broker in brokers:
        env = broker["environment"]
        assert broker["image"].startswith("apache/kafka:")
        assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
        assert env["KAFKA_NODE_ID"] in {voter.split("@")[0] for voter in voters}
        assert "ZOOKEEPER" not in " ".join(env)
    shared = services(config)["router"]["environment"]
    assert shared["SWITCHBOARD_ENV"] == "production"
    assert int(shared["KAFKA_REPLICATION_FACTOR"]) <= len(brokers)
    assert shared["KAFKA_BOOTSTRAP_SERVERS"].split(",") == [f"kafka-{n}:9092" for n in (1, 2, 3)]


def test_grafana_gets_the_provisioning_and_the_clickhouse_plugin(config: dict[str, Any]) -> None:
    grafana = services(config)["grafana"]
    assert "grafana-clickhouse-datasource" in grafana["environment"]["GF_INSTALL_PLUGINS"]
    mounts = volume_targets(grafana)
    assert Path(mounts["/etc/grafana/provisioning"]) == DEPLOY / "grafana" / "provisioning"
    assert (
        Path(mounts["/var/lib/grafana/dashboards/switchboard"]) == DEPLOY / "grafana" / "dashboards"
    )
    # The datasource provisioning's ${...} are filled from Grafana's environment.
    datasource = (DEPLOY / "grafana/provisioning/datasources/clickhouse.yaml").read_text()
    for name in (
        "CLICKHOUSE_HOST",
        "CLICKHOUSE_USER",
        "CLICKHOUSE_PASSWORD",
        "CLICKHOUSE_DATABASE",
    ):
        assert "${" + name + "}" in datasource
        assert grafana["environment"][name]
    assert grafana["environment"]["CLICKHOUSE_HOST"] in services(config)
    assert grafana["environment"]["CLICKHOUSE_USER"] != "switchboard", (
        "Grafana reads as its own user"
    )


def test_prometheus_gets_its_configuration_and_rules(config: dict[str, Any]) -> None:
    mounts = volume_targets(services(config)["prometheus"])
    assert (
        Path(mounts["/etc/prometheus/prometheus.yml"]) == DEPLOY / "prometheus" / "prometheus.yml"
    )
    assert Path(mounts["/etc/prometheus/rules.yml"]) == DEPLOY / "prometheus" / "rules.yml"


def test_every_container_is_health_checked_or_a_one_shot_job(config: dict[str, Any]) -> None:
    for name, service in services(config).items():
        if one_shot(service):
            continue
        check = service.get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"


def test_every_dependency_waits_for_a_condition(config: dict[str, Any]) -> None:
    all_services = services(config)
    for name, service in all_services.items():
        for target, how in service.get("depends_on", {}).items():
            assert target in all_services, f"{name} depends on unknown {target}"
            expected = (
                "service_completed_successfully"
                if one_shot(all_services[target])
                else "service_healthy"
            )
            assert how.get("condition") == expected, f"{name} -> {target}"


def test_services_wait_for_the_infrastructure_they_use(config: dict[str, Any]) -> None:
    for name in deployed_services():
        depends = services(config)[name]["depends_on"]
        assert INFRASTRUCTURE - {"clickhouse"} <= set(depends), name
    analytics = services(config)["analytics"]["depends_on"]
    assert analytics["analytics-migrate"]["condition"] == "service_completed_successfully"
    assert services(config)["analytics-migrate"]["command"] == ["analytics", "--migrate-only"]
    edge = services(config)["edge"]["depends_on"]
    assert set(UPSTREAMS) <= set(edge)


def test_state_lives_on_named_volumes(config: dict[str, Any]) -> None:
    named = set(config["volumes"])
    expected = {
        "kafka-1": "/var/lib/kafka/data",
        "postgres": "/var/lib/postgresql/data",
        "clickhouse": "/var/lib/clickhouse",
        "prometheus": "/prometheus",
        "grafana": "/var/lib/grafana",
    }
    for name, target in expected.items():
        assert volume_targets(services(config)[name])[target] in named, name
    # Each service's own folders: ingress's spool, the recordings and reports stores.
    folders = {
        "ingress": "INGRESS_SPOOL_DIR",
        "recordings": "RECORDINGS_STORAGE_DIR",
        "reporting": "REPORTS_STORAGE_DIR",
    }
    for name, variable in folders.items():
        service = services(config)[name]
        folder = service["environment"][variable]
        assert volume_targets(service)[folder] in named, f"{name}: {variable} is not on a volume"
    # Bind mounts point at files of this repository.
    for name, service in services(config).items():
        for source in volume_targets(service).values():
            if source.startswith("/"):
                assert Path(source).exists(), f"{name} mounts missing {source}"


def test_the_edge_job_renders_the_nginx_template_and_the_api_documents(
    config: dict[str, Any], tmp_path: Path
) -> None:
    job = services(config)["edge-config"]
    edge = services(config)["edge"]
    command = job["entrypoint"]
    assert command[:2] == ["python", "-c"] and command[-1] == "/edge"
    assert volume_targets(job)["/edge"] == volume_targets(edge)["/edge"]
    env = {**job["environment"], "PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", command[2], str(tmp_path)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    conf = (tmp_path / "switchboard.conf").read_text()
    environment = job["environment"]
    for upstream in UPSTREAMS:
        port = environment[f"{upstream.upper()}_BIND"].rpartition(":")[2]
        assert f"server {upstream}:{port};" in conf
    assert f"rate={environment['EDGE_API_RATE']}" in conf
    assert (tmp_path / "public" / "api" / "openapi.json").is_file()
    assert (tmp_path / "temp").is_dir()
    # nginx runs from that folder as the image's user, which owns the volume.
    assert edge["entrypoint"][:5] == ["nginx", "-p", "/edge/", "-c", "/edge/switchboard.conf"]
    assert edge["user"].split(":")[0] == "10001"
    assert edge["healthcheck"]["test"][-1].endswith("/healthz")
