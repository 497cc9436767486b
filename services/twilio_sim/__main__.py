"""`python -m services.twilio_sim`: serve the Twilio simulator (no dependencies to check)."""

from __future__ import annotations

import argparse
import logging
import sys

from switchboard.logs import configure_logging
from switchboard.serve import serve
from switchboard.settings import ConfigError

log = logging.getLogger("services.twilio_sim")


def main(argv: list[str]) -> int:
    argparse.ArgumentParser(
        prog="switchboard twilio_sim",
        description="Serve the Twilio simulator: REST API, simulated calls and their webhooks.",
    ).parse_args(argv)  # --help prints the usage and exits
    configure_logging("twilio-sim")
    from services.twilio_sim.config import Config

    try:
        config = Config.from_env()
    except ConfigError as err:
        print(f"twilio-sim: configuration error: {err}", file=sys.stderr)
        return 2

    from services.twilio_sim.app import create_app

    log.info(
        "Twilio simulator for account %s on %s (public URL %s)",
        config.account_sid,
        config.bind,
        config.public_url,
    )
    # One worker: the simulated account lives in this process's memory.
    serve(lambda: create_app(config), config.bind, "twilio-sim", workers=1, threads=16)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
