"""The `switchboard` console script: one subcommand per process.

`switchboard <service>` starts a service (each checks its dependencies first
and exits non-zero with a clear message when one is unreachable);
`switchboard run` brings the whole system up on the embedded defaults (see the
devstack package); `switchboard <name> --help` prints that command's
options and starts nothing.
"""

from __future__ import annotations

import importlib
import sys
from typing import NamedTuple


class Command(NamedTuple):
    module: str
    summary: str


COMMANDS = {
    "ingress": Command(
        "services.ingress.__main__", "Twilio's webhooks: signatures, events, TwiML"
    ),
    "router": Command(
        "services.router.__main__", "clients, numbers, routing decisions and the management API"
    ),
    "analytics": Command(
        "services.analytics.__main__", "call events into ClickHouse; the calls and metrics API"
    ),
    "recordings": Command(
        "services.recordings.__main__", "fetch, encrypt, store and serve call recordings"
    ),
    "reporting": Command(
        "services.reporting.__main__", "missed-call alerts by email, SMS and signed webhooks"
    ),
    "twilio_sim": Command(
        "services.twilio_sim.__main__", "the Twilio simulator (REST API and simulated calls)"
    ),
    "run": Command("devstack.run", "the whole system on this machine (make run)"),
    "demo": Command("devstack.demo", "simulated calls for a few clients through `run`"),
}


def usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [
        "usage: switchboard <command> [options]",
        "",
        "commands:",
        *(f"  {name:<{width}}  {command.summary}" for name, command in COMMANDS.items()),
        "",
        "`switchboard <command> --help` shows a command's options.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(usage())
        return 0
    if not args or args[0] not in COMMANDS:
        if args:
            print(f"switchboard: unknown command {args[0]!r}", file=sys.stderr)
        print(usage(), file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[args[0]].module)
    try:
        result: int = module.main(args[1:])
    except SystemExit as exit_:  # argparse's --help and usage errors
        return exit_.code if isinstance(exit_.code, int) else 0 if exit_.code is None else 2
    return result


if __name__ == "__main__":
    sys.exit(main())
