"""`python -m services.router` (or `switchboard router`): start the router.

Reads the configuration, checks that PostgreSQL answers, applies the
migrations, makes sure the Kafka topics exist (a Kafka outage is only a
warning: calls are still answered), then serves under gunicorn until SIGTERM.
Exit codes: 2 for bad configuration, 1 for an unreachable database.
"""

from __future__ import annotations

import argparse
import logging
import sys

from confluent_kafka import KafkaException

from services.router import store
from services.router.app import create_app
from services.router.config import Config
from switchboard.kafka import ensure_topics
from switchboard.logs import configure_logging
from switchboard.pg_migrations import migrate_at_start
from switchboard.serve import serve
from switchboard.settings import ConfigError

log = logging.getLogger("services.router")


def main(argv: list[str]) -> int:
    argparse.ArgumentParser(
        prog="switchboard router",
        description="Serve the router: management API, /internal/route, health.",
    ).parse_args(argv)  # --help prints the usage and exits
    configure_logging("router")
    try:
        config = Config.from_env()
    except ConfigError as err:
        print(f"router: configuration error: {err}", file=sys.stderr)
        return 2
    if not migrate_at_start("router", config.database_url, store.apply_migrations):
        return 1
    try:
        ensure_topics(config.kafka_bootstrap, config.topics)
    except KafkaException as err:
        log.warning("Kafka at %s not reachable; serving anyway: %s", config.kafka_bootstrap, err)
    if config.twilio_configured:
        log.info("Twilio REST API at %s", config.twilio_api_base_url or "api.twilio.com")
    else:
        log.warning("Twilio credentials not set: number purchases and make-call answer 503")
    # One worker: the process that writes a number change reloads its routing
    # table before answering, so "assigned" or "released" holds for the very
    # next call. Replicas (and extra workers) catch up through LISTEN/NOTIFY
    # within milliseconds; routing is an in-memory lookup, so threads suffice.
    serve(lambda: create_app(config), config.bind, "router", workers=1, threads=16)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
