"""The analytics HTTP API: the call list, one call, CSV export and the summary.

Routes are thin: parameters are parsed in `calls`, SQL lives in `store`. On
the embedded chDB default the consumer runs as a thread of this same process
(chDB allows one process per data folder), started by `create_app`; against
a ClickHouse server the API may run alone (`start_consumer=False`).
"""

from __future__ import annotations

import atexit
import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from flask import Flask, Response, jsonify, request

from services.analytics.calls import CSV_COLUMNS, CallRecord, parse_call_query, parse_filter
from services.analytics.config import Config
from services.analytics.consumer import AnalyticsConsumer
from services.analytics.store import Store
from switchboard.auth import require_admin
from switchboard.http import ApiError, error_response, install_error_handlers


@dataclass
class Analytics:
    """What the routes need, kept on app.extensions["analytics"]."""

    config: Config
    store: Store
    consumer: AnalyticsConsumer | None

    def close(self) -> None:
        if self.consumer is not None:
            self.consumer.stop()
        self.store.close()


def create_app(
    config: Config | None = None,
    start_consumer: bool = True,
    store: Store | None = None,
) -> Flask:
    config = config or Config.from_env()
    store = store or Store.open(config.clickhouse_url, config.clickhouse_database)
    store.migrate()
    consumer = None
    if start_consumer:
        consumer = AnalyticsConsumer(config, store)
        consumer.start()
    service = Analytics(config, store, consumer)
    atexit.register(service.close)

    app = Flask(__name__)
    install_error_handlers(app)
    app.extensions["analytics"] = service

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        if consumer is not None and consumer.error is not None:
            return error_response(503, "consumer_failed", f"consumer stopped: {consumer.error}")
        return jsonify({"status": "ok"}), 200

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        try:
            store.ping()
        except Exception as err:  # any failure to answer means not ready
            return error_response(503, "clickhouse_unreachable", f"ClickHouse: {err}")
        if consumer is not None and not consumer.alive:
            reason = consumer.error or "not running"
            return error_response(503, "consumer_not_running", f"consumer: {reason}")
        return jsonify({"status": "ready"}), 200

    @app.get("/api/calls")
    def list_calls() -> Response:
        require_admin(config.admin_token)
        query = parse_call_query(request.args)
        if query.format == "csv":
            rows = store.iter_calls(query.filter, query.limit, query.cursor)
            return Response(
                csv_lines(rows),
                mimetype="text/csv",
                headers={"Content-Disposition": 'attachment; filename="calls.csv"'},
            )
        assert query.limit is not None
        page = store.list_calls(query.filter, query.limit, query.cursor)
        return jsonify(
            {
                "calls": [call.to_json() for call in page.calls],
                "nextCursor": page.next_cursor.encode() if page.next_cursor else None,
            }
        )

    @app.get("/api/calls/<call_sid>")
    def get_call(call_sid: str) -> Response:
        require_admin(config.admin_token)
        call = store.get_call(call_sid)
        if call is None:
            raise ApiError(404, "not_found", f"no call {call_sid}")
        return jsonify(call.to_json())

    @app.get("/api/analytics/summary")
    def summary() -> Response:
        require_admin(config.admin_token)
        return jsonify(store.summary(parse_filter(request.args)).to_json())

    return app


def csv_lines(calls: Iterable[CallRecord]) -> Iterator[str]:
    """The header, then one CSV line per call, produced as the rows arrive."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def take() -> str:
        line = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return line

    writer.writerow(CSV_COLUMNS)
    yield take()
    for call in calls:
        writer.writerow(call.to_csv_row())
        yield take()
