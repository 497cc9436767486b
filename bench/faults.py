"""Fault scenarios: break one part while simulated calls flow, mend it, count what survived.

Every scenario runs the same way on a `Stack` of its own: one client with a
few tracked numbers, then calls played by the Twilio simulator in three
thirds: the first third before the fault, the second while the part is
broken (for at least `outage` seconds), the last third after it is mended.
Then it waits until analytics shows every call as played and compares:
calls sent, counted, duplicated, and counted wrong. Each scenario adds the
checks its fault calls for (spool filled and drained, callers forwarded
from ingress's routing copy, 503 with a reason), so a failed expectation says exactly what broke.

`python -m bench.faults` runs them at a larger size and prints one table;
tests/faults runs them short, in `make test`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import requests
from confluent_kafka import Consumer, KafkaException, TopicPartition

from bench.calls import (
    Analytics,
    Count,
    Dialer,
    Played,
    Simulator,
    assign,
    plan_calls,
    settle,
    setup_client,
    tracked_numbers,
)
from bench.report import table
from devstack.processes import wait_until
from devstack.stack import ADMIN_TOKEN, Stack, healthy

Say = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    """How big a scenario run is."""

    calls: int = 30
    rate: float = 5.0  # calls placed per second
    outage: float = 2.0  # at least this many seconds broken
    numbers: int = 3
    settle_seconds: float = 90.0


@dataclass
class Outcome:
    scenario: str
    count: Count
    seconds: float
    notes: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)

    @property
    def held(self) -> bool:
        return self.count.clean and self.count.failed_webhooks == 0 and not self.failed_checks

    def __str__(self) -> str:
        text = f"{self.scenario}: {self.count}"
        if self.notes:
            text += "; " + "; ".join(self.notes)
        if self.failed_checks:
            text += "; FAILED: " + "; ".join(self.failed_checks)
        return text


class Sampler(threading.Thread):
    """Reads a number every `interval` seconds and keeps the largest (a gauge's peak)."""

    def __init__(self, read: Callable[[], float | None], interval: float = 0.2) -> None:
        super().__init__(name="sampler", daemon=True)
        self.read = read
        self.interval = interval
        self.peak = 0.0
        self.last: float | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            value = self.read()
            if value is not None:
                self.last = value
                self.peak = max(self.peak, value)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


class Run:
    """One scenario's calls: set-up, the three thirds, and the count at the end."""

    def __init__(self, stack: Stack, plan: Plan, say: Say) -> None:
        self.stack = stack
        self.plan = plan
        self.say = say
        self.simulator = Simulator(stack.service("twilio_sim").url)
        self.analytics = Analytics(stack.url, ADMIN_TOKEN)
        self.numbers = tracked_numbers(plan.numbers)
        self.client_id = setup_client(stack.url, ADMIN_TOKEN, self.numbers, self.simulator)
        self.calls = plan_calls(plan.calls, self.numbers)
        self.played: list[Played] = []
        self.before: list[Played] = []
        self.during: list[Played] = []
        self.after: list[Played] = []
        self.notes: list[str] = []
        self.failed: list[str] = []
        self.started = time.monotonic()

    def check(self, holds: bool, what: str) -> None:
        if not holds:
            self.failed.append(what)

    def drive(self, break_it: Callable[[], object], mend_it: Callable[[], object]) -> None:
        """Place the calls around the fault; `break_it`/`mend_it` run in this thread."""
        third = max(1, len(self.calls) // 3)
        first = Dialer(self.simulator, self.calls[: 2 * third], self.plan.rate)
        first.start()
        first.wait_placed(third, timeout=120)
        # The calls before the fault are those whose webhook was answered before it.
        self.simulator.wait_answered(first.placed[:third], timeout=60)
        self.say(f"    {third} calls placed; breaking")
        broken_at = time.monotonic()
        break_it()
        placed = first.finish(timeout=300)
        self.before, self.during = placed[:third], placed[third:]
        left = self.plan.outage - (time.monotonic() - broken_at)
        if left > 0:
            time.sleep(left)
        self.say(
            f"    {len(placed)} calls placed, down {time.monotonic() - broken_at:.1f}s; mending"
        )
        mended_at = time.monotonic()
        mend_it()
        self.note(f"mended in {time.monotonic() - mended_at:.1f}s")
        last = Dialer(self.simulator, self.calls[2 * third :], self.plan.rate)
        last.start()
        self.after = last.finish(timeout=300)
        self.played = self.before + self.during + self.after
        self.say(f"    {len(self.played)} calls placed; waiting for them to finish")
        self.simulator.finish(self.played, timeout=180)

    def add_played(self, calls: Sequence[Played]) -> None:
        self.played.extend(calls)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def finish(self, scenario: str) -> Outcome:
        self.say(f"    waiting for analytics to show all {len(self.played)} calls")
        result = settle(self.played, self.analytics, self.client_id, self.plan.settle_seconds)
        return Outcome(scenario, result, time.monotonic() - self.started, self.notes, self.failed)


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.25) -> Any:
    """The first truthy value of `predicate` within `timeout` seconds, else None
    (a scenario reports what did not come back instead of stopping)."""
    try:
        return wait_until(predicate, timeout=timeout, interval=interval)
    except TimeoutError:
        return None


# ---- the scenarios -----------------------------------------------------------


def kafka_broker_killed(stack: Stack, plan: Plan, say: Say) -> Outcome:
    """SIGKILL the broker mid-run and restart it: ingress spools, then drains in order."""
    return _kafka_killed(stack, plan, say, "kafka broker killed")


# How long a producer keeps a message it could not deliver before dropping it
# (message.timeout.ms in switchboard.kafka.producer_config).
PRODUCER_GIVES_UP_SECONDS = 30.0


def kafka_down_past_producer_timeout(stack: Stack, plan: Plan, say: Say) -> Outcome:
    """The broker stays down longer than producers keep undelivered messages."""
    longer = replace(plan, outage=max(plan.outage, PRODUCER_GIVES_UP_SECONDS + 5))
    return _kafka_killed(stack, longer, say, f"kafka down {longer.outage:.0f}s+")


def _kafka_killed(stack: Stack, plan: Plan, say: Say, name: str) -> Outcome:
    run = Run(stack, plan, say)
    ingress = stack.service("ingress").url

    def spool_depth() -> float | None:
        try:
            return float(requests.get(f"{ingress}/healthz", timeout=2).json()["spoolDepth"])
        except (requests.RequestException, ValueError, KeyError):
            return None

    sampler = Sampler(spool_depth)
    sampler.start()
    try:
        run.drive(stack.kill_kafka, stack.restart_kafka)
        drained = wait_for(lambda: spool_depth() == 0, timeout=60)
    finally:
        sampler.stop()
    run.note(f"spool peaked at {sampler.peak:.0f} events")
    run.check(sampler.peak > 0, "ingress never spooled while Kafka was down")
    run.check(bool(drained), f"spool not drained 60s after Kafka came back ({spool_depth()} left)")
    run.check(
        all(p.forwarded for p in run.played),
        "some calls were not forwarded while Kafka was down "
        f"({sum(not p.forwarded for p in run.played)})",
    )
    return run.finish(name)


def uncommitted(bootstrap: str, group: str, topic: str) -> int | None:
    """Messages on `topic` past `group`'s committed offsets (read or not), or None."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        partitions = consumer.list_topics(topic, timeout=5).topics[topic].partitions
        committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=5)
        total = 0
        for tp in committed:
            low, high = consumer.get_watermark_offsets(tp, timeout=5)
            total += high - (tp.offset if tp.offset >= 0 else low)
        return total
    except KafkaException:
        return None
    finally:
        consumer.close()


def analytics_consumer_killed(stack: Stack, plan: Plan, say: Say) -> Outcome:
    """SIGKILL analytics (its consumer holds an open batch) and start it again."""
    run = Run(stack, plan, say)
    group = stack.env.get("ANALYTICS_GROUP_ID", "analytics")
    in_flight: list[int | None] = []

    def kill() -> None:
        in_flight.append(uncommitted(stack.bootstrap, group, stack.topics.call_events))
        stack.service("analytics").kill()

    run.drive(kill, lambda: stack.start_service("analytics"))
    run.note(f"{in_flight[0]} events uncommitted by the consumer when it was killed")
    return run.finish("analytics consumer killed")


def router_stopped(stack: Stack, plan: Plan, say: Say) -> Outcome:
    """Stop router: ingress forwards callers from its copy of the number events; calls count."""
    run = Run(stack, plan, say)

    def mend() -> None:
        url = stack.start_service("router").url
        ready = wait_for(lambda: healthy(url, "/readyz"), timeout=30)
        run.check(bool(ready), "router not ready 30s after its restart")

    run.drive(lambda: stack.service("router").stop(), mend)
    forwarded = sum(p.forwarded for p in run.during)
    run.note(f"{forwarded} of {len(run.during)} calls forwarded while router was stopped")
    run.check(
        all(p.forwarded for p in run.played),
        "a call to a known number was not forwarded (before, during or after the outage)",
    )
    return run.finish("router stopped")


def postgres_stopped(stack: Stack, plan: Plan, say: Say) -> Outcome:
    """Stop PostgreSQL: routing goes on from memory, the management API says 503 and why."""
    run = Run(stack, plan, say)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    answers: list[requests.Response] = []

    def clients() -> requests.Response:
        return requests.get(f"{stack.url}/api/clients", headers=headers, timeout=30)

    def new_client() -> requests.Response:
        body = {"name": "Created While Down", "forwardTo": "+14155550199"}
        return requests.post(f"{stack.url}/api/clients", json=body, headers=headers, timeout=30)

    def stop() -> None:
        stack.stop_postgres()
        answers.extend([clients(), new_client()])

    run.drive(stop, stack.start_postgres)
    mended = time.monotonic()
    for what, down in zip(("GET /api/clients", "POST /api/clients"), answers, strict=True):
        error = _error_of(down)
        run.note(f"{what} while down: {down.status_code} {error.get('code')}")
        run.check(down.status_code == 503, f"{what} answered {down.status_code}, not 503")
        run.check(bool(error.get("code")) and bool(error.get("message")), f"{what}: no reason")
    back = wait_for(lambda: clients().status_code == 200, timeout=30)
    run.check(bool(back), "management API not back within 30s of PostgreSQL")
    run.note(f"management API back {time.monotonic() - mended:.1f}s after PostgreSQL")
    run.check(all(p.forwarded for p in run.played), "calls not forwarded while PostgreSQL was down")
    # A number assigned after the restart must reach the routing table (LISTEN reconnected).
    fresh = tracked_numbers(1, first=900)[0]
    assign(stack.url, ADMIN_TOKEN, run.client_id, fresh)
    run.simulator.own_number(fresh, stack.url)
    probes = _probe_until_forwarded(run, fresh, timeout=30)
    run.check(probes[-1].forwarded, f"a number assigned after the restart is not routed ({fresh})")
    run.note(f"new number routed after {len(probes)} probe call(s)")
    return run.finish("postgres stopped")


def _error_of(reply: requests.Response) -> dict[str, Any]:
    try:
        body = reply.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _probe_until_forwarded(run: Run, number: str, timeout: float) -> list[Played]:
    """Calls to `number`, one a second, until one is forwarded or `timeout` passes."""
    call = plan_calls(1, [number])[0]
    probes: list[Played] = []
    deadline = time.monotonic() + timeout
    while True:
        probe = Played(run.simulator.place(call), call, time.time())
        run.simulator.finish([probe], timeout=30)
        probes.append(probe)
        if probe.forwarded or time.monotonic() > deadline:
            break
        time.sleep(1)
    run.add_played(probes)
    return probes


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Callable[[Stack, Plan, Say], Outcome]
    kills_kafka: bool = False
    kills_postgres: bool = False


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("kafka", kafka_broker_killed, kills_kafka=True),
        Scenario("kafka-long", kafka_down_past_producer_timeout, kills_kafka=True),
        Scenario("analytics", analytics_consumer_killed),
        Scenario("router", router_stopped),
        Scenario("postgres", postgres_stopped, kills_postgres=True),
    )
}


# ---- the command ----------------------------------------------------------------


def run_scenario(scenario: Scenario, plan: Plan, folder: Path, say: Say) -> Outcome:
    """Start a stack of its own (own Kafka and PostgreSQL) and run `scenario` on it."""
    with Stack(folder / f"{scenario.name}-{uuid.uuid4().hex[:6]}", say=say) as stack:
        try:
            return scenario.run(stack, plan, say)
        except Exception as err:
            say(f"    {scenario.name} failed: {err}; logs in {stack.logs}")
            raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.faults",
        description="Break parts of Switchboard while simulated calls flow; count what survived.",
    )
    parser.add_argument("--calls", type=int, default=300, help="calls per scenario")
    parser.add_argument("--rate", type=float, default=10.0, help="calls placed per second")
    parser.add_argument("--outage", type=float, default=10.0, help="seconds each part stays down")
    parser.add_argument(
        "--scenario",
        action="append",
        choices=sorted(SCENARIOS),
        help="run only this scenario (repeatable); default: all",
    )
    parser.add_argument("--keep", action="store_true", help="keep the run folder (logs, data)")
    args = parser.parse_args(argv)
    if not 3 <= args.calls <= 20000 or not 0.1 <= args.rate <= 200 or args.outage > 120:
        parser.error("--calls 3..20000, --rate 0.1..200 and --outage at most 120")
    plan = Plan(calls=args.calls, rate=args.rate, outage=args.outage, settle_seconds=180)
    folder = Path(tempfile.mkdtemp(prefix="switchboard-bench-faults-"))
    names = args.scenario or list(SCENARIOS)
    outcomes: list[Outcome] = []
    print(
        f"Fault scenarios: {', '.join(names)}; {plan.calls} calls each at {plan.rate:g}/s, "
        f"parts down for at least {plan.outage:g}s (state in {folder})",
        flush=True,
    )
    for name in names:
        print(f"\n[{name}] starting a stack of its own", flush=True)
        outcome = run_scenario(SCENARIOS[name], plan, folder, lambda text: print(text, flush=True))
        outcomes.append(outcome)
        print(f"[{name}] {'held' if outcome.held else 'DID NOT HOLD'}: {outcome}", flush=True)
    print()
    print(
        table(
            ["scenario", "sent", "counted", "duplicated", "wrong", "refused", "seconds", "result"],
            [
                [
                    o.scenario,
                    o.count.sent,
                    o.count.counted,
                    o.count.duplicated,
                    o.count.wrong,
                    o.count.failed_webhooks,
                    round(o.seconds),
                    "held" if o.held else "FAILED",
                ]
                for o in outcomes
            ],
        )
    )
    for outcome in outcomes:
        print(f"  {outcome.scenario}: {'; '.join(outcome.notes + outcome.failed_checks)}")
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return 0 if all(o.held for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
