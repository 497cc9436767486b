"""The router's HTTP face: management API, the routing endpoint, health.

`create_app` wires the parts together (migrations, pool, in-memory routing
table and its refresher, Kafka producer) and keeps the routes thin: they
parse, call the domain, and shape the answer. `/api/...` is admin-only.
`POST /internal/route` is what ingress calls for every incoming call; it
answers from memory, and a Kafka outage costs the `call.routed` event (logged)
but never the caller's TwiML.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from flask import Blueprint, Flask, Response, jsonify, request

from services.router import store
from services.router.config import Config
from services.router.directory import Client, NewAssignment, NewClient, parse_client_id
from services.router.routing import decide, routed_event
from services.router.routing_table import RoutingTable, TableRefresher
from services.router.twiml import build_twiml
from switchboard.auth import require_admin
from switchboard.http import ApiError, error_response, install_error_handlers, json_object
from switchboard.kafka import EventProducer

log = logging.getLogger(__name__)

EXTENSION = "switchboard.router"
READY_CHECK_TIMEOUT_SECONDS = 2.0
MAX_REQUEST_ID = 200


@dataclass
class RouterRuntime:
    """What one router process holds; `close()` releases it (tests, shutdown)."""

    config: Config
    store: store.Store
    table: RoutingTable
    refresher: TableRefresher
    producer: EventProducer
    kafka_admin: AdminClient

    def close(self) -> None:
        self.refresher.stop()
        self.producer.flush(2.0)
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
    runtime = RouterRuntime(
        config=config,
        store=db,
        table=table,
        refresher=refresher,
        producer=EventProducer(config.kafka_bootstrap),
        kafka_admin=AdminClient({"bootstrap.servers": config.kafka_bootstrap}),
    )

    app = Flask("services.router")
    app.extensions[EXTENSION] = runtime
    install_error_handlers(app)

    @app.errorhandler(psycopg.OperationalError)
    def _database_down(err: psycopg.OperationalError) -> tuple[Response, int]:
        log.error("database unavailable on %s %s: %s", request.method, request.path, err)
        return error_response(503, "database_unavailable", "the database is not reachable")

    app.register_blueprint(_management_api(runtime))
    _add_call_routes(app, runtime)
    _add_health_routes(app, runtime)
    return app


def runtime_of(app: Flask) -> RouterRuntime:
    runtime: RouterRuntime = app.extensions[EXTENSION]
    return runtime


def _management_api(runtime: RouterRuntime) -> Blueprint:
    api = Blueprint("router_api", __name__, url_prefix="/api")

    @api.before_request
    def _admin_only() -> None:
        require_admin(runtime.config.admin_token)

    def find_client(raw_id: str) -> Client:
        client_id = parse_client_id(raw_id)
        client = runtime.store.get_client(client_id) if client_id else None
        if client is None:
            raise ApiError(404, "client_not_found", f"no client with id {raw_id!r}")
        return client

    @api.post("/clients")
    def create_client() -> tuple[Response, int]:
        new = NewClient.parse(json_object())
        client = runtime.store.create_client(new)
        response = jsonify(client.to_json())
        response.headers["Location"] = f"/api/clients/{client.id}"
        return response, 201

    @api.get("/clients")
    def list_clients() -> Response:
        return jsonify({"clients": [c.to_json() for c in runtime.store.list_clients()]})

    @api.get("/clients/<client_id>")
    def get_client(client_id: str) -> Response:
        return jsonify(find_client(client_id).to_json())

    @api.post("/clients/<client_id>/numbers")
    def assign_number(client_id: str) -> tuple[Response, int]:
        client = find_client(client_id)
        new = NewAssignment.parse(json_object())
        forward_to = new.forward_to_for(client)
        try:
            assignment = runtime.store.assign_number(client.id, new, forward_to)
        except store.NumberTaken:
            raise ApiError(
                409, "number_taken", f"{new.phone_number} is already assigned to a client"
            ) from None
        except store.ClientNotFound:
            raise ApiError(404, "client_not_found", f"no client with id {client_id!r}") from None
        # Other processes reload on the NOTIFY; this one must not wait for it.
        runtime.table.reload(runtime.store.all_assignments)
        return jsonify(assignment.to_json()), 201

    @api.get("/clients/<client_id>/numbers")
    def list_numbers(client_id: str) -> Response:
        client = find_client(client_id)
        numbers = runtime.store.list_numbers(client.id)
        return jsonify({"numbers": [n.to_json() for n in numbers]})

    return api


def _add_call_routes(app: Flask, runtime: RouterRuntime) -> None:
    config = runtime.config

    @app.post("/internal/route")
    def route_call() -> Response:
        call_sid = request.form.get("CallSid", "").strip()
        called = request.form.get("To", "").strip()
        missing = [name for name, value in (("CallSid", call_sid), ("To", called)) if not value]
        if missing:
            message = f"missing Twilio parameter(s): {', '.join(missing)}"
            raise ApiError(400, "missing_field", message)
        if not runtime.table.loaded:
            # Better ingress's fallback than telling a caller a live number is not in service.
            raise ApiError(503, "routing_table_not_loaded", "routing table not loaded yet")
        request_id = request.headers.get("X-Request-Id", "").strip()[:MAX_REQUEST_ID] or None
        decision = decide(called, runtime.table.lookup(called))
        twiml = build_twiml(decision, config.public_base_url, config.dial_timeout_seconds)
        event = routed_event(decision, call_sid, request_id)
        context = {"callSid": call_sid, "requestId": request_id, "clientId": decision.client_id}
        try:
            runtime.producer.publish(
                config.topics.call_events,
                event,
                key=call_sid,
                timeout=config.publish_timeout_seconds,
            )
        except Exception:
            # Whatever went wrong with the event, the caller is on the line: answer.
            log.exception("call.routed not published", extra=context)
        log.info("call routed: %s", decision.disposition, extra=context)
        return Response(twiml, status=200, mimetype="text/xml")


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
        }
        if failed:
            reason = "; ".join(f"{name}: {result}" for name, result in failed.items())
            body["error"] = {"code": "not_ready", "message": reason}
        return jsonify(body), 503 if failed else 200


def _readiness(runtime: RouterRuntime) -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        runtime.store.ping(READY_CHECK_TIMEOUT_SECONDS)
        checks["postgres"] = "ok"
    except psycopg.Error as err:
        checks["postgres"] = f"unreachable: {err}"
    topic = runtime.config.topics.call_events
    try:
        metadata = runtime.kafka_admin.list_topics(timeout=READY_CHECK_TIMEOUT_SECONDS)
        checks["kafka"] = "ok" if topic in metadata.topics else f"topic {topic} missing"
    except KafkaException as err:
        checks["kafka"] = f"unreachable: {err}"
    checks["routingTable"] = "ok" if runtime.table.loaded else "not loaded yet"
    return checks
