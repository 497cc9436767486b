"""End to end: simulated calls through the whole system, and how fresh analytics is.

A stack of its own (Kafka, PostgreSQL, simulator, router, analytics, ingress
behind the nginx edge); N calls played by the Twilio simulator at a steady
pace, every webhook signed as Twilio signs it. Meanwhile a watcher reads the
call list through the edge every `interval` seconds and notes when each
call's fact first showed each state. Freshness of a call is the time from
the webhook that settled what the list shows (the <Dial> result, or the
recording callback for a recorded call) being sent, to the watcher first
seeing that final state; it includes up to one watch interval. Loss is
calls sent minus calls counted; duplicates are rows past one per call.

`python -m bench.e2e` prints its progress and one table at the end.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

from bench.calls import (
    Analytics,
    Dialer,
    Played,
    Simulator,
    plan_calls,
    settle,
    setup_client,
    tracked_numbers,
)
from bench.report import percentile, table
from devstack.stack import ADMIN_TOKEN, Stack

TARGET_P95_SECONDS = 2.0


def visible_state(fact: dict[str, Any]) -> tuple[Any, ...]:
    return (fact.get("status"), fact.get("durationSec"), fact.get("recorded"))


class Watcher(threading.Thread):
    """Reads the call list every `interval` s; when each (call, state) was first seen."""

    def __init__(self, analytics: Analytics, interval: float) -> None:
        super().__init__(name="watcher", daemon=True)
        self.analytics = analytics
        self.interval = interval
        self.first_seen: dict[tuple[str, tuple[Any, ...]], float] = {}
        self.reads = 0
        self.read_seconds: list[float] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            began = time.time()
            try:
                rows = self.analytics.calls()
            except requests.RequestException:
                rows = []
            seen = time.time()
            self.reads += 1
            self.read_seconds.append(seen - began)
            for row in rows:
                self.first_seen.setdefault((row["callSid"], visible_state(row)), seen)
            self._halt.wait(max(0.0, self.interval - (seen - began)))

    def stop(self) -> None:
        self._halt.set()
        self.join(10)

    def freshness(self, call: Played) -> float | None:
        """Seconds from the settling webhook to the final state being seen, if it was."""
        status, duration, recorded = call.expected()
        seen = self.first_seen.get((call.call_sid, (status, duration, recorded)))
        return None if seen is None else max(0.0, seen - call.decided_at())


def warm_up(
    simulator: Simulator, analytics: Analytics, client_id: str, numbers: list[str]
) -> list[Played]:
    """A few calls, played and waited for until analytics shows them."""
    calls = plan_calls(3, numbers)
    warm = [Played(simulator.place(call), call, time.time()) for call in calls]
    simulator.finish(warm, timeout=60)
    counted = settle(warm, analytics, client_id, timeout=60)
    if not counted.clean:
        raise RuntimeError(f"warm-up calls not counted: {counted}")
    return warm


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.e2e",
        description="Simulated calls end to end: freshness of analytics, loss and duplicates.",
    )
    parser.add_argument("--calls", type=int, default=500, help="calls to play")
    parser.add_argument("--rate", type=float, default=10.0, help="calls placed per second")
    parser.add_argument("--numbers", type=int, default=10, help="tracked numbers")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between reads")
    parser.add_argument("--keep", action="store_true", help="keep the run folder (logs, data)")
    args = parser.parse_args(argv)
    if not (
        1 <= args.calls <= 20000
        and 0.1 <= args.rate <= 200
        and 1 <= args.numbers <= 1000
        and 0.05 <= args.interval <= 5
    ):
        parser.error("--calls 1..20000, --rate 0.1..200, --numbers 1..1000, --interval 0.05..5")

    folder = Path(tempfile.mkdtemp(prefix="switchboard-bench-e2e-"))

    def say(text: str) -> None:
        print(text, flush=True)

    say(
        f"End to end: {args.calls} simulated calls at {args.rate:g}/s over {args.numbers} "
        f"numbers (state in {folder})"
    )
    try:
        with Stack(folder, say=say) as stack:
            simulator = Simulator(stack.service("twilio_sim").url)
            analytics = Analytics(stack.url, ADMIN_TOKEN)
            numbers = tracked_numbers(args.numbers)
            client_id = setup_client(stack.url, ADMIN_TOKEN, numbers, simulator)
            # Until the consumer has its partitions, the first events wait for the
            # group to form: warm-up calls take that, and are not timed (but counted).
            warm = warm_up(simulator, analytics, client_id, numbers)
            say(f"  {len(warm)} warm-up calls counted")
            watcher = Watcher(Analytics(stack.url, ADMIN_TOKEN), args.interval)
            watcher.start()
            began = time.monotonic()
            dialer = Dialer(simulator, plan_calls(args.calls, numbers), args.rate)
            dialer.start()
            while dialer.is_alive():
                dialer.join(5)
                say(f"  {len(dialer.placed)} calls placed ({time.monotonic() - began:.0f}s)")
            played = dialer.finish(timeout=60)
            say("  waiting for the simulator to finish playing them")
            simulator.finish(played, timeout=300)
            say("  waiting for analytics to show them all")
            result = settle(warm + played, analytics, client_id, timeout=120)
            time.sleep(2 * args.interval)  # the watcher's last look
            watcher.stop()
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)

    fresh = [f for f in (watcher.freshness(p) for p in played) if f is not None]
    webhook_ms = [cb["elapsedMs"] for p in played for cb in p.callbacks if cb.get("status")]
    p95 = percentile(fresh, 0.95)
    print()
    print(
        table(
            [
                "calls sent",
                "counted",
                "lost",
                "duplicated",
                "wrong",
                "fresh p50 ms",
                "fresh p95 ms",
                "fresh max ms",
                "webhook p50 ms",
                "webhook p99 ms",
            ],
            [
                [
                    result.sent,
                    result.counted,
                    result.sent - result.counted,
                    result.duplicated,
                    result.wrong,
                    round(percentile(fresh, 0.5) * 1000),
                    round(p95 * 1000),
                    round(max(fresh, default=float("nan")) * 1000),
                    round(percentile(webhook_ms, 0.5), 1),
                    round(percentile(webhook_ms, 0.99), 1),
                ]
            ],
        )
    )
    reads = watcher.read_seconds
    print(
        f"\nfreshness seen for {len(fresh)} of {len(played)} calls; the watcher read the call "
        f"list {watcher.reads} times, every {args.interval:g}s (a read took "
        f"{percentile(reads, 0.5) * 1000:.0f} ms at p50), so figures include up to one interval."
    )
    print(
        f"freshness p95 target < {TARGET_P95_SECONDS:g}s: "
        f"{'met' if p95 < TARGET_P95_SECONDS else 'NOT met'}; loss and duplicates must be 0: "
        f"{'met' if result.clean else 'NOT met'}"
    )
    timed = sorted(
        (
            (f, p.decided_at() - played[0].placed_at)
            for p in played
            if (f := watcher.freshness(p)) is not None
        ),
        reverse=True,
    )
    if timed:
        print(
            "slowest: "
            + ", ".join(f"{f * 1000:.0f} ms (settled at +{at:.1f}s)" for f, at in timed[:5])
        )
    if result.problems:
        print("problems: " + " | ".join(result.problems[:5]))
    return 0 if result.clean else 1


if __name__ == "__main__":
    sys.exit(main())
