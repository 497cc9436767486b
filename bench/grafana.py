"""`python -m bench.grafana [--calls N] [--runs R]`: the dashboards through the ClickHouse endpoint.

1. Load N synthetic call facts (default 10,000,000; 1,000 clients over a
   year) into a fresh chDB folder, as bench.analytics does.
2. Serve analytics' read-only ClickHouse HTTP endpoint over it (in this
   process, on the store's lock, as the analytics worker does) and run
   every panel query of both dashboards, expanded as the Grafana plugin
   does, for the last 30 days: the client dashboard for one client (another
   client every run), the global one for all clients. Each query runs on
   the engine directly (the store's connection) and through the endpoint
   with clickhouse-connect's HTTP client; median and p95 of each, and what
   the endpoint adds. Beside them, the analytics API's nearest endpoint for
   the same client and days.
3. The API's latency for one client alone and while a dashboard's queries
   run through the endpoint without pause (the two share the engine's lock).
4. With --ingest-events E: the consumer's ingest of E events from a real
   Kafka broker (bench.analytics.ingest), alone and while a dashboard's
   queries run through the endpoint without pause.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import clickhouse_connect

from bench.analytics import ingest, synthetic
from bench.analytics.latency import percentile
from services.analytics.app import create_app, runtime_of
from services.analytics.clickhouse_http import ClickHouseHttpServer
from services.analytics.config import ClickHouseHttp, Config
from services.analytics.store import Store
from tests.analytics.grafana_macros import TimeRange, expand

DASHBOARDS = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "dashboards"
DATABASE = "bench"
USER, PASSWORD = "grafana", "bench-grafana-password"
# The analytics API's endpoint nearest to each client-dashboard panel.
API_FOR_PANEL = {
    "Calls": ("/api/analytics/summary", {}),
    "Answered": ("/api/analytics/summary", {}),
    "Missed": ("/api/analytics/summary", {}),
    "Answer rate": ("/api/analytics/summary", {}),
    "Talk time": ("/api/analytics/durations", {}),
    "Volume": ("/api/analytics/timeseries", {"interval": "hour"}),
    "Outcomes": ("/api/analytics/summary", {}),
    "Peak hours (client's time zone)": ("/api/analytics/peak-hours", {}),
    "Top callers": ("/api/analytics/top-callers", {"limit": "10"}),
    "Geography": ("/api/analytics/geography", {}),
    "Lead quality": ("/api/analytics/lead-quality", {}),
    "Campaigns": ("/api/analytics/campaigns", {}),
    "Recent calls": ("/api/calls", {"limit": "100"}),
}


def stats(spent: list[float]) -> tuple[float, float]:
    return statistics.median(spent), percentile(spent, 0.95)


def timed(call: Callable[..., object], *args: Any, **kwargs: Any) -> float:
    started = time.perf_counter()
    call(*args, **kwargs)
    return (time.perf_counter() - started) * 1000


def panels(name: str) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """The dashboard's variables and its (panel title, raw SQL) pairs."""
    board = json.loads((DASHBOARDS / f"{name}.json").read_text())
    queries = [
        (panel["title"], target["rawSql"])
        for panel in board["panels"]
        for target in panel.get("targets", [])
    ]
    return board.get("templating", {}).get("list", []), queries


