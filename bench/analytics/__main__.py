"""`python -m bench.analytics [--calls N] [--runs R] [--ingest-events E]`: the analytics benchmark.

1. Load N synthetic call facts (default 10,000,000) for 1,000 clients over
   a year into a fresh chDB folder, through call_facts and its views.
2. Median and p95 latency of every metrics endpoint for one client over 30
   days and over a year, and for all clients over 30 days.
3. The consumer's ingest rate: E realistic events from a real Kafka broker
   into the loaded store.
--skip-latency or --skip-ingest leave out step 2 or 3. The chDB folder is
removed afterwards unless --keep is given; --folder F --keep --reuse skips
step 1 when F already holds a loaded store (to repeat step 3 on it).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from bench.analytics import ingest, latency, synthetic
from services.analytics.app import create_app
from services.analytics.config import Config
from services.analytics.store import Store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.analytics")
    calls = int(os.environ.get("ANALYTICS_CALLS", 10_000_000))
    parser.add_argument("--calls", type=int, default=calls)
    parser.add_argument("--runs", type=int, default=int(os.environ.get("RUNS", 20)))
    parser.add_argument(
        "--ingest-events", type=int, default=int(os.environ.get("INGEST_EVENTS", 200_000))
    )
    parser.add_argument("--ingest-batch", type=int, default=Config.batch_size)
    parser.add_argument(
        "--ingest-sids",
        choices=ingest.CALL_SIDS,
        default="sequential",
        help="CallSids of the ingested calls: sequential (CAbench000...) or random as Twilio's",
    )
    parser.add_argument(
        "--predecoded",
        action="store_true",
        help="a ceiling, not the consumer's rate: the events decoded before the run, so the "
        "consumer spends nothing on parsing and validating",
    )
    parser.add_argument("--chunk", type=int, default=1_000_000)
    parser.add_argument("--folder", help="chDB folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the chDB folder")
    parser.add_argument(
        "--reuse", action="store_true", help="with --folder: skip the load if it holds calls"
    )
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument(
        "--skip-latency", action="store_true", help="measure the consumer's ingest only"
    )
    parser.add_argument(
        "--no-settle",
        action="store_true",
        help="skip the second latency round after merging parts (as a server does over time)",
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING)

    folder = Path(args.folder or tempfile.mkdtemp(prefix="bench-analytics-"))
    now = datetime.now(UTC).replace(microsecond=0)
    print(f"analytics benchmark: {args.calls:,} calls, 1,000 clients, one year; chDB in {folder}")
    store = Store.open(f"chdb://{folder.resolve()}", "bench")
    figures: dict[str, object] = {"calls": args.calls, "cpus": os.cpu_count()}
    try:
        store.migrate()
        held = store.count_fact_versions() if args.reuse and args.folder else 0
        if held:
            print(f"reusing the store in {folder}: {held:,} fact rows, parts: {parts_of(store)}")
        else:
            print("loading call facts (call_facts -> calls_by_client -> client_hourly):")
            seconds = synthetic.load_facts(store, args.calls, now, chunk=args.chunk)
            synthetic.load_reference_data(store, now)
            figures["load_seconds"] = round(seconds, 1)
            figures["load_rate"] = round(args.calls / seconds)
            print(
                f"loaded in {seconds:.0f} s ({args.calls / seconds:,.0f} calls/s); "
                f"parts: {parts_of(store)}"
            )

        config = Config(
            clickhouse_url=f"chdb://{folder.resolve()}",
            clickhouse_database="bench",
            admin_token="bench-token",
        )
        app = create_app(config, start_consumer=False, store=store)
        http = app.test_client()
        rounds = [("as loaded", False)] + ([] if args.no_settle else [("settled", True)])
        if args.skip_latency:
            rounds = []
        for label, settle in rounds:
            if settle:
                # A bulk load leaves several parts per month; a server merges a
                # month's parts in the background as it ages. Do it now.
                started = time.monotonic()
                for table in ("calls_by_client", "client_hourly", "call_facts"):
                    store._command(f"OPTIMIZE TABLE bench.{table} FINAL")
                figures["settle_seconds"] = round(time.monotonic() - started, 1)
                print(f"merged parts in {figures['settle_seconds']} s: {parts_of(store)}")
            print(f"endpoint latency ({label}), {args.runs} runs each (another client every run):")
            timings = latency.measure(http, {"Authorization": "Bearer bench-token"}, now, args.runs)
            figures[f"latency {label}"] = [asdict(t) for t in timings]
            per_client = [t for t in timings if t.scope.startswith("client")]
            worst = max(per_client, key=lambda t: t.median_ms)
            print(
                f"slowest per-client median ({label}): {worst.median_ms:.1f} ms "
                f"({worst.path}, {worst.scope}); target < 100 ms"
            )

        if not args.skip_ingest:
            ceiling_only = " (predecoded: a ceiling without decoding, not the consumer's rate)"
            print(
                f"consumer ingest: {args.ingest_events:,} events, batches of {args.ingest_batch}, "
                f"{args.ingest_sids} CallSids{ceiling_only if args.predecoded else ''}"
            )
            # A reused store holds the calls of earlier ingest runs: new ones get new CallSids.
            result = ingest.run(
                store,
                args.ingest_events,
                args.ingest_batch,
                now,
                sids=args.ingest_sids,
                first_call=store.count_events() if held else 0,
                predecoded=args.predecoded,
            )
            figures["ingest"] = {
                **asdict(result),
                "rate": round(result.rate),
                "consumer_us_per_event": round(result.consumer_us_per_event, 1),
                "broker_us_per_event": round(result.broker_us_per_event, 1),
                "consumer_kernel_us_per_event": round(result.consumer_kernel_us_per_event, 1),
                "ceiling": round(result.ceiling),
                "sids": args.ingest_sids,
            }
            print(
                f"ingested {result.events:,} events ({result.calls:,} calls) in "
                f"{result.seconds:.1f} s: {result.rate:,.0f} events/s "
                f"({result.batches} batches); target >= 50,000 events/s"
            )
            print(
                f"CPU per event: {result.consumer_us_per_event:.1f} us in the consumer's "
                f"process ({result.consumer_kernel_us_per_event:.1f} of it in the kernel), "
                f"{result.broker_us_per_event:.1f} us in the broker"
            )
            by_part = ", ".join(
                f"{part} {seconds / result.events * 1e6:.1f}"
                for part, seconds in sorted(result.consumer_parts.items(), key=lambda p: -p[1])
                if seconds / result.events * 1e6 >= 0.05
            )
            print(f"  the consumer's process by part (us per event): {by_part}")
            print(
                f"with all {result.cpus} cores busy at that CPU per event: "
                f"{result.ceiling:,.0f} events/s at most"
            )
    finally:
        store.close()
        if not args.keep and not args.folder:
            shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps({k: v for k, v in figures.items() if not k.startswith("latency")}))
    return 0


def parts_of(store: Store) -> dict[str, int]:
    rows = store._query(
        "SELECT table, count() FROM system.parts WHERE database = 'bench' AND active "
        "AND table IN ('call_facts', 'calls_by_client', 'client_hourly') GROUP BY table"
    )
    return {table: int(count) for table, count in sorted(rows)}


if __name__ == "__main__":
    start = time.monotonic()
    code = main()
    print(f"benchmark finished in {time.monotonic() - start:.0f} s")
    sys.exit(code)
