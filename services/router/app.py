"""The router's HTTP face: wiring, the routing endpoint, key introspection, health.

`create_app` wires the parts together (migrations, pool, in-memory routing
table and its refresher, Kafka producer, outbox relay, Twilio gateway and the
sync of numbers' configuration at Twilio) and mounts the public API (api.py).
`POST /internal/route` is what ingress calls for every incoming call; it
answers from memory, and a Kafka outage costs the `call.routed` event
(logged) but never the caller's TwiML. It is served beneath Flask
(route_endpoint.py), being the one path on every call.
`POST /internal/keys/introspect` tells other services whose client API key a
bearer token is (switchboard.auth.KeyResolver). `/internal/...` is not routed
by the edge.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from confluent_kafka import KafkaException
from flask import Flask, Response, jsonify, request

from services.router import store
from services.router.api import management_api, public_api
from services.router.config import Config
from services.router.dialing import DialPolicy
from services.router.flow_api import flow_api, flow_twilio_api
from services.router.management import Management
from services.router.notifications import WebhookRules
from services.router.notifications_api import NotificationSettings, notifications_api
from services.router.openapi import document
from services.router.outbox import OutboxRelay
from services.router.privacy import Privacy, Services, privacy_api
from services.router.route_endpoint import RouteEndpoint
from services.router.routing_table import RoutingTable, TableRefresher
from services.router.twilio_api import TwilioGateway
from services.router.twilio_sync import TwilioSync
from services.router.webhooks import Deployment
from switchboard.clock import clock_of
from switchboard.http import ApiError, error_response, install_error_handlers, json_object
from switchboard.kafka import EventProducer
from switchboard.metrics import install_metrics
from switchboard.openapi import openapi_blueprint

log = logging.getLogger(__name__)

EXTENSION = "switchboard.router"
READY_CHECK_TIMEOUT_SECONDS = 2.0


@dataclass
class RouterRuntime:
    """What one router process holds; `close()` releases it (tests, shutdown)."""

    config: Config
    store: store.Store
    table: RoutingTable
    refresher: TableRefresher
    producer: EventProducer
    relay: OutboxRelay
    management: Management
    twilio_sync: TwilioSync | None = None

    def close(self) -> None:
        self.refresher.stop()
        if self.twilio_sync is not None:
            self.twilio_sync.stop()
        self.relay.stop()
        self.producer.close(timeout=2.0)
        self.store.close()


def create_app(config: Config | None = None) -> Flask:
    config = config or Config.from_env()
    store.apply_migrations(config.database_url)
    db = store.Store(store.open_pool(config.database_url))
    table = RoutingTable()
    table.reload(db.all_assignments)
    refresher = TableRefresher(
        table,
        db.all_assignments,
        lambda: store.ChangeListener(config.database_url),
        config.refresh_interval_seconds,
    )
    refresher.start()
    producer = EventProducer(config.kafka_bootstrap)
    relay = OutboxRelay(db, producer, interval=config.outbox_interval_seconds)
    relay.start()
    deployment = Deployment(
        config.public_base_url, config.voice_fallback_url, config.main_number
    )
    gateway = None
    twilio_sync = None
    if config.twilio_account_sid and config.twilio_auth_token:
        gateway = TwilioGateway(
            config.twilio_account_sid,
            config.twilio_auth_token,
            config.twilio_api_base_url,
            config.twilio_timeout_seconds,
        )
        # Without credentials, requested syncs wait in the table for a router that has them.
        twilio_sync = TwilioSync(
            db,
            gateway,
            deployment,
            config.twilio_sync_interval_seconds,
            config.twilio_sync_max_backoff_seconds,
        )
        twilio_sync.start()
    runtime = RouterRuntime(
        config=config,
        store=db,
        table=table,
        refresher=refresher,
        producer=producer,
        relay=relay,
        management=Management(
            db,
            table,
            relay,
            config.topics,
            deployment,
            gateway,
            twilio_sync,
            dial_policy=DialPolicy(config.allowed_countries),
            daily_outbound_cap=config.daily_outbound_cap,
            purge_grace_days=config.purge_grace_days,
        ),
        twilio_sync=twilio_sync,
    )

    app = Flask("services.router")
    app.extensions[EXTENSION] = runtime
    install_error_handlers(app)
    metrics = install_metrics(app, "router")

    @app.errorhandler(psycopg.OperationalError)
    def _database_down(err: psycopg.OperationalError) -> tuple[Response, int]:
        log.error("database unavailable on %s %s: %s", request.method, request.path, err)
        return error_response(503, "database_unavailable", "the database is not reachable")

    app.register_blueprint(
        public_api(
            runtime.management,
            config.twilio_auth_token,
            config.public_base_url,
            config.validate_signatures,
        )
    )
    app.register_blueprint(openapi_blueprint(document))
    app.register_blueprint(management_api(runtime.management, config.admin_token))
    app.register_blueprint(flow_api(runtime.management, config.admin_token))
    notification_settings = NotificationSettings(
        db,
        relay,
        config.topics,
        WebhookRules(development=config.development),
        DialPolicy(config.allowed_countries),
    )
    app.register_blueprint(
        notifications_api(notification_settings, runtime.management, config.admin_token)
    )
    # Business hours are judged by this clock, on the first step and on the later ones alike.
    clock = clock_of(config.clock_url)
    app.register_blueprint(
        flow_twilio_api(
            runtime.table.lookup, config.public_base_url, config.dial_timeout_seconds, clock
        )
    )
    app.register_blueprint(
        privacy_api(_privacy(runtime), runtime.management, config.admin_token)
    )
    app.wsgi_app = RouteEndpoint(  # type: ignore[method-assign]
        app.wsgi_app, runtime, metrics, clock
    )
    _add_key_introspection(app, runtime)
    _add_health_routes(app, runtime)
    return app


def _privacy(runtime: RouterRuntime) -> Privacy:
    config = runtime.config
    services = Services(
        config.admin_token,
        config.ingress_url,
        config.analytics_url,
        config.recordings_url,
        config.reporting_url,
        config.privacy_timeout_seconds,
    )
    return Privacy(
        runtime.store, runtime.relay, config.topics, config.privacy_token_secret, services
    )


def runtime_of(app: Flask) -> RouterRuntime:
    runtime: RouterRuntime = app.extensions[EXTENSION]
    return runtime


def _add_key_introspection(app: Flask, runtime: RouterRuntime) -> None:
    @app.post("/internal/keys/introspect")
    def introspect_key() -> Response:
        key = json_object(required=("key",))["key"]
        if not isinstance(key, str):
            raise ApiError(400, "invalid_field", "key must be a string")
        principal = runtime.management.principal_for_key(key)
        if principal is None:
            raise ApiError(404, "unknown_key", "no live API key matches")
        return jsonify({"clientId": principal.client_id, "keyId": principal.key_id})


def _add_health_routes(app: Flask, runtime: RouterRuntime) -> None:
    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        checks = _readiness(runtime)
        failed = {name: result for name, result in checks.items() if result != "ok"}
        body: dict[str, Any] = {
            "status": "unavailable" if failed else "ready",
            "checks": checks,
            "numbers": len(runtime.table),
            # Numbers whose configuration Twilio has yet to accept (informational).
            "twilioSyncPending": (
                _pending_twilio_syncs(runtime) if checks["postgres"] == "ok" else None
            ),
        }
        if failed:
            reason = "; ".join(f"{name}: {result}" for name, result in failed.items())
            body["error"] = {"code": "not_ready", "message": reason}
        return jsonify(body), 503 if failed else 200


def _pending_twilio_syncs(runtime: RouterRuntime) -> int | None:
    try:
        return runtime.store.pending_twilio_syncs()
    except psycopg.Error:
        return None


def _readiness(runtime: RouterRuntime) -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        runtime.store.ping(READY_CHECK_TIMEOUT_SECONDS)
        checks["postgres"] = "ok"
    except psycopg.Error as err:
        checks["postgres"] = f"unreachable: {err}"
    topic = runtime.config.topics.call_events
    try:
        found = runtime.producer.topics(READY_CHECK_TIMEOUT_SECONDS)
        checks["kafka"] = "ok" if topic in found else f"topic {topic} missing"
    except KafkaException as err:
        checks["kafka"] = f"unreachable: {err}"
    checks["routingTable"] = "ok" if runtime.table.loaded else "not loaded yet"
    return checks
