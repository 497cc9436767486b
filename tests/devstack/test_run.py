"""`switchboard run` gives the services a complete environment without overriding yours."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack import kafka, run


def test_service_env_fills_defaults_and_keeps_what_is_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "mine")
    monkeypatch.setenv("ROUTER_BIND", "127.0.0.1:9999")
    monkeypatch.delenv("ADMIN_API_TOKEN", raising=False)
    monkeypatch.delenv("ROUTER_URL", raising=False)
    monkeypatch.delenv("SWITCHBOARD_ENV", raising=False)
    env = run._service_env("127.0.0.1:1", "postgresql://x/y", "chdb:///tmp/ch", tmp_path)
    assert env["TWILIO_AUTH_TOKEN"] == "mine"
    assert env["ADMIN_API_TOKEN"] == run.DEV_ADMIN_TOKEN
    assert env["SWITCHBOARD_ENV"] == "development"
    assert env["ROUTER_URL"] == "http://127.0.0.1:9999"
    assert env["INGRESS_BIND"] == "127.0.0.1:8081"
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:1"
    assert env["CLICKHOUSE_URL"] == "chdb:///tmp/ch"
    assert env["TWILIO_ACCOUNT_SID"].startswith("AC") and len(env["TWILIO_ACCOUNT_SID"]) == 34


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