def variables_for(
    variables: list[dict[str, Any]], client: Any, client_id: str | None, span: TimeRange
) -> dict[str, str]:
    values: dict[str, str] = {}
    for variable in variables:
        name = variable["name"]
        if name == "database":
            values[name] = DATABASE
        elif name == "client" and client_id is not None:
            values[name] = client_id
        elif variable["type"] == "constant":
            values[name] = variable["query"]
        elif variable["type"] == "query":
            rows = client.query(expand(variable["query"], values, span)).result_rows
            values[name] = str(rows[0][0]) if rows else ""
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.grafana")
    parser.add_argument(
        "--calls", type=int, default=int(os.environ.get("ANALYTICS_CALLS", 10_000_000))
    )
    parser.add_argument("--runs", type=int, default=int(os.environ.get("RUNS", 20)))
    parser.add_argument("--folder", help="chDB folder (default: a temporary one, removed after)")
    parser.add_argument(
        "--reuse", action="store_true", help="with --folder: skip the load if loaded"
    )
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument(
        "--ingest-events", type=int, default=0, help="also time the consumer (0: skip)"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING)

    folder = Path(args.folder or tempfile.mkdtemp(prefix="bench-grafana-"))
    now = datetime.now(UTC).replace(microsecond=0)
    span = TimeRange(now - timedelta(days=30), now, interval_s=3600)
    print(f"grafana benchmark: {args.calls:,} calls, 1,000 clients, one year; chDB in {folder}")
    url = f"chdb://{folder.resolve()}"
    store = Store.open(url, DATABASE)
    figures: dict[str, Any] = {"calls": args.calls, "runs": args.runs, "cpus": os.cpu_count()}
    server = None
    app = None
    try:
        store.migrate()
        if not (args.reuse and store.count_fact_versions()):
            seconds = synthetic.load_facts(store, args.calls, now)
            synthetic.load_reference_data(store, now)
            print(f"loaded in {seconds:.0f} s")
            for table in ("calls_by_client", "client_hourly", "call_facts"):
                store._command(f"OPTIMIZE TABLE {DATABASE}.{table} FINAL")
        limits = ClickHouseHttp(bind="127.0.0.1:0", user=USER, password=PASSWORD)
        server = ClickHouseHttpServer(store, str(folder.resolve()), limits, DATABASE).start()
        client = clickhouse_connect.get_client(
            host="127.0.0.1", port=server.port, username=USER, password=PASSWORD, database=DATABASE
        )
        config = Config(clickhouse_url=url, clickhouse_database=DATABASE, admin_token="bench")
        app = create_app(config, start_consumer=False, store=store)
        http = app.test_client()
        headers = {"Authorization": "Bearer bench"}
        iso = {"from": (now - timedelta(days=30)).isoformat(), "to": now.isoformat()}

        rows = []
        rng = random.Random(7)
        for board, scope in (("client", "one client, 30 days"), ("global", "all clients, 30 days")):
            variables, queries = panels(board)
            print(f"{board} dashboard ({scope}), {args.runs} runs each: engine | endpoint | API")
            for title, raw in queries:
                engine, endpoint, api = [], [], []
                for run in range(args.runs + 1):
                    client_id = synthetic.client_id(rng.randrange(synthetic.CLIENTS))
                    values = variables_for(variables, client, client_id, span)
                    sql = expand(raw, values, span)
                    times = (timed(store._query, sql), timed(client.query, sql))
                    api_call = API_FOR_PANEL.get(title) if board == "client" else None
                    api_ms = None
                    if api_call is not None:
                        path, extra = api_call
                        params = {**iso, **extra, "clientId": client_id}
                        api_ms = timed(http.get, path, query_string=params, headers=headers)
                    if run == 0:
                        continue  # the first run warms the caches
                    engine.append(times[0])
                    endpoint.append(times[1])
                    if api_ms is not None:
                        api.append(api_ms)
                (engine_median, engine_p95), (http_median, http_p95) = (
                    stats(engine),
                    stats(endpoint),
                )
                adds = statistics.median(e - g for e, g in zip(endpoint, engine, strict=True))
                api_text = "-"
                row: dict[str, Any] = {
                    "dashboard": board,
                    "panel": title,
                    "engine": [engine_median, engine_p95],
                    "endpoint": [http_median, http_p95],
                    "adds_ms": adds,
                }
                if api:
                    api_median, api_p95 = stats(api)
                    row["api"] = [api_median, api_p95, API_FOR_PANEL[title][0]]
                    api_text = f"{api_median:6.1f} / {api_p95:6.1f}  {API_FOR_PANEL[title][0]}"
                rows.append(row)
                print(
                    f"  {title[:32]:<32} {engine_median:6.1f} / {engine_p95:6.1f} | "
                    f"{http_median:6.1f} / {http_p95:6.1f} (+{adds:4.1f}) | {api_text}"
                )
        figures["panels"] = rows
        figures["sharing"] = api_while_dashboards_run(http, headers, client, iso, span, args.runs)
        if args.ingest_events:
            figures["ingest"] = ingest_while_dashboards_run(
                store, client, span, args.ingest_events, now
            )
    finally:
        if server is not None:
            server.close()
        if app is not None:
            runtime_of(app).close()  # the read audit's last write, then the store
        else:
            store.close()
        if not args.folder:
            shutil.rmtree(folder, ignore_errors=True)
    worst = max(row["adds_ms"] for row in figures["panels"])
    print(
        f"the endpoint adds at most {worst:.1f} ms (median) to a panel's engine time; "
        "target < 10 ms"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


class DashboardLoad:
    """A thread refreshing the client dashboard through the endpoint without pause."""

    def __init__(self, client: Any, span: TimeRange) -> None:
        self._client = client
        self._span = span
        self._stop = threading.Event()
        self.queries = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        variables, queries = panels("client")
        rng = random.Random(13)
        while not self._stop.is_set():
            client_id = synthetic.client_id(rng.randrange(synthetic.CLIENTS))
            values = variables_for(variables, self._client, client_id, self._span)
            for _, raw in queries:
                self._client.query(expand(raw, values, self._span))
                self.queries += 1

    def __enter__(self) -> DashboardLoad:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def ingest_while_dashboards_run(
    store: Store, client: Any, span: TimeRange, events: int, now: datetime
) -> dict[str, Any]:
    """The consumer's events per second into the store, alone and under a dashboard's load."""
    quiet = ingest.run(store, events, Config.batch_size, now, first_call=store.count_events())
    with DashboardLoad(client, span) as load:
        busy = ingest.run(store, events, Config.batch_size, now, first_call=store.count_events())
    print(
        f"consumer ingest of {events:,} events: alone {quiet.rate:,.0f} events/s; while a "
        f"dashboard refreshes without pause ({load.queries} panel queries) "
        f"{busy.rate:,.0f} events/s"
    )
    return {
        "alone": round(quiet.rate),
        "under_dashboard_load": round(busy.rate),
        "panel_queries": load.queries,
    }


def api_while_dashboards_run(
    http: Any, headers: dict[str, str], client: Any, iso: dict[str, str], span: TimeRange, runs: int
) -> dict[str, Any]:
    """The API's summary and call list for one client, idle and under a dashboard's load."""
    variables, queries = panels("client")
    rng = random.Random(11)

    def api_round() -> list[float]:
        spent = []
        for _ in range(runs):
            client_id = synthetic.client_id(rng.randrange(synthetic.CLIENTS))
            for path in ("/api/analytics/summary", "/api/calls"):
                params = {**iso, "clientId": client_id}
                spent.append(timed(http.get, path, query_string=params, headers=headers))
        return spent

    idle = api_round()
    stop = threading.Event()
    done = [0]

    def dashboards() -> None:
        while not stop.is_set():
            client_id = synthetic.client_id(rng.randrange(synthetic.CLIENTS))
            values = variables_for(variables, client, client_id, span)
            for _, raw in queries:
                client.query(expand(raw, values, span))
                done[0] += 1

    loader = threading.Thread(target=dashboards, daemon=True)
    loader.start()
    busy = api_round()
    stop.set()
    loader.join()
    (idle_median, idle_p95), (busy_median, busy_p95) = stats(idle), stats(busy)
    print(
        "API (summary and call list, one client, 30 days): "
        f"idle median {idle_median:.1f} ms p95 {idle_p95:.1f} ms; "
        f"while a dashboard refreshes without pause ({done[0]} panel queries) "
        f"median {busy_median:.1f} ms p95 {busy_p95:.1f} ms"
    )
    return {
        "idle": [idle_median, idle_p95],
        "under_dashboard_load": [busy_median, busy_p95],
        "panel_queries": done[0],
    }


if __name__ == "__main__":
    start = time.monotonic()
    code = main()
    print(f"benchmark finished in {time.monotonic() - start:.0f} s")
    sys.exit(code)
