"""`python -m services.ingress`: check Kafka is reachable, then serve the webhooks."""

from __future__ import annotations

import argparse
import logging
import sys

from confluent_kafka.admin import AdminClient

from switchboard.kafka import ensure_topics
from switchboard.logs import configure_logging
from switchboard.serve import serve
from switchboard.settings import ConfigError

log = logging.getLogger("services.ingress")


def main(argv: list[str]) -> int:
    argparse.ArgumentParser(
        prog="switchboard ingress",
        description="Serve Twilio's webhooks: check signatures, publish events, answer TwiML.",
    ).parse_args(argv)  # --help prints the usage and exits
    configure_logging("ingress")
    from services.ingress.config import Config

    try:
        config = Config.from_env()
    except ConfigError as err:
        print(f"ingress: configuration error: {err}", file=sys.stderr)
        return 2
    try:
        AdminClient({"bootstrap.servers": config.kafka_bootstrap}).list_topics(timeout=10)
        ensure_topics(config.kafka_bootstrap, config.topics)
    except Exception as err:
        print(
            f"ingress: Kafka at {config.kafka_bootstrap} is not reachable: {err}", file=sys.stderr
        )
        return 1

    from services.ingress.app import create_app

    serve(lambda: create_app(config), config.bind, "ingress", workers=2, threads=8)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
