"""The `switchboard` console script: one subcommand per process.

`switchboard ingress|router|analytics|recordings|twilio_sim` starts a service (each checks its
dependencies first and exits non-zero with a clear message when one is
unreachable); `switchboard run` brings the whole system up on the embedded
defaults (see switchboard.devstack).
"""

from __future__ import annotations

import importlib
import sys

SERVICES = ("ingress", "router", "analytics", "recordings", "twilio_sim")
COMMANDS = {
    **{name: f"services.{name}.__main__" for name in SERVICES},
    "run": "switchboard.devstack.run",
    "demo": "switchboard.demo",
}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help") or args[0] not in COMMANDS:
        print("usage: switchboard {" + ",".join(COMMANDS) + "} [options]", file=sys.stderr)
        return 0 if args and args[0] in ("-h", "--help") else 2
    module = importlib.import_module(COMMANDS[args[0]])
    result: int = module.main(args[1:])
    return result


if __name__ == "__main__":
    sys.exit(main())
