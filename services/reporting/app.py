"""The reporting service's faust app: its topics, its tables, and where agents live.

Agents and tables are declared at import time, so this module builds the
app from `KafkaSettings.from_env()` (brokers, topic prefix, group id) and
nothing that can fail. Modules that declare agents on `app` are listed in
`AGENT_MODULES`; `load_agents()` imports them before the worker starts (add
a module there to add an agent, see services/reporting/README.md).

Messages travel as raw bytes and are decoded and validated with
`switchboard.events.decode`, like every other consumer's.

The resources the agents use (PostgreSQL, SMTP, Twilio, the clock) belong to
one `Runtime`, built by `__main__` and handed over with `bind()` before the
worker starts; agents read it with `runtime()`.
"""

from __future__ import annotations

import importlib
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import faust

from services.reporting.alerts import alerts_topic
from services.reporting.config import KafkaSettings

if TYPE_CHECKING:
    from services.reporting.runtime import Runtime

# Modules whose import declares agents, timers or tasks on `app`.
AGENT_MODULES = (
    "services.reporting.missed",
    "services.reporting.delivery",
    "services.reporting.health",
    "services.reporting.textback",
    "services.reporting.call_states",
)

kafka = KafkaSettings.from_env()


def _brokers(bootstrap: str) -> list[str]:
    return [f"kafka://{host.strip()}" for host in bootstrap.split(",") if host.strip()]


app = faust.App(
    kafka.group_id,
    broker=_brokers(kafka.bootstrap),
    # Tables live in memory and are rebuilt from their changelog topics at start.
    store="memory://",
    autodiscover=False,
    # The HTTP side is a Flask app of our own (services/reporting/web.py).
    web_enabled=False,
    topic_partitions=kafka.partitions,
    topic_replication_factor=kafka.replication_factor,
    consumer_auto_offset_reset="earliest",
    producer_acks=-1,
    key_serializer="raw",
    value_serializer="raw",
    # Offsets are committed often so a restart replays little (replays are harmless).
    broker_commit_interval=1.0,
    # As the project's other consumers: a worker that died leaves the group within 10 s.
    broker_session_timeout=10.0,
    broker_heartbeat_interval=1.0,
)

call_events = app.topic(f"{kafka.topic_prefix}call-events", key_type=bytes, value_type=bytes)
client_events = app.topic(f"{kafka.topic_prefix}client-events", key_type=bytes, value_type=bytes)
number_events = app.topic(f"{kafka.topic_prefix}number-events", key_type=bytes, value_type=bytes)
alert_events = app.topic(alerts_topic(kafka.topic_prefix), key_type=bytes, value_type=bytes)
dead_letters = app.topic(f"{kafka.topic_prefix}dead-letters", key_type=bytes, value_type=bytes)
# Reporting's own commands for the `calls` table (services/reporting/call_states.py), one
# per partition: as many partitions as call-events, so partition p of it is assigned
# with partition p of call-events and of the table. They hold tokens, never numbers.
call_commands = app.topic(
    f"{kafka.group_id}-call-commands",
    key_type=bytes,
    value_type=bytes,
    partitions=kafka.partitions,
    internal=True,
    retention=timedelta(days=1),
)

# Table keys are strings (CallSid, clientId, phone number) and values JSON objects.
_JSON: Any = faust.Schema(key_type=str, key_serializer="json", value_serializer="json")
# One call's state (services/reporting/calls.py) per CallSid, co-partitioned with call-events.
calls: Any = app.Table("calls", default=None, schema=_JSON, partitions=kafka.partitions)
# Every client's settings (clientId -> ClientSettings JSON), on every worker.
clients: Any = app.GlobalTable("clients", default=None, schema=_JSON, partitions=kafka.partitions)
# Every number's owner and whether its flow can take a voicemail (phone -> JSON).
numbers: Any = app.GlobalTable("numbers", default=None, schema=_JSON, partitions=kafka.partitions)

_runtime: Runtime | None = None


def bind(runtime: Runtime) -> None:
    """Hand the agents their resources (once, before the worker starts)."""
    global _runtime
    _runtime = runtime


def runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("services.reporting.app.bind() was not called before the worker ran")
    return _runtime


def load_agents() -> None:
    for name in AGENT_MODULES:
        importlib.import_module(name)
