"""`python -m services.reporting`: check dependencies, migrate, then alert on missed calls.

One process runs the faust worker (the agents in `app.AGENT_MODULES`, on the
main thread's event loop, stopped by SIGTERM/SIGINT) and serves the HTTP
side (health, metrics, blueprints) from a thread. `--migrate-only` applies
the migrations and exits. Exit codes: 2 for bad configuration, 1 for an
unreachable dependency.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from services.reporting import store
from services.reporting.alerts import alerts_topic
from services.reporting.config import Config, KafkaSettings
from services.reporting.reports.config import ReportsConfig
from services.reporting.textback_config import TextBackConfig
from switchboard.kafka import ensure_topics
from switchboard.logs import configure_logging
from switchboard.pg_migrations import migrate_at_start
from switchboard.settings import ConfigError

log = logging.getLogger("services.reporting")
_DAY_MS = 24 * 3600 * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="switchboard reporting",
        description="Reporting: missed-call alerts by email, SMS and signed webhooks.",
    )
    parser.add_argument("--migrate-only", action="store_true", help="apply migrations and exit")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    configure_logging("reporting", os.environ.get("LOG_LEVEL", "INFO"))
    try:
        config = Config.from_env()
        kafka = KafkaSettings.from_env()
        reports = ReportsConfig.from_env()
        TextBackConfig.from_env()  # read again by the text-back agents; checked here
    except ConfigError as err:
        print(f"reporting: configuration error: {err}", file=sys.stderr)
        return 2

    if not migrate_at_start("reporting", config.database_url, store.apply_migrations):
        return 1
    if args.migrate_only:
        return 0
    try:
        ensure_topics(config.kafka_bootstrap, config.topics)
        ensure_alerts_topic(config, kafka.partitions)
    except KafkaException as err:
        print(
            f"reporting: Kafka at {config.kafka_bootstrap} is not reachable: {err}", file=sys.stderr
        )
        return 1
    return work(config, reports)


def ensure_alerts_topic(config: Config, partitions: int) -> None:
    """Create the alert-events topic when missing, replicated and retained like call events."""
    topics = config.topics
    name = alerts_topic(topics.prefix)
    admin = AdminClient({"bootstrap.servers": config.kafka_bootstrap})
    if name in admin.list_topics(timeout=10).topics:
        return
    spec = NewTopic(
        name,
        partitions,
        topics.replication_factor,
        config={
            "retention.ms": str(topics.events_retention_days * _DAY_MS),
            "min.insync.replicas": str(topics.min_insync_replicas),
        },
    )
    for future in admin.create_topics([spec], operation_timeout=10).values():
        try:
            future.result(timeout=15)
        except KafkaException as err:
            if "TOPIC_ALREADY_EXISTS" not in str(err):
                raise


def work(config: Config, reports_config: ReportsConfig) -> int:
    """The faust worker in the foreground, the HTTP side and the report scheduler in threads."""
    import faust

    from services.reporting import app as reporting
    from services.reporting.reports.service import ReportService
    from services.reporting.runtime import build_runtime
    from services.reporting.web import WebServer, create_web_app

    runtime = build_runtime(config)
    reporting.bind(runtime)
    reporting.load_agents()
    # Migrated above with the rest of the folder; on the same clock as the alerts.
    reports = ReportService.from_config(reports_config, runtime.clock.now, migrate=False)
    reports.start()
    # One line per request is noise beside the service's own JSON log.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = WebServer(create_web_app(runtime, reports=reports), config.bind)
    server.start()
    log.info("reporting serving HTTP on %s", config.bind)
    worker = faust.Worker(
        reporting.app,
        loglevel=os.environ.get("LOG_LEVEL", "INFO"),
        override_logging=False,
        redirect_stdouts=False,
        quiet=True,
    )
    try:
        worker.execute_from_commandline()
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 0
    finally:
        server.stop()
        reports.close()
        runtime.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
