"""The analytics HTTP service: one runtime owns every resource; routes live in blueprints.

`create_app` migrates the store, starts what runs beside the routes (the
consumer, the read audit's writer) into an `AnalyticsRuntime`, which shuts
them down in order, and mounts the blueprints of api.py (calls, metrics,
conversions, audit, health), privacy's and the OpenAPI document. On the
embedded chDB default the consumer runs as a thread of this same process
(chDB allows one process per data folder); against a ClickHouse server the
API may run alone (`start_consumer=False`). There, a read-only ClickHouse
user (a replica's, or the endpoint of services/analytics/clickhouse_http.py)
is found at start-up: the migrations must already be applied, retention is
left to the writer, and reads are not audited (the audit is a write). With
CLICKHOUSE_HTTP_BIND set, the read-only ClickHouse HTTP endpoint over the
embedded chDB is served from this process too.
"""

from __future__ import annotations

import atexit
import logging
from dataclasses import dataclass

from flask import Flask, Response

from services.analytics.api import (
    audit_api,
    audit_reads,
    calls_api,
    conversions_api,
    health_api,
    metrics_api,
)
from services.analytics.audit import AuditTrail
from services.analytics.clickhouse_http import ClickHouseHttpServer
from services.analytics.config import Config
from services.analytics.consumer import AnalyticsConsumer
from services.analytics.openapi import document
from services.analytics.privacy import privacy_api
from services.analytics.store import Store
from switchboard.auth import KeyResolver
from switchboard.http import install_error_handlers
from switchboard.metrics import install_metrics
from switchboard.openapi import openapi_blueprint

EXTENSION = "analytics"

log = logging.getLogger(__name__)


@dataclass
class AnalyticsRuntime:
    """What one analytics process holds; `close()` releases it, consumer first (tests, shutdown)."""

    config: Config
    store: Store
    keys: KeyResolver
    consumer: AnalyticsConsumer | None
    audit: AuditTrail | None = None
    clickhouse_http: ClickHouseHttpServer | None = None

    def close(self) -> None:
        if self.clickhouse_http is not None:
            self.clickhouse_http.close()
            self.clickhouse_http = None
        if self.consumer is not None:
            self.consumer.stop()
        if self.audit is not None:
            self.audit.close()
        self.store.close()


def create_app(
    config: Config | None = None,
    start_consumer: bool = True,
    store: Store | None = None,
) -> Flask:
    config = config or Config.from_env()
    store = store or Store.open(config.clickhouse_url, config.clickhouse_database)
    read_only = not config.embedded and store.read_only()
    if read_only:
        store.check_migrated()
        log.warning("ClickHouse lets this process only read: reads here are not audited")
    else:
        store.migrate()
        store.apply_retention(config.retention_days)
    consumer = None
    if start_consumer:
        consumer = AnalyticsConsumer(config, store)
        consumer.start()
    audit = None
    if not read_only:
        audit = AuditTrail(store.insert_audit)
        audit.start()
    runtime = AnalyticsRuntime(
        config=config,
        store=store,
        keys=KeyResolver(config.router_url, ttl=config.key_cache_seconds),
        consumer=consumer,
        audit=audit,
    )
    atexit.register(runtime.close)
    if config.clickhouse_http.enabled:
        runtime.clickhouse_http = ClickHouseHttpServer(
            store,
            config.clickhouse_url.removeprefix("chdb://"),
            config.clickhouse_http,
            config.clickhouse_database,
        ).start()

    app = Flask(__name__)
    install_error_handlers(app)
    metrics = install_metrics(app, "analytics")
    if consumer is not None:
        metrics.watch_consumer(consumer.progress.lag)
    app.extensions[EXTENSION] = runtime

    @app.after_request
    def _audit_read(response: Response) -> Response:
        return audit_reads(runtime, response)

    app.register_blueprint(health_api(runtime))
    app.register_blueprint(calls_api(runtime))
    app.register_blueprint(metrics_api(runtime))
    app.register_blueprint(conversions_api(runtime))
    app.register_blueprint(audit_api(runtime))
    app.register_blueprint(privacy_api(store, config.admin_token))
    app.register_blueprint(openapi_blueprint(document))
    return app


def runtime_of(app: Flask) -> AnalyticsRuntime:
    runtime: AnalyticsRuntime = app.extensions[EXTENSION]
    return runtime
