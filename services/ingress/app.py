"""The ingress HTTP app: wiring, the spool's erasure endpoint, health.

`create_app` builds the runtime (the event sink with its producer, spool and
spool drainer; the router client; the signature checker; the routing copy
and the thread that follows the number events into it) and mounts the
routes: Twilio's webhooks and the pure TwiML of a call flow's legs (api.py),
`POST /internal/privacy/spool-erasure` (router's erasure of a caller
reaching the events still in the spool), `/healthz` and `/readyz`, and its
OpenAPI document (openapi.py). `/internal/...` is not routed by the edge.
A worker waits up to `copy_wait` seconds for its routing copy before it
serves, so that a restarted ingress answers from a built copy; `/readyz`
is 503 until the copy is built.
"""

from __future__ import annotations

import atexit
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from confluent_kafka.admin import AdminClient
from flask import Blueprint, Flask, Response, g, jsonify, request

from services.ingress.api import twilio_api
from services.ingress.config import Config
from services.ingress.consumer import NumberEventsFollower
from services.ingress.openapi import document
from services.ingress.router_client import RouterClient
from services.ingress.routing_copy import RoutingCopy
from services.ingress.sink import EventSink
from switchboard.auth import authenticate
from switchboard.clock import clock_of
from switchboard.http import ApiError, install_error_handlers, json_object
from switchboard.metrics import Metrics, counter, install_metrics
from switchboard.openapi import openapi_blueprint
from switchboard.privacy import E164, TOKEN_PREFIX
from switchboard.twilio_signatures import SignatureChecker

log = logging.getLogger(__name__)

EXTENSION = "switchboard.ingress"


@dataclass
class IngressRuntime:
    """What one ingress process holds; `close()` releases it (tests, shutdown)."""

    config: Config
    sink: EventSink
    router: RouterClient
    checker: SignatureChecker
    metrics: Metrics
    fallbacks: Any
    copy: RoutingCopy = field(default_factory=RoutingCopy)
    follower: NumberEventsFollower | None = None
    # Calls and flow steps answered from the routing copy while router could not answer.
    copy_answers: Any = None
    # Business hours of call flows answered from the copy are judged by this clock.
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def close(self) -> None:
        if self.follower is not None:
            self.follower.stop()
        # The drainer stops before the producer it replays into is closed.
        self.sink.close()


def metrics_counter_fallbacks() -> Any:
    return counter("ingress_fallbacks_total", "Calls answered with the fallback TwiML")


def metrics_counter_copy_answers() -> Any:
    return counter(
        "ingress_routing_copy_answers_total",
        "Calls and call-flow steps answered from the routing copy while router could not answer",
    )


def metrics_counter_copy_invalid() -> Any:
    return counter(
        "ingress_routing_copy_invalid_total", "Number events the routing copy could not decode"
    )


def create_app(config: Config | None = None, clock: Callable[[], datetime] | None = None) -> Flask:
    """The ingress app; `clock` judges call flows' business hours (None: the real time)."""
    config = config or Config.from_env()
    app = Flask("services.ingress")
    install_error_handlers(app)
    if not config.validate_signatures:
        log.warning(
            "TWILIO_VALIDATE_SIGNATURES=false: X-Twilio-Signature is NOT checked; "
            "anyone can post fake calls. Use only for local curl tests."
        )
    sink = EventSink(config)
    sink.drainer.start()
    metrics = install_metrics(app, "ingress")
    copy = RoutingCopy()
    metrics.on_scrape(
        lambda: {
            "ingress_spool_depth": ("Events waiting in the spool", sink.spool.depth()),
            "ingress_routing_copy_numbers": ("Numbers in the routing copy", len(copy)),
        }
    )
    follower = NumberEventsFollower(
        config.kafka_bootstrap, config.topics.number_events, copy, metrics_counter_copy_invalid()
    )
    follower.start()
    runtime = IngressRuntime(
        config=config,
        sink=sink,
        router=RouterClient(config.router_url, config.router_timeout),
        checker=SignatureChecker(config.auth_token),
        metrics=metrics,
        fallbacks=metrics_counter_fallbacks(),
        copy=copy,
        follower=follower,
        copy_answers=metrics_counter_copy_answers(),
    )
    runtime.clock = clock or clock_of(config.clock_url)
    atexit.register(runtime.close)
    if config.copy_wait > 0 and not copy.wait_caught_up(config.copy_wait):
        log.warning(
            "serving before the routing copy is built (waited %.0fs); /readyz says when it is",
            config.copy_wait,
        )
    app.extensions[EXTENSION] = runtime

    @app.before_request
    def _request_id() -> None:
        g.request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex

    app.register_blueprint(twilio_api(runtime))
    app.register_blueprint(privacy_api(runtime))
    app.register_blueprint(health_api(runtime))
    app.register_blueprint(openapi_blueprint(document))
    return app


def runtime_of(app: Flask) -> IngressRuntime:
    runtime: IngressRuntime = app.extensions[EXTENSION]
    return runtime


def privacy_api(runtime: IngressRuntime) -> Blueprint:
    api = Blueprint("privacy", __name__, url_prefix="/internal/privacy")

    @api.post("/spool-erasure")
    def erase_from_spool() -> Response:
        """Router's erasure of a caller: the number replaced by its token in spooled events."""
        if not runtime.config.admin_token:
            raise ApiError(404, "not_found", "spool erasure needs ADMIN_API_TOKEN to be set")
        authenticate(runtime.config.admin_token)
        body = json_object(required=("number", "token"))
        number, token = body["number"], body["token"]
        if not isinstance(number, str) or not E164.match(number):
            raise ApiError(400, "invalid_field", "number must be an E.164 phone number")
        if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or number in token:
            raise ApiError(400, "invalid_field", f"token must start with {TOKEN_PREFIX!r}")
        return jsonify({"rewritten": runtime.sink.spool.scrub(number, token)})

    return api


def health_api(runtime: IngressRuntime) -> Blueprint:
    api = Blueprint("health", __name__)
    config, spool, copy = runtime.config, runtime.sink.spool, runtime.copy

    @api.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok", "spoolDepth": spool.depth()})

    @api.get("/readyz")
    def readyz() -> tuple[Response, int]:
        problems = []
        try:
            AdminClient({"bootstrap.servers": config.kafka_bootstrap}).list_topics(timeout=2)
        except Exception as err:  # any failure means not ready
            problems.append(f"kafka: {err}")
        if not copy.caught_up:
            problems.append("routing copy: still reading the number events")
        elif runtime.follower is not None and not runtime.follower.is_alive():
            # A copy nobody follows any more goes stale in silence.
            problems.append("routing copy: no longer following the number events")
        status = 200 if not problems else 503
        body = {
            "ready": not problems,
            "problems": problems,
            "spoolDepth": spool.depth(),
            "routingCopy": {"built": copy.caught_up, "numbers": len(copy)},
            # Visible to whoever watches readiness, in every environment.
            "signatureChecks": config.validate_signatures,
        }
        return jsonify(body), status

    return api
