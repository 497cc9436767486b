"""Missed-call alert latency: from the <Dial> result webhook to the email's arrival.

A stack of its own (Kafka, PostgreSQL, the simulator, router, ingress and
reporting behind the nginx edge, with the stack's mail catcher as the SMTP
server); one client whose notification settings email every missed call.
N calls nobody answers are played by the Twilio simulator at a steady pace.
A call's latency is the time from the simulator sending its dial-action
webhook to the alert email landing in the mail catcher's Maildir (the
message file's modification time; the email names its call in
`X-Switchboard-Call`). The alert waits for the caller's last status
callback, which the simulator sends right after the dial result, so the
figure covers ingress, Kafka, the reporting worker's table, the alert topic,
PostgreSQL and SMTP.

`python -m bench.alerts` prints its progress and one table at the end.
"""

from __future__ import annotations

import argparse
import email
import shutil
import sys
import tempfile
import time
from email import policy
from pathlib import Path

import requests

from bench.calls import (
    Dialer,
    PlannedCall,
    Played,
    Simulator,
    parse_time,
    setup_client,
    tracked_numbers,
)
from bench.report import percentile, table
from devstack.processes import wait_until
from devstack.stack import ADMIN_TOKEN, Stack

TARGET_P95_SECONDS = 5.0
OWNER = "owner@bench.example"


def arrivals(maildir: Path) -> dict[str, float]:
    """CallSid -> when its alert email landed (the Maildir file's modification time)."""
    found: dict[str, float] = {}
    for folder in ("new", "cur"):
        for path in (maildir / folder).glob("*") if (maildir / folder).is_dir() else ():
            with path.open("rb") as handle:
                message = email.message_from_binary_file(handle, policy=policy.default)
            sid = message["X-Switchboard-Call"]
            if sid:
                found.setdefault(str(sid), path.stat().st_mtime)
    return found


def dial_result_sent(call: Played) -> float | None:
    times = [parse_time(cb["sentAt"]) for cb in call.callbacks if cb["kind"] == "dial-action"]
    return min(times) if times else None


def missed(count: int, numbers: list[str], first_caller: int) -> list[PlannedCall]:
    return [
        PlannedCall(f"+1212555{first_caller + i:04d}", numbers[i % len(numbers)], "no-answer", 0, 2)
        for i in range(count)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.alerts",
        description="Missed-call alert latency: dial-result webhook to the email's arrival.",
    )
    parser.add_argument("--calls", type=int, default=200, help="missed calls to play")
    parser.add_argument("--rate", type=float, default=5.0, help="calls placed per second")
    parser.add_argument("--numbers", type=int, default=5, help="tracked numbers")
    parser.add_argument("--keep", action="store_true", help="keep the run folder (logs, data)")
    args = parser.parse_args(argv)
    if not (1 <= args.calls <= 5000 and 0.1 <= args.rate <= 100 and 1 <= args.numbers <= 100):
        parser.error("--calls 1..5000, --rate 0.1..100, --numbers 1..100")

    folder = Path(tempfile.mkdtemp(prefix="switchboard-bench-alerts-"))

    def say(text: str) -> None:
        print(text, flush=True)

    say(
        f"Missed-call alerts: {args.calls} unanswered calls at {args.rate:g}/s over "
        f"{args.numbers} numbers (state in {folder})"
    )
    try:
        with Stack(
            folder, services=("twilio_sim", "router", "ingress", "reporting"), say=say
        ) as stack:
            assert stack.mail is not None
            maildir = stack.mail.maildir
            simulator = Simulator(stack.service("twilio_sim").url)
            numbers = tracked_numbers(args.numbers)
            client_id = setup_client(stack.url, ADMIN_TOKEN, numbers, simulator)
            reply = requests.put(
                f"{stack.url}/api/clients/{client_id}/notifications",
                json={"missedCall": {"email": [OWNER]}},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                timeout=10,
            )
            if reply.status_code != 200:
                raise RuntimeError(f"notification settings refused: {reply.text}")
            # The first alerts wait for the worker's group to form: warm-up, not timed.
            warm = Dialer(simulator, missed(3, numbers, 9000), 3.0)
            warm.start()
            warmed = warm.finish(timeout=60)
            wait_until(
                lambda: all(p.call_sid in arrivals(maildir) for p in warmed),
                timeout=120,
                interval=0.5,
                message="the warm-up alerts",
            )
            say(f"  {len(warmed)} warm-up alerts arrived")
            began = time.monotonic()
            dialer = Dialer(simulator, missed(args.calls, numbers, 0), args.rate)
            dialer.start()
            while dialer.is_alive():
                dialer.join(5)
                say(f"  {len(dialer.placed)} calls placed ({time.monotonic() - began:.0f}s)")
            played = dialer.finish(timeout=60)
            say("  waiting for the simulator to finish playing them")
            simulator.finish(played, timeout=300)
            say("  waiting for every alert email")
            try:
                wait_until(
                    lambda: all(p.call_sid in arrivals(maildir) for p in played),
                    timeout=120,
                    interval=0.5,
                    message="every alert email",
                )
            except TimeoutError as err:
                say(f"  {err}")
            landed = arrivals(maildir)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)

    latencies = []
    for call in played:
        sent = dial_result_sent(call)
        if sent is not None and call.call_sid in landed:
            latencies.append(landed[call.call_sid] - sent)
    p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
    print()
    print(
        table(
            ["missed calls", "emails", "p50 ms", "p95 ms", "max ms"],
            [
                [
                    len(played),
                    len(latencies),
                    round(p50 * 1000),
                    round(p95 * 1000),
                    round(max(latencies, default=float("nan")) * 1000),
                ]
            ],
        )
    )
    met = p95 < TARGET_P95_SECONDS and len(latencies) == len(played)
    print(
        f"\nalert latency p95 target < {TARGET_P95_SECONDS:g}s with every alert emailed: "
        f"{'met' if met else 'NOT met'}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
