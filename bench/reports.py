"""`python -m bench.reports [--calls N] [--runs R]`: time to build one client's monthly report.

1. Load N synthetic calls (default 10,000,000) for 1,000 clients over a year
   into a fresh chDB folder, as bench.analytics does (`--folder F --keep
   --reuse` loads once and reuses the store).
2. Serve the analytics API over HTTP from this process (its Flask app on a
   threaded WSGI server) and receive mail with aiosmtpd.
3. Build the last complete month's report of R clients (another each run) the
   way the scheduler does: the six figures asked of the analytics API, the
   four charts, the HTML and the PDF, both written to a folder, the email
   sent over SMTP. PostgreSQL's share (claiming and recording the row, a few
   small statements) is left out.

It prints the median, p95 and slowest of each step and of the whole build
(target: under 2 s).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from werkzeug.serving import make_server

from bench.analytics import synthetic
from bench.analytics.latency import percentile
from devstack.processes import free_port
from services.analytics.app import create_app
from services.analytics.config import Config
from services.analytics.store import Store
from services.reporting.reports import mail
from services.reporting.reports.builder import render
from services.reporting.reports.figures import AnalyticsFigures
from services.reporting.reports.files import FolderDocuments, document_key
from services.reporting.reports.periods import month_of

TOKEN = "bench-token"


class Sink:
    """aiosmtpd's handler: counts what it accepted."""

    def __init__(self) -> None:
        self.messages = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages += 1
        return "250 OK"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reports")
    parser.add_argument("--calls", type=int, default=int(os.environ.get("REPORT_CALLS", 10**7)))
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--chunk", type=int, default=1_000_000)
    parser.add_argument("--folder", help="chDB folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the chDB folder")
    parser.add_argument(
        "--reuse", action="store_true", help="with --folder: skip the load if it holds calls"
    )
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    folder = Path(args.folder or tempfile.mkdtemp(prefix="bench-reports-"))
    now = datetime.now(UTC).replace(microsecond=0)
    print(f"report benchmark: {args.calls:,} calls, 1,000 clients, one year; chDB in {folder}")
    store = Store.open(f"chdb://{folder.resolve()}", "bench")
    scratch = Path(tempfile.mkdtemp(prefix="bench-reports-docs-"))
    figures: dict[str, Any] = {"calls": args.calls, "runs": args.runs, "cpus": os.cpu_count()}
    try:
        store.migrate()
        held = store.count_fact_versions() if args.reuse and args.folder else 0
        if held:
            print(f"reusing the store in {folder}: {held:,} fact rows")
        else:
            seconds = synthetic.load_facts(store, args.calls, now, chunk=args.chunk)
            synthetic.load_reference_data(store, now)
            figures["load_seconds"] = round(seconds, 1)
            print(f"loaded in {seconds:.0f} s")
        config = Config(
            clickhouse_url=f"chdb://{folder.resolve()}",
            clickhouse_database="bench",
            admin_token=TOKEN,
        )
        app = create_app(config, start_consumer=False, store=store)
        port = free_port()
        server = make_server("127.0.0.1", port, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        sink = Sink()
        smtp = Controller(sink, hostname="127.0.0.1", port=free_port())
        smtp.start()
        try:
            steps = build_reports(
                AnalyticsFigures(f"http://127.0.0.1:{port}", TOKEN),
                FolderDocuments(scratch),
                lambda msg: mail.send(f"smtp://127.0.0.1:{smtp.port}", msg),
                now,
                args.runs,
            )
        finally:
            smtp.stop()
            server.shutdown()
        assert sink.messages == args.runs + 1, sink.messages
        print(f"monthly report, {args.runs} runs (another client each run), ms:")
        print(f"{'step':<22}{'median':>10}{'p95':>10}{'max':>10}")
        for step, spent in steps.items():
            row = {
                "median_ms": round(percentile(spent, 0.5) * 1000, 1),
                "p95_ms": round(percentile(spent, 0.95) * 1000, 1),
                "max_ms": round(max(spent) * 1000, 1),
            }
            figures[step] = row
            print(f"{step:<22}{row['median_ms']:>10}{row['p95_ms']:>10}{row['max_ms']:>10}")
        print(f"whole build p95: {figures['whole build']['p95_ms']} ms; target < 2000 ms")
    finally:
        store.close()
        shutil.rmtree(scratch, ignore_errors=True)
        if not args.keep and not args.folder:
            shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures))
    return 0


def build_reports(
    source: AnalyticsFigures,
    files: FolderDocuments,
    send: Callable[[Any], None],
    now: datetime,
    runs: int,
    seed: int = 11,
) -> dict[str, list[float]]:
    """Seconds of each step of `runs` monthly reports (one unmeasured build first)."""
    rng = random.Random(seed)
    steps: dict[str, list[float]] = {
        "analytics figures": [],
        "charts, HTML, PDF": [],
        "documents written": [],
        "email sent": [],
        "whole build": [],
    }
    for run in range(runs + 1):
        index = rng.randrange(synthetic.CLIENTS)
        client = synthetic.client_id(index)
        tz = synthetic.ZONES[index % len(synthetic.ZONES)]
        period = month_of((now.astimezone(UTC) - timedelta(days=now.day + 1)).date())
        marks = [time.perf_counter()]
        got = source.figures(client, period, tz)
        marks.append(time.perf_counter())
        rendered = render(got, f"Bench client {index}")
        marks.append(time.perf_counter())
        report_id = f"bench-{run}"
        first = period.first.isoformat()
        files.put(document_key(client, "month", first, report_id, "pdf"), rendered.pdf, "pdf")
        files.put(
            document_key(client, "month", first, report_id, "html"), rendered.html.encode(), "html"
        )
        marks.append(time.perf_counter())
        msg = mail.message(
            report_id, got, None, rendered.charts, rendered.pdf, "bench@localhost", ["c@x.test"]
        )
        send(msg)
        marks.append(time.perf_counter())
        if run == 0:
            continue  # warm-up: imports, font cache, first connections
        for name, start, end in zip(steps, marks, marks[1:], strict=False):
            steps[name].append(end - start)
        steps["whole build"].append(marks[-1] - marks[0])
    return steps


if __name__ == "__main__":
    sys.exit(main())
