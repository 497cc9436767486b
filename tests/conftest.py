"""Real infrastructure for the test session, started once, shared by every test.

Kafka (a single-node KRaft broker) and PostgreSQL are started on free ports
with devstack, their data in temporary folders, the Kafka jars and
PostgreSQL binaries from the caches `make run` uses. KAFKA_BOOTSTRAP_SERVERS
and TEST_DATABASE_URL point the session at servers that already run instead;
SWITCHBOARD_TESTCONTAINERS=1 uses testcontainers where a Docker engine
answers. ClickHouse is chDB in this process. Each test gets its own topics,
PostgreSQL database and ClickHouse database, so tests stay independent.
"""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack import kafka, postgres
from switchboard.kafka import Topics, ensure_topics
from tests.databases import fresh_database
from tests.support import free_port

# A developer's .env (real Twilio credentials, say) never leaks into tests.
os.environ.setdefault("SWITCHBOARD_ENV_FILE", os.devnull)
# Production is the default when unset, and refuses the tests' short tokens and
# single-replica topics; every service a test starts inherits this.
os.environ.setdefault("SWITCHBOARD_ENV", "development")


def _use_docker() -> bool:
    if os.environ.get("SWITCHBOARD_TESTCONTAINERS") != "1" or shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, timeout=20)
    return probe.returncode == 0


@pytest.fixture(scope="session", autouse=True)
def _service_logs(tmp_path_factory: pytest.TempPathFactory) -> None:
    """ServiceProcess logs go under this session's temporary folder."""
    os.environ.setdefault(
        "SWITCHBOARD_TEST_LOGS", str(tmp_path_factory.getbasetemp() / "service-logs")
    )


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """ "host:port" of a real Kafka 4.1.1 broker for the whole session."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    if _use_docker():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    broker = kafka.start_kafka(tmp_path_factory.mktemp("kafka"), free_port(), free_port())
    try:
        yield broker.bootstrap
    finally:
        # Clients no test holds any more, but kept alive by reference cycles, go while
        # the broker is up: otherwise librdkafka reports it gone when it stops.
        gc.collect()
        broker.stop()


@pytest.fixture
def topics(kafka_bootstrap: str) -> Topics:
    """This test's own topics (a fresh prefix), already created."""
    fresh = Topics(prefix=f"t{uuid.uuid4().hex[:12]}.")
    ensure_topics(kafka_bootstrap, fresh)
    return fresh


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """Superuser DSN (database `postgres`) of a real PostgreSQL cluster for the session."""
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        yield external
        return
    if _use_docker():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:15", driver=None) as container:
            yield container.get_connection_url()
        return
    # Under /tmp, not pytest's root-only basetemp: the server runs as its own user.
    scratch = Path(tempfile.mkdtemp(prefix="switchboard-pg-"))
    scratch.chmod(0o755)
    base = postgres.usable_dir(scratch / "postgres")
    cluster = postgres.start_postgres(base, free_port(), durable=False)
    try:
        yield cluster.dsn("postgres")
    finally:
        cluster.stop()
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_url(postgres_url: str) -> Iterator[str]:
    """DSN of a fresh, empty database for this test (dropped afterwards)."""
    with fresh_database(postgres_url) as dsn:
        yield dsn


@pytest.fixture(scope="session")
def ch_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """ "chdb:///<folder>" of this test process's chDB engine.

    chDB allows one folder per process and one process per folder: code in
    this process uses this URL; a service started as a subprocess needs a
    folder of its own.
    """
    return f"chdb://{tmp_path_factory.mktemp('chdb')}"


@pytest.fixture(scope="session")
def ch_client(ch_url: str) -> Any:
    """This process's clickhouse-connect client over chDB."""
    import clickhouse_connect

    return clickhouse_connect.get_client(dsn=ch_url)


@pytest.fixture
def ch_database(ch_client: Any) -> Iterator[str]:
    """A fresh, empty ClickHouse database for this test (dropped afterwards)."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    ch_client.command(f"CREATE DATABASE {name}")
    yield name
    ch_client.command(f"DROP DATABASE IF EXISTS {name}")
