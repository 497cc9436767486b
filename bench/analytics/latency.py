"""Latency of each metrics endpoint, through the real Flask app (in-process, no socket).

Three scopes: one client over the last 30 days, one client over the year,
all clients over the last 30 days. Each repetition picks another client, so
caches of one client's data do not flatter the figures.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask.testing import FlaskClient

from bench.analytics.synthetic import CLIENTS, client_id

ENDPOINTS: tuple[tuple[str, dict[str, str]], ...] = (
    ("/api/analytics/summary", {}),
    ("/api/analytics/timeseries", {"interval": "day"}),
    ("/api/analytics/durations", {}),
    ("/api/analytics/peak-hours", {}),
    ("/api/analytics/top-callers", {"limit": "10"}),
    ("/api/analytics/geography", {}),
    ("/api/analytics/lead-quality", {}),
    ("/api/analytics/campaigns", {}),
    ("/api/analytics/missed-calls", {"limit": "50"}),
    ("/api/calls", {"limit": "50"}),
)


@dataclass(frozen=True)
class Timing:
    scope: str
    path: str
    median_ms: float
    p95_ms: float
    runs: int


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def scopes(now: datetime) -> list[tuple[str, Callable[[random.Random], dict[str, str]]]]:
    def iso(moment: datetime) -> str:
        return moment.isoformat().replace("+00:00", "Z")

    month = {"from": iso(now - timedelta(days=30)), "to": iso(now)}
    year = {"from": iso(now - timedelta(days=365)), "to": iso(now)}
    return [
        ("client, 30 days", lambda rng: {**month, "clientId": client_id(rng.randrange(CLIENTS))}),
        ("client, 1 year", lambda rng: {**year, "clientId": client_id(rng.randrange(CLIENTS))}),
        ("all clients, 30 days", lambda rng: dict(month)),
    ]


def measure(
    http: FlaskClient,
    headers: dict[str, str],
    now: datetime,
    runs: int,
    progress: Callable[[str], None] = print,
    seed: int = 7,
) -> list[Timing]:
    rng = random.Random(seed)
    timings = []
    for scope, params_for in scopes(now):
        for path, extra in ENDPOINTS:
            spent: list[float] = []
            http.get(path, query_string={**params_for(rng), **extra}, headers=headers)  # warm
            for _ in range(runs):
                params: dict[str, Any] = {**params_for(rng), **extra}
                started = time.perf_counter()
                response = http.get(path, query_string=params, headers=headers)
                spent.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(f"{path} {params}: {response.status_code} {response.data!r}")
            timing = Timing(
                scope, path, statistics.median(spent), percentile(spent, 0.95), len(spent)
            )
            progress(
                f"  {scope:<22} {path:<30} median {timing.median_ms:7.1f} ms   "
                f"p95 {timing.p95_ms:7.1f} ms"
            )
            timings.append(timing)
    return timings
