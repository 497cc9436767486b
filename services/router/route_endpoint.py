"""POST /internal/route: the routing decision for one incoming call, served beneath Flask.

Ingress asks this for every incoming call, so it is the router's hottest
path by far, and its work is small: a dictionary lookup, a cached TwiML
document and one `call.routed` event. Flask's request machinery (request
context, form parsing, hooks, response object) cost about as much again as
all of that, so this endpoint is WSGI middleware in front of the Flask app
(`app.wsgi_app`) and answers the one path itself; every other request
passes through to Flask untouched. It keeps Flask's contract for this path:
the same JSON error shape, the same body limit, and the same request
count and latency metrics.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from services.router.api import MAX_REQUEST_ID
from services.router.routing import decide, routed_event
from switchboard.callflow_twiml import routed_twiml
from switchboard.http import MAX_BODY_BYTES, ApiError
from switchboard.metrics import Metrics

if TYPE_CHECKING:
    from services.router.app import RouterRuntime

log = logging.getLogger(__name__)

PATH = "/internal/route"
FORM = "application/x-www-form-urlencoded"

Clock = Callable[[], datetime]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class RouteEndpoint:
    """WSGI middleware: /internal/route answered here (POST only), anything else by `app`."""

    def __init__(
        self, app: WsgiApp, runtime: RouterRuntime, metrics: Metrics, clock: Clock | None = None
    ) -> None:
        self._app = app
        self._runtime = runtime
        self._metrics = metrics
        # Business hours of call flows are judged by this clock.
        self._clock = clock or _utc_now

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH:
            return self._app(environ, start_response)
        started = time.perf_counter()
        method = environ.get("REQUEST_METHOD", "")
        try:
            if method != "POST":
                raise ApiError(405, "method_not_allowed", f"{PATH} takes POST only")
            status, content_type, body = 200, "text/xml; charset=utf-8", self._route(environ)
        except Exception as failure:
            err = failure if isinstance(failure, ApiError) else None
            if err is None:
                log.exception("unhandled error on POST %s", PATH)
                err = ApiError(500, "internal_error", "internal error")
            status, content_type = err.status, "application/json"
            body = json.dumps({"error": {"code": err.code, "message": err.message}}).encode()
        start_response(
            f"{status} {HTTPStatus(status).phrase}",
            [("Content-Type", content_type), ("Content-Length", str(len(body)))]
            + ([("Allow", "POST")] if status == 405 else []),
        )
        self._metrics.requests.labels(self._metrics.service, method, PATH, str(status)).inc()
        self._metrics.latency.labels(self._metrics.service, PATH).observe(
            time.perf_counter() - started
        )
        return [body]

    def _route(self, environ: dict[str, Any]) -> bytes:
        form = _read_form(environ)
        call_sid = form.get("CallSid", "").strip()
        called = form.get("To", "").strip()
        missing = [name for name, value in (("CallSid", call_sid), ("To", called)) if not value]
        if missing:
            message = f"missing Twilio parameter(s): {', '.join(missing)}"
            raise ApiError(400, "missing_field", message)
        runtime = self._runtime
        if not runtime.table.loaded:
            # Better ingress's fallback than telling a caller a live number is not in service.
            raise ApiError(503, "routing_table_not_loaded", "routing table not loaded yet")
        request_id = environ.get("HTTP_X_REQUEST_ID", "").strip()[:MAX_REQUEST_ID] or None
        config = runtime.config
        decision = decide(called, runtime.table.lookup(called), self._clock())
        twiml = routed_twiml(decision, config.public_base_url, config.dial_timeout_seconds)
        event = routed_event(decision, call_sid, request_id)
        context = {"callSid": call_sid, "requestId": request_id, "clientId": decision.client_id}
        try:
            runtime.producer.publish(
                config.topics.call_events,
                event,
                key=call_sid,
                timeout=config.publish_timeout_seconds,
            )
        except Exception as err:
            # The caller is on the line: answer in any case. Kafka may keep the
            # event only briefly in memory, so it also goes to the outbox, which
            # the relay publishes once Kafka is back (a copy that Kafka did
            # deliver after all is a duplicate by event id, dropped downstream).
            log.warning(
                "call.routed not acknowledged by Kafka, keeping it in the outbox: %s",
                err,
                extra=context,
            )
            try:
                with runtime.store.transaction() as tx:
                    tx.enqueue(config.topics.call_events, call_sid, event)
            except Exception:
                log.exception("call.routed neither published nor kept", extra=context)
        log.info("call routed: %s", decision.disposition, extra=context)
        return twiml.encode()


def _read_form(environ: dict[str, Any]) -> dict[str, str]:
    """The urlencoded body's fields (the first value of each), or an ApiError saying why not."""
    mimetype = environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
    if mimetype != FORM:
        raise ApiError(415, "unsupported_media_type", f"the body must be {FORM}")
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise ApiError(400, "bad_request", "Content-Length is not a number") from None
    if length > MAX_BODY_BYTES:
        raise ApiError(413, "request_entity_too_large", f"bodies are limited to {MAX_BODY_BYTES} B")
    raw = environ["wsgi.input"].read(length) if length > 0 else b""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "bad_request", "the body is not UTF-8") from None
    form: dict[str, str] = {}
    for name, value in parse_qsl(text, keep_blank_values=True):
        form.setdefault(name, value)
    return form


def _utc_now() -> datetime:
    return datetime.now(UTC)
