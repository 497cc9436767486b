"""A single-node KRaft Apache Kafka broker from Maven's jars, as a child process.

`ensure_jars` fetches the broker's jars once (Maven, from deploy/kafka/pom.xml)
into a cache folder; `start_kafka` writes server.properties for one node that
is broker and controller on loopback, formats its storage the first time,
starts `java` with its log going to a file, and returns when an admin client
sees the broker. The handle's `stop()` shuts it down (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from string import Template

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from devstack import REPO_ROOT, cache_dir
from devstack.packages import locked
from devstack.processes import (
    Child,
    StartError,
    ensure_port_free,
    port_open,
    read_pid,
    stop_stray,
)

KAFKA_VERSION = "4.1.1"
DEPLOY_DIR = REPO_ROOT / "deploy" / "kafka"
POM = DEPLOY_DIR / "pom.xml"
_BROKER_JAR = f"kafka_2.13-{KAFKA_VERSION}.jar"
_POM_STAMP = ".pom-sha256"


@dataclass
class KafkaBroker:
    """A running broker: where clients connect, and how to stop it."""

    bootstrap: str
    data_dir: Path
    log_file: Path
    child: Child

    def alive(self) -> bool:
        return self.child.alive()

    def stop(self, timeout: float = 30.0) -> None:
        self.child.stop(timeout)
        (self.data_dir / "kafka.pid").unlink(missing_ok=True)


def _pom_digest() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()


def ensure_jars(jars_dir: Path | None = None) -> Path:
    """The folder of broker jars, fetched with Maven the first time (or when the pom changed)."""
    target = jars_dir or cache_dir() / f"kafka-{KAFKA_VERSION}"
    digest = _pom_digest()
    stamp = target / _POM_STAMP
    if (target / _BROKER_JAR).is_file() and stamp.is_file() and stamp.read_text() == digest:
        return target
    with locked(target.with_name(target.name + ".lock")):
        if (target / _BROKER_JAR).is_file() and stamp.is_file() and stamp.read_text() == digest:
            return target
        mvn = shutil.which("mvn")
        if mvn is None:
            raise StartError("kafka: Maven (mvn) is needed once to fetch the broker's jars")
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        print(
            f"devstack: fetching Kafka {KAFKA_VERSION} jars with Maven into {target}",
            file=sys.stderr,
            flush=True,
        )
        result = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(POM),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={partial}",
                "-DincludeScope=runtime",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if result.returncode != 0 or not (partial / _BROKER_JAR).is_file():
            raise StartError(f"kafka: Maven could not fetch the jars:\n{result.stdout[-3000:]}")
        (partial / _POM_STAMP).write_text(digest)
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    return target


def new_cluster_id() -> str:
    """A KRaft cluster id: a UUID as 22 characters of unpadded base64url.

    An id that starts with "-" would be read as an option by the storage
    tool's argument parser, so such ids are drawn again.
    """
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not candidate.startswith("-"):
            return candidate


def render_properties(host: str, port: int, controller_port: int, log_dirs: Path) -> str:
    template = Template((DEPLOY_DIR / "server.properties.template").read_text())
    return template.substitute(
        host=host, port=port, controller_port=controller_port, log_dirs=log_dirs
    )


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise StartError("kafka: no `java` on PATH (Java 17 or newer is needed)")
    return java


def _format_storage(java: str, classpath: str, properties: Path, log_dirs: Path) -> None:
    if (log_dirs / "meta.properties").is_file():
        return
    result = subprocess.run(
        [
            java,
            "-Xmx256m",
            "-cp",
            classpath,
            "kafka.tools.StorageTool",
            "format",
            "-t",
            new_cluster_id(),
            "-c",
            str(properties),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if result.returncode != 0:
        raise StartError(f"kafka: formatting storage failed:\n{result.stdout[-3000:]}")


def _broker_visible(bootstrap: str) -> bool:
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 2000})
    try:
        metadata = admin.list_topics(timeout=2)
    except KafkaException:
        return False
    return bool(metadata.brokers)


def start_kafka(
    data_dir: Path,
    port: int,
    controller_port: int,
    host: str = "127.0.0.1",
    log_file: Path | None = None,
    jars_dir: Path | None = None,
    heap: str = "512m",
    timeout: float = 120.0,
) -> KafkaBroker:
    """Start one broker+controller on host:port; reuse the storage in `data_dir` if formatted."""
    jars = ensure_jars(jars_dir)
    java = _java()
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_dirs = data_dir / "data"
    log_file = (log_file or data_dir / "kafka.log").resolve()
    properties = data_dir / "server.properties"
    properties.write_text(render_properties(host, port, controller_port, log_dirs))
    pid_file = data_dir / "kafka.pid"
    stop_stray(read_pid(pid_file), ["kafka.Kafka", str(properties)], signal.SIGTERM, "Kafka broker")
    ensure_port_free(host, port, "kafka")
    ensure_port_free(host, controller_port, "kafka controller")
    classpath = f"{jars}/*"
    _format_storage(java, classpath, properties, log_dirs)

    child = Child(
        "kafka",
        [
            java,
            "-Xms128m",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={DEPLOY_DIR / 'log4j2.properties'}",
            f"-Dswitchboard.kafka.log={log_file}",
            f"-Dkafka.logs.dir={log_file.parent}",
            "-cp",
            classpath,
            "kafka.Kafka",
            str(properties),
        ],
        log_file=log_file,
        cwd=data_dir,
        stop_signal=signal.SIGTERM,
    ).start()
    pid_file.write_text(str(child.pid))
    broker = KafkaBroker(f"{host}:{port}", data_dir, log_file, child)
    try:
        deadline = time.monotonic() + timeout
        while not (port_open(host, port) and _broker_visible(broker.bootstrap)):
            child.check_alive()
            if time.monotonic() > deadline:
                raise child.fail(f"broker not ready on {broker.bootstrap} within {timeout:.0f}s")
            time.sleep(0.2)
    except BaseException:
        broker.stop()
        raise
    return broker
