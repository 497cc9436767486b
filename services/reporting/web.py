"""The reporting service's HTTP side: health, metrics, the admin's view of deliveries.

A Flask app, served by a small threaded WSGI server beside the faust worker
in the same process (the worker owns the main thread and its event loop).
Other parts of reporting add their routes as blueprints: each module in
`BLUEPRINTS` exposes `blueprint(runtime) -> flask.Blueprint` and is mounted
by `create_web_app` (services/reporting/README.md).
"""

from __future__ import annotations

import importlib
import logging
import threading
from typing import TYPE_CHECKING

from flask import Flask, Response, jsonify, request
from werkzeug.serving import BaseWSGIServer, make_server

from services.reporting.health import WORKER, WorkerState
from services.reporting.openapi import document
from services.reporting.runtime import Runtime
from switchboard.auth import authenticate
from switchboard.http import (
    ApiError,
    failure,
    health_routes,
    install_error_handlers,
    probe,
    query_number,
    query_text,
)
from switchboard.metrics import install_metrics
from switchboard.openapi import openapi_blueprint

if TYPE_CHECKING:
    from services.reporting.reports.service import ReportService

log = logging.getLogger(__name__)
STATUSES = ("pending", "sending", "delivered", "dead")
_READY_TIMEOUT = 2.0
# Modules exposing `blueprint(runtime) -> Blueprint`, mounted on the reporting app.
BLUEPRINTS: tuple[str, ...] = ("services.reporting.privacy",)


def create_web_app(
    runtime: Runtime, worker: WorkerState = WORKER, reports: ReportService | None = None
) -> Flask:
    app = Flask("services.reporting")
    install_error_handlers(app)
    metrics = install_metrics(app, "reporting")
    runtime.metrics = metrics
    app.register_blueprint(openapi_blueprint(document))
    metrics.watch_consumer(worker.lag_snapshot)
    metrics.on_scrape_series(
        "alert_deliveries",
        "Missed-call alert deliveries in PostgreSQL by status",
        ("status",),
        lambda: {(status,): float(n) for status, n in runtime.store.counts().items()},
    )

    def problems() -> dict[str, str]:
        found = probe("database", lambda: runtime.store.ping(_READY_TIMEOUT))
        if not worker.running:
            found["worker"] = "the faust worker is not running yet"
        found.update(worker.problems)
        if reports is not None and "database" not in found:
            try:
                found.update(reports.problems())
            except Exception as err:  # the reports' tables do not answer: not ready
                found["reports"] = failure(err)
        return found

    health_routes(app, problems)

    @app.get("/api/reporting/deliveries")
    def deliveries() -> Response:
        principal = authenticate(runtime.config.admin_token)
        if not principal.is_admin:
            raise ApiError(403, "forbidden", "only the admin sees alert deliveries")
        status = query_text(request.args, "status")
        if status is not None and status not in STATUSES:
            raise ApiError(400, "invalid_query", f"status must be one of {', '.join(STATUSES)}")
        rows = runtime.store.deliveries(
            status=status,
            client_id=query_text(request.args, "clientId"),
            call_sid=query_text(request.args, "callSid"),
            limit=query_number(request.args, "limit", 1, 1000) or 100,
        )
        return jsonify({"deliveries": [row.to_json() for row in rows]})

    for name in BLUEPRINTS:
        app.register_blueprint(importlib.import_module(name).blueprint(runtime))
    if reports is not None:
        from services.reporting.reports.service import mount

        mount(app, reports, metrics)
    return app


class WebServer:
    """The Flask app on a threaded WSGI server in a daemon thread."""

    def __init__(self, app: Flask, bind: str) -> None:
        host, _, port = bind.rpartition(":")
        self.server: BaseWSGIServer = make_server(
            host or "127.0.0.1", int(port), app, threaded=True
        )
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="reporting-http", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
