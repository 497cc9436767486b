"""`switchboard run` starts the whole system, gives it a complete environment without
overriding yours, and stops it in order on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
import requests

from devstack import REPO_ROOT, kafka, run
from devstack.processes import free_port


def test_service_env_fills_defaults_and_keeps_what_is_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "mine")
    monkeypatch.setenv("ROUTER_BIND", "127.0.0.1:9999")
    monkeypatch.delenv("ADMIN_API_TOKEN", raising=False)
    monkeypatch.delenv("ROUTER_URL", raising=False)
    monkeypatch.delenv("SWITCHBOARD_ENV", raising=False)
    env = run._service_env(tmp_path)
    assert env["TWILIO_AUTH_TOKEN"] == "mine"
    assert env["ADMIN_API_TOKEN"] == run.DEV_ADMIN_TOKEN
    assert env["SWITCHBOARD_ENV"] == "development"
    assert env["ROUTER_BIND"] == "127.0.0.1:9999"
    assert env["INGRESS_BIND"] == "127.0.0.1:8081"
    assert env["TWILIO_ACCOUNT_SID"].startswith("AC") and len(env["TWILIO_ACCOUNT_SID"]) == 34
    layout = run._layout(env, ["router", "ingress"])
    assert layout.binds == {
        "router": "127.0.0.1:9999",
        "ingress": "127.0.0.1:8081",
        "edge": "127.0.0.1:8080",
        "mail": "127.0.0.1:1025",
    }


def test_run_starts_everything_serves_through_the_edge_and_stops_in_order(
    kafka_bootstrap: str, pg_url: str, tmp_path: Path
) -> None:
    binds = {name: f"127.0.0.1:{free_port()}" for name in (*run.SERVICES, "twilio_sim", "edge")}
    env = {
        **os.environ,
        "SWITCHBOARD_ENV_FILE": os.devnull,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": f"r{uuid.uuid4().hex[:10]}.",
        "DATABASE_URL": pg_url,
        **{f"{name.upper()}_BIND": bind for name, bind in binds.items()},
        "CLICKHOUSE_HTTP_BIND": f"127.0.0.1:{free_port()}",
    }
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "ADMIN_API_TOKEN"):
        env.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "switchboard.cli", "run", "--run-dir", str(tmp_path / "run")],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    up = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Switchboard is up"):
                up.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert up.wait(180), "".join(lines)
        edge = f"http://{binds['edge']}"
        assert f"Switchboard is up: {edge}\n" in lines
        # Each part reported as it came up; the simulator plays Twilio without credentials.
        for name in ("twilio_sim", *run.SERVICES, "edge"):
            assert any(line.startswith(f"  {name:<11} up") for line in lines), (name, lines)
        for name in ("kafka", "postgres"):
            assert f"  {name:<11} external\n" in lines, lines
        headers = {"Authorization": f"Bearer {run.DEV_ADMIN_TOKEN}"}
        answer = requests.get(f"{edge}/api/clients", headers=headers, timeout=10)
        assert answer.status_code == 200, answer.text
        assert (tmp_path / "run" / "logs" / "router.log").exists()
        # Grafana's datasource: analytics' read-only ClickHouse endpoint, as printed.
        host, _, port = env["CLICKHOUSE_HTTP_BIND"].rpartition(":")
        [grafana] = [line for line in lines if line.startswith("  grafana ")]
        assert f"server {host}, port {port}, user grafana, password " in grafana, grafana
        password = grafana.split("password ")[1].split(",")[0]
        select = requests.get(
            f"http://{host}:{port}/",
            params={"query": "SELECT 1"},
            auth=("grafana", password),
            timeout=10,
        )
        assert select.text == "1\n", select.text
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(60)
        reader.join(10)
    assert code == 0, "".join(lines)
    assert lines[-1] == "Switchboard stopped.\n"
    stopped = [line.split()[0] for line in lines if line.rstrip().endswith(" stopped")]
    assert stopped == ["edge", *reversed(run.SERVICES), "twilio_sim"]


def test_broker_properties_suit_a_single_node(tmp_path: Path) -> None:
    text = kafka.render_properties("127.0.0.1", 19092, 19093, tmp_path)
    props = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "#")
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.replication.factor"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["num.partitions"] == "3"


def test_cluster_id_is_22_chars_of_base64url() -> None:
    cluster_id = kafka.new_cluster_id()
    assert len(cluster_id) == 22
    assert set(cluster_id) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )
