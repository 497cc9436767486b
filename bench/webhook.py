"""Webhook throughput and latency: ingress (+ router, Kafka, PostgreSQL) beside a bare baseline.

Both targets get the same signed incoming-call webhooks (form-encoded, one
new CallSid each, to numbers router forwards) from the open-loop generator
in bench.loadgen, at rising rates: each step offers `growth` times the last
until the target saturates (answers fall below 90% of the offered rate, more
than 1% fail, or p99 passes a second). The most it answered per second is
its throughput at saturation; a last step at half of that gives p50/p99.
The baseline (bench.baseline) is the same gunicorn stack answering constant
TwiML; the ratio of the two throughputs is what ingress's work costs. The
two-hop baseline is that stack asking a second one over HTTP (as ingress
asks router) with no other work: the ceiling of the path's shape.

`python -m bench.webhook` prints each step and one table at the end.
"""

from __future__ import annotations

import argparse
import itertools
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from bench import cpu
from bench.calls import assign, create_client, tracked_numbers
from bench.loadgen import LoadGenerator, StepResult, http_post
from bench.report import table
from devstack.processes import free_port
from devstack.stack import ACCOUNT_SID, ADMIN_TOKEN, AUTH_TOKEN, Service, Stack

PATH = "/api/twilio/webhook"
P99_LIMIT_MS = 1000.0  # past this a step counts as saturated
TARGET_RATIO = 0.5
TARGET_P99_MS = 50.0


def incoming_call(call_sid: str, caller: str, to: str) -> dict[str, str]:
    """The form fields of Twilio's incoming-call webhook."""
    params = {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "From": caller,
        "To": to,
        "Caller": caller,
        "Called": to,
        "CallToken": secrets.token_urlsafe(24),
        "StirVerstat": "TN-Validation-Passed-A",
    }
    for prefix, (city, state, zip_code) in (
        ("From", ("NEW YORK", "NY", "10001")),
        ("Caller", ("NEW YORK", "NY", "10001")),
        ("To", ("OAKLAND", "CA", "94612")),
        ("Called", ("OAKLAND", "CA", "94612")),
    ):
        params.update(
            {
                f"{prefix}City": city,
                f"{prefix}State": state,
                f"{prefix}Zip": zip_code,
                f"{prefix}Country": "US",
            }
        )
    return params


def signed_webhooks(port: int, numbers: list[str], count: int) -> list[bytes]:
    """`count` distinct incoming-call webhooks, signed for http://127.0.0.1:<port>."""
    validator = RequestValidator(AUTH_TOKEN)
    url = f"http://127.0.0.1:{port}{PATH}"
    prepared = []
    for index in range(count):
        params = incoming_call(
            "CA" + secrets.token_hex(16),
            f"+1212555{index % 10000:04d}",
            numbers[index % len(numbers)],
        )
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": validator.compute_signature(url, params),
        }
        prepared.append(http_post("127.0.0.1", port, PATH, headers, urlencode(params).encode()))
    return prepared


@dataclass
class Measured:
    target: str
    steps: list[StepResult]
    half: StepResult | None
    half_cpu_us: dict[str, float] = field(default_factory=dict)  # per request, by part

    @property
    def saturation_rps(self) -> float:
        return max((s.achieved_rps for s in self.steps), default=0.0)


def saturated(step: StepResult) -> bool:
    return (
        step.achieved_rps < 0.9 * step.offered_rps
        or step.failure_ratio > 0.01
        or step.p(0.99) > P99_LIMIT_MS
    )


def step_line(label: str, step: StepResult) -> str:
    codes = ",".join(f"{code}x{n}" for code, n in sorted(step.statuses.items()))
    codes += "".join(f",{kind}x{n}" for kind, n in sorted(step.error_kinds.items()))
    return (
        f"  {label:<9} offered {step.offered_rps:7.0f}/s  answered {step.achieved_rps:7.1f}/s  "
        f"p50 {step.p(0.5):7.1f} ms  p99 {step.p(0.99):7.1f} ms  "
        f"failed {step.failed}/{step.sent}  [{codes or 'no answers'}]"
    )


def cpu_line(per_request: Mapping[str, float]) -> str:
    parts = [f"{name} {us:,.0f} us" for name, us in per_request.items()]
    return ", ".join(parts) + f"; in all {sum(per_request.values()):,.0f} us"


def measure(
    target: str,
    port: int,
    requests: Iterator[bytes],
    start_rate: float,
    growth: float,
    max_rate: float,
    step_seconds: float,
    half_seconds: float,
    warmup_rate: float,
    warmup_seconds: float,
    parts: Mapping[str, int | None],
    say: Callable[[str], None],
) -> Measured:
    """Warm up, step up to saturation, then half of it; `parts` are CPU-counted at half load."""
    generator = LoadGenerator("127.0.0.1", port)
    say(f"[{target}] warming up: {warmup_rate:.0f}/s for {warmup_seconds:.0f} s (not measured)")
    warm = generator.run(requests, rate=warmup_rate, duration=warmup_seconds)
    say(step_line("warm-up", warm))
    time.sleep(1.0)  # let the warm-up's queues drain
    steps: list[StepResult] = []
    rate = start_rate
    while rate <= max_rate:
        step = generator.run(requests, rate=rate, duration=step_seconds)
        steps.append(step)
        say(step_line(target, step))
        if saturated(step):
            break
        rate *= growth
    else:
        say(f"  {target}: not saturated at {max_rate:.0f}/s (the cap); throughput is a floor")
    measured = Measured(target, steps, None)
    half_rate = measured.saturation_rps / 2
    if half_rate >= 1:
        time.sleep(1.0)  # let the queues of the last step drain
        before = cpu.snapshot(parts)
        measured.half = generator.run(requests, rate=half_rate, duration=half_seconds)
        measured.half_cpu_us = cpu.per_request_us(before, cpu.snapshot(parts), measured.half.sent)
        say(step_line("half load", measured.half))
        say("  CPU per request at half load: " + cpu_line(measured.half_cpu_us))
    return measured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.webhook",
        description="Signed incoming-call webhooks at rising rates: ingress vs bare baselines.",
    )
    parser.add_argument("--start-rate", type=float, default=25.0, help="first step, requests/s")
    parser.add_argument("--growth", type=float, default=1.5, help="each step offers this much more")
    parser.add_argument("--max-rate", type=float, default=6000.0, help="never offer more than this")
    parser.add_argument("--step-seconds", type=float, default=5.0, help="length of each step")
    parser.add_argument("--half-seconds", type=float, default=10.0, help="the half-load step")
    parser.add_argument("--requests", type=int, default=20000, help="distinct signed webhooks")
    parser.add_argument(
        "--warmup-rate", type=float, default=300.0, help="requests/s before the steps, unmeasured"
    )
    parser.add_argument(
        "--warmup-seconds",
        type=float,
        default=30.0,
        help="how long to warm up (the broker's JIT compiler needs about half a minute of load)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the run folder (logs, data)")
    args = parser.parse_args(argv)
    if not (
        1 <= args.start_rate <= args.max_rate <= 20000
        and 1.1 <= args.growth <= 4
        and 0.5 <= args.step_seconds <= 60
        and 1 <= args.half_seconds <= 120
        and 100 <= args.requests <= 200000
        and 1 <= args.warmup_rate <= 20000
        and 0 <= args.warmup_seconds <= 600
    ):
        parser.error(
            "rates 1..20000, growth 1.1..4, steps 0.5..60 s, half 1..120 s, warm-up 0..600 s"
        )

    folder = Path(tempfile.mkdtemp(prefix="switchboard-bench-webhook-"))
    print(f"Webhook benchmark (state in {folder})", flush=True)

    def say(text: str) -> None:
        print(text, flush=True)

    stack = Stack(folder, services=("router", "ingress"), edge=False, say=say)
    baselines: list[Service] = []
    try:
        stack.start()
        for name, upstream in (("baseline", None), ("two-hop", "baseline")):
            env = {"SWITCHBOARD_ENV_FILE": os.devnull}
            if upstream is not None:
                env["BENCH_BASELINE_UPSTREAM"] = baselines[0].url
            baselines.append(
                Service(
                    name,
                    env,
                    free_port(),
                    stack.logs,
                    module="bench.baseline",
                    bind_variable="BENCH_BASELINE_BIND",
                ).start()
            )
            say(f"  {name:<11} up")
        router = stack.service("router").url
        numbers = tracked_numbers(10)
        client_id = create_client(router, ADMIN_TOKEN)
        for number in numbers:
            assign(router, ADMIN_TOKEN, client_id, number)
        ingress_port = stack.ports["ingress"]
        say(f"  signing {args.requests} webhooks")
        prepared = signed_webhooks(ingress_port, numbers, args.requests)
        results = []
        # The CPU each target's parts spend per request (None: this process,
        # the load generator).
        targets: list[tuple[str, int, dict[str, int | None]]] = [
            (service.name, service.port, {service.name: service.pid}) for service in baselines
        ]
        targets[1][2]["baseline"] = baselines[0].pid  # the two-hop one's second hop
        ingress_parts: dict[str, int | None] = {
            name: stack.service(name).pid for name in ("ingress", "router")
        }
        if stack.kafka is not None:
            ingress_parts["kafka"] = stack.kafka.child.pid
        targets.append(("ingress", ingress_port, ingress_parts))
        for target, port, parts in targets:
            results.append(
                measure(
                    target,
                    port,
                    itertools.cycle(prepared),
                    args.start_rate,
                    args.growth,
                    args.max_rate,
                    args.step_seconds,
                    args.half_seconds,
                    args.warmup_rate,
                    args.warmup_seconds,
                    {**parts, "load generator": None},
                    say,
                )
            )
    finally:
        for service in reversed(baselines):
            service.stop()
        stack.close()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)

    base, two_hop, real = results
    print()
    rows = []
    for measured in results:
        half = measured.half
        rows.append(
            [
                measured.target,
                round(measured.saturation_rps, 1),
                round(half.offered_rps, 1) if half else "-",
                round(half.p(0.5), 1) if half else "-",
                round(half.p(0.99), 1) if half else "-",
                f"{half.failed}/{half.sent}" if half else "-",
            ]
        )
    print(
        table(["target", "rps at saturation", "half load rps", "p50 ms", "p99 ms", "failed"], rows)
    )
    print("\nCPU per request at half load (user + system, from /proc):")
    for measured in results:
        if measured.half_cpu_us:
            print(f"  {measured.target:<9} {cpu_line(measured.half_cpu_us)}")
    ratio = real.saturation_rps / base.saturation_rps if base.saturation_rps else 0.0
    ceiling = two_hop.saturation_rps / base.saturation_rps if base.saturation_rps else 0.0
    p99 = real.half.p(0.99) if real.half else float("nan")
    print(
        f"\ningress / baseline throughput: {ratio:.2f} (target >= {TARGET_RATIO:.2f}: "
        f"{'met' if ratio >= TARGET_RATIO else 'NOT met'}); ingress p99 at half load "
        f"{p99:.1f} ms (target < {TARGET_P99_MS:.0f} ms: "
        f"{'met' if p99 < TARGET_P99_MS else 'NOT met'})\n"
        f"two-hop baseline / baseline: {ceiling:.2f} (the most a call path that asks router "
        f"over HTTP per call reaches here; ingress is at {ratio / ceiling if ceiling else 0:.0%} "
        "of it)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
