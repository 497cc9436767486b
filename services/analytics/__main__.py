"""`python -m services.analytics`: check dependencies, migrate, then serve.

By default one process runs the HTTP API and the consumer thread (required on
the embedded chDB default, where one process owns the data folder). Against a
ClickHouse server they may run apart: `--api-only` (or ANALYTICS_CONSUMER=off)
and `--consumer-only`.
`--migrate-only` applies the schema and exits.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from types import FrameType

from confluent_kafka import KafkaException

from services.analytics.app import create_app
from services.analytics.config import Config
from services.analytics.consumer import AnalyticsConsumer
from services.analytics.store import Store
from switchboard.kafka import ensure_topics
from switchboard.logs import configure_logging
from switchboard.serve import serve
from switchboard.settings import ConfigError

log = logging.getLogger("services.analytics")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="switchboard analytics",
        description="Analytics: the Kafka consumer into ClickHouse and the calls/metrics API.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--api-only", action="store_true", help="serve HTTP, run no consumer")
    mode.add_argument("--consumer-only", action="store_true", help="consume, serve no HTTP")
    mode.add_argument("--migrate-only", action="store_true", help="apply migrations and exit")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    configure_logging("analytics", os.environ.get("LOG_LEVEL", "INFO"))
    try:
        config = Config.from_env()
    except ConfigError as err:
        print(f"analytics: configuration error: {err}", file=sys.stderr)
        return 2

    if args.consumer_only and not config.run_consumer:
        print("analytics: --consumer-only contradicts ANALYTICS_CONSUMER=off", file=sys.stderr)
        return 2
    if not args.migrate_only:
        try:
            ensure_topics(config.kafka_bootstrap, config.topics)
        except KafkaException as err:
            log.error("Kafka at %s is not reachable: %s", config.kafka_bootstrap, err)
            return 1

    if config.embedded:
        # chDB locks its folder for the process that opens it. gunicorn builds
        # the app in its worker, so the master must not open the engine: the
        # worker migrates in create_app, and a failure there stops gunicorn.
        if not check_chdb_folder(config):
            return 1
        if args.migrate_only or args.consumer_only:
            return migrate_and_consume(config, consume=args.consumer_only)
    else:
        try:
            store = Store.open(config.clickhouse_url, config.clickhouse_database)
            store.ping()
            if store.read_only():
                # A read-only user (an API replica's) finds the schema applied by the writer.
                store.check_migrated()
                applied = []
            else:
                applied = store.migrate()
                store.apply_retention(config.retention_days)
            store.close()
        except Exception as err:  # any failure here means: cannot start
            log.error("ClickHouse at %s is not usable: %s", config.clickhouse_url, err)
            return 1
        log.info("migrations applied: %s", applied or "none pending")
        if args.migrate_only:
            return 0
        if args.consumer_only:
            return migrate_and_consume(config, consume=True)

    serve(
        lambda: create_app(config, start_consumer=config.run_consumer and not args.api_only),
        bind=config.bind,
        name="analytics",
        workers=1,
    )
    return 0


def check_chdb_folder(config: Config) -> bool:
    folder = config.clickhouse_url.removeprefix("chdb://")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        log.error("chDB folder %s cannot be created: %s", folder, err)
        return False
    if not os.access(folder, os.W_OK):
        log.error("chDB folder %s is not writable", folder)
        return False
    return True


def migrate_and_consume(config: Config, consume: bool) -> int:
    """Run in the foreground (no HTTP) until SIGTERM/SIGINT; 1 if the consumer failed."""
    try:
        store = Store.open(config.clickhouse_url, config.clickhouse_database)
        store.migrate()
        store.apply_retention(config.retention_days)
    except Exception as err:  # any failure here means: cannot start
        log.error("ClickHouse at %s is not usable: %s", config.clickhouse_url, err)
        return 1
    if not consume:
        store.close()
        return 0
    consumer = AnalyticsConsumer(config, store)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        consumer.stop(timeout=0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        consumer.run()
    except Exception:  # logged by the consumer
        return 1
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
