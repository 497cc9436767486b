"""Every variable a deployed process reads is set where it is deployed.

Which variables a process reads is the documentation test's scan
(tests/kernel/test_configuration_documented.py) over that process's own
code and the kernel's, so a variable added to a service fails here until it
is in compose's environment for that service and in the Kubernetes ConfigMap
or Secret. The other way round, nothing is set that no process reads.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.deploy.tools import (
    DEPLOY,
    config_data,
    deployed_services,
    edge_variables,
    secret_data,
    service_variables,
)

# Set in compose for the Dockerfile's health check only.
HEALTHCHECK_ONLY = {"PORT"}


def compose_environment(service: str) -> dict[str, Any]:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    environment: dict[str, Any] = compose["services"][service]["environment"]
    return environment


def test_the_scan_sees_each_services_own_settings() -> None:
    for service in deployed_services():
        assert f"{service.upper()}_BIND" in service_variables(service)
    assert "ADMIN_API_TOKEN" in service_variables("router")
    assert edge_variables() == {
        "EDGE_API_RATE",
        "EDGE_API_BURST",
        "EDGE_WEBHOOK_RATE",
        "EDGE_WEBHOOK_BURST",
    }


@pytest.mark.parametrize("service", sorted(deployed_services()))
def test_compose_sets_every_variable_the_service_reads(service: str) -> None:
    missing = sorted(service_variables(service) - set(compose_environment(service)))
    assert missing == [], f"deploy/compose.yaml does not set for {service}: {missing}"


@pytest.mark.parametrize("service", sorted(deployed_services()))
def test_kubernetes_sets_every_variable_the_service_reads(service: str) -> None:
    present = set(config_data()) | set(secret_data())
    missing = sorted(service_variables(service) - present)
    assert missing == [], f"deploy/k8s ConfigMap/Secret lack, for {service}: {missing}"


def test_the_edge_gets_its_limits_in_compose_and_kubernetes() -> None:
    assert edge_variables() <= set(compose_environment("edge-config"))
    assert edge_variables() <= set(config_data())


def test_nothing_is_set_that_no_process_reads() -> None:
    read = edge_variables().union(*(service_variables(s) for s in deployed_services()))
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    shared = set(compose["x-switchboard-env"])
    assert sorted(shared - read) == []
    assert sorted((set(config_data()) | set(secret_data())) - read) == []
    for service in deployed_services():
        extra = set(compose_environment(service)) - shared - HEALTHCHECK_ONLY
        assert extra == set(), f"{service}: {sorted(extra)}"
