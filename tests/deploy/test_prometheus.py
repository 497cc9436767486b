"""deploy/prometheus: the scrape configuration and the alert rules, checked by promtool.

`promtool check config` and `check rules` accept the files, `promtool test
rules` runs the unit tests in rules_test.yml, every alert has such a test, and
every metric a rule reads is one the services export (or Prometheus' own `up`
and the blackbox prober's `probe_success`).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.tools import PROMETHEUS, ROOT, promtool

RULES = PROMETHEUS / "rules.yml"
RULES_TEST = PROMETHEUS / "rules_test.yml"
CONFIG = PROMETHEUS / "prometheus.yml"
# Series that come from Prometheus itself and from the blackbox prober in compose.
NOT_OURS = {"up", "probe_success"}
# What issue 21 asks the rules to watch, by the metric each one reads.
WATCHED = {
    "consumer lag": "kafka_consumer_lag",
    "dead letters growing": "dead_letters_total",
    "spool depth above zero": "ingress_spool_depth",
    "fallback TwiML served": "ingress_fallbacks_total",
    "5xx rate": "http_requests_total",
    "a service not ready": "probe_success",
}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60
    )


def rules() -> list[dict[str, str]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def metrics_read(expr: str) -> set[str]:
    """Metric names in a PromQL expression (no function or label in the rules has an underscore)."""
    return set(re.findall(r"\b[a-z]+(?:_[a-z0-9]+)+\b", expr)) | (
        {"up"} if re.search(r"\bup\{", expr) else set()
    )


def exported_by_services() -> str:
    sources = [*(ROOT / "switchboard").rglob("*.py"), *(ROOT / "services").rglob("*.py")]
    return "\n".join(path.read_text() for path in sources)


def test_promtool_accepts_the_rules() -> None:
    result = run("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_pass_their_unit_tests() -> None:
    result = run("test", "rules", RULES_TEST.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_scrape_configuration() -> None:
    result = run("check", "config", CONFIG.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout


def test_every_alert_has_a_unit_test() -> None:
    tests = yaml.safe_load(RULES_TEST.read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test["alert_rule_test"]}
    # An alert counts as tested when some case expects it to fire.
    firing = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if case.get("exp_alerts")
    }
    alerts = {rule["alert"] for rule in rules()}
    assert alerts - tested == set(), "alerts without a unit test"
    assert alerts - firing == set(), "alerts never shown to fire"


@pytest.mark.parametrize("concern", sorted(WATCHED))
def test_an_alert_watches(concern: str) -> None:
    metric = WATCHED[concern]
    assert any(metric in metrics_read(rule["expr"]) for rule in rules()), concern


def test_every_metric_a_rule_reads_is_exported() -> None:
    code = exported_by_services()
    for rule in rules():
        for metric in metrics_read(rule["expr"]) - NOT_OURS:
            assert f'"{metric}"' in code, (
                f"{rule['alert']} reads {metric}, which no service exports"
            )


def test_prometheus_scrapes_every_deployed_service() -> None:
    from tests.deploy.tools import deployed_services

    config = yaml.safe_load(CONFIG.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = {t for c in jobs["switchboard"]["static_configs"] for t in c["targets"]}
    probes = {t for c in jobs["switchboard-readiness"]["static_configs"] for t in c["targets"]}
    for service in deployed_services():
        port = service_port(service)
        assert f"{service}:{port}" in targets
        assert f"http://{service}:{port}/readyz" in probes


def service_port(service: str) -> str:
    """The port of a service's *_BIND in compose (deploy/compose.yaml)."""
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    bind = compose["x-switchboard-env"][f"{service.upper()}_BIND"]
    return str(bind).rpartition(":")[2]


def test_rule_files_are_found_where_compose_mounts_them() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    mounts = compose["services"]["prometheus"]["volumes"]
    for rule_file in config["rule_files"]:
        assert Path(PROMETHEUS / rule_file).is_file()
        assert f"./prometheus/{rule_file}:/etc/prometheus/{rule_file}:ro" in mounts
