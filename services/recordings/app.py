"""The recordings service's HTTP face: recordings of a call, signed media, deletion, erasure.

`create_app` builds what one process holds (pool, storage, Twilio client,
Kafka producer and, unless told otherwise, the worker and the housekeeping
job) and keeps the routes thin. Management routes authenticate the caller
(the admin token, or a client API key resolved through router) and answer
404 for another client's objects. Media routes need no token: the signed,
expiring link is the permission, so a browser <audio> element can use it;
every listing, link use and deletion is written to the audit table.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from flask import Flask, Response, jsonify, request

from services.recordings import deletion, links, store
from services.recordings.announcements import Announcer
from services.recordings.archiving import Archiver
from services.recordings.config import Config
from services.recordings.consumer import RecordingsWorker
from services.recordings.deletion import Deleter, HousekeepingJob
from services.recordings.metadata import (
    AUDIT_DEFAULT_LIMIT,
    AUDIT_MAX_LIMIT,
    AuditEntry,
    Recording,
)
from services.recordings.openapi import document
from services.recordings.ranges import Unsatisfiable, parse_range
from services.recordings.storage import (
    IntegrityError,
    ObjectMissing,
    Storage,
    StorageError,
    open_storage,
)
from services.recordings.twilio_rest import TwilioRecordings
from switchboard.auth import KeyResolver, Principal, authenticate
from switchboard.http import (
    ApiError,
    error_response,
    health_routes,
    install_error_handlers,
    json_object,
    probe,
)
from switchboard.kafka import EventProducer
from switchboard.metrics import install_metrics
from switchboard.openapi import openapi_blueprint

log = logging.getLogger(__name__)

EXTENSION = "switchboard.recordings"
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_TOKEN = re.compile(r"^erased:[0-9a-f]{32}$")
# Who the audit names for an erasure carried out on router's caller.erased event.
ERASURE_ACTOR = "system:erasure"
_READY_TIMEOUT = 2.0


@dataclass
class Runtime:
    """What one recordings process holds; `close()` releases it (tests, shutdown)."""

    config: Config
    store: store.Store
    storage: Storage
    twilio: TwilioRecordings
    producer: EventProducer
    deleter: Deleter
    archiver: Archiver
    keys: KeyResolver
    worker: RecordingsWorker | None = None
    housekeeping: HousekeepingJob | None = None

    def close(self) -> None:
        if self.housekeeping is not None:
            self.housekeeping.stop()
        if self.worker is not None:
            self.worker.stop()
        self.producer.close(timeout=5)
        self.store.close()


def build_runtime(
    config: Config, storage: Storage | None = None, twilio: TwilioRecordings | None = None
) -> Runtime:
    db = store.Store.open(config.database_url)
    storage = storage or open_storage(config)
    twilio = twilio or TwilioRecordings(
        config.twilio_account_sid,
        config.twilio_auth_token,
        config.twilio_api_base_url,
        timeout=config.download_timeout_seconds,
    )
    producer = EventProducer(config.kafka_bootstrap)
    announcer = Announcer(producer, config.topics, config.publish_timeout_seconds)
    deleter = Deleter(db, storage, twilio, announcer)
    archiver = Archiver(config, db, storage, twilio, announcer)
    return Runtime(
        config, db, storage, twilio, producer, deleter, archiver, KeyResolver(config.router_url)
    )


def create_app(
    config: Config | None = None,
    run_worker: bool = True,
    run_housekeeping: bool = True,
    runtime: Runtime | None = None,
) -> Flask:
    config = config or Config.from_env()
    runtime = runtime or build_runtime(config)
    if run_worker and runtime.worker is None:
        runtime.worker = RecordingsWorker(config, runtime.store, runtime.archiver, runtime.producer)
        runtime.worker.on_caller_erased = _caller_eraser(runtime)
        runtime.worker.start()
    if run_housekeeping and runtime.housekeeping is None:
        runtime.housekeeping = HousekeepingJob(
            config, runtime.store, runtime.storage, runtime.deleter
        )
        runtime.housekeeping.start()
        if runtime.worker is not None:
            runtime.worker.on_settings_changed = runtime.housekeeping.wake

    app = Flask("services.recordings")
    install_error_handlers(app)
    metrics = install_metrics(app, "recordings")
    if runtime.worker is not None:
        metrics.watch_consumer(runtime.worker.progress.lag)
    app.extensions[EXTENSION] = runtime
    app.register_blueprint(openapi_blueprint(document))

    @app.errorhandler(psycopg.OperationalError)
    def _database_down(err: psycopg.OperationalError) -> tuple[Response, int]:
        log.error("database unavailable: %s", err)
        return error_response(503, "unavailable", "database unavailable")

    @app.errorhandler(StorageError)
    def _storage_down(err: StorageError) -> tuple[Response, int]:
        log.error("storage unavailable: %s", err)
        return error_response(503, "unavailable", "recording storage unavailable")

    _add_api_routes(app, runtime)
    _add_media_routes(app, runtime)
    _add_privacy_routes(app, runtime)
    _add_health_routes(app, runtime)
    return app


def runtime_of(app: Flask) -> Runtime:
    runtime: Runtime = app.extensions[EXTENSION]
    return runtime


def _principal(runtime: Runtime) -> Principal:
    return authenticate(runtime.config.admin_token, runtime.keys)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def recording_json(
    recording: Recording, runtime: Runtime, principal: Principal | None, now: float
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "recordingSid": recording.recording_sid,
        "callSid": recording.call_sid,
        "clientId": recording.client_id,
        "durationSec": recording.duration_sec,
        "channels": recording.channels,
        "bytes": recording.bytes,
        "format": recording.format,
        "sha256": recording.sha256,
        "status": recording.status,
        "kind": recording.kind,
        "recordedAt": _iso(recording.recorded_at),
        "storedAt": _iso(recording.created_at) if recording.bytes else None,
        "twilioCopyDeleted": recording.twilio_deleted_at is not None,
        "playbackUrl": None,
        "downloadUrl": None,
        "expiresAt": None,
    }
    if recording.status in ("absent", "failed"):
        body["reason"] = recording.failure_reason
    if recording.status == "deleted":
        body["deletedAt"] = _iso(recording.deleted_at)
        body["deletionReason"] = recording.deletion_reason
    if recording.stored and principal is not None:
        config = runtime.config
        by = principal.name
        play = links.mint(
            config.link_secret, recording.recording_sid, "inline", by, now, config.link_ttl_seconds
        )
        download = links.mint(
            config.link_secret,
            recording.recording_sid,
            "attachment",
            by,
            now,
            config.link_ttl_seconds,
        )
        body["playbackUrl"] = play.url(config.public_base_url, config.link_secret)
        body["downloadUrl"] = download.url(config.public_base_url, config.link_secret)
        body["expiresAt"] = _iso(datetime.fromtimestamp(play.expires, UTC))
    return body


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": _iso(entry.at),
        "who": entry.who,
        "action": entry.action,
        "target": entry.target,
        "clientId": entry.client_id,
        "detail": entry.detail,
    }


def _add_api_routes(app: Flask, runtime: Runtime) -> None:
    db = runtime.store

    @app.get("/api/twilio/recording/<call_sid>")
    def recordings_of_call(call_sid: str) -> Response:
        principal = _principal(runtime)
        recordings = db.recordings_of_call(call_sid)
        client_id = db.call_client(call_sid) or next(
            (r.client_id for r in recordings if r.client_id), None
        )
        known = bool(recordings) or client_id is not None
        if not known or not principal.can_see(client_id):
            raise ApiError(404, "not_found", f"no recordings known for call {call_sid}")
        now = time.time()
        visible = [r for r in recordings if principal.can_see(r.client_id)]
        db.audit(
            principal.name,
            "recordings.listed",
            call_sid,
            client_id,
            {"recordings": [r.recording_sid for r in visible]},
        )
        return jsonify(
            {"recordings": [recording_json(r, runtime, principal, now) for r in visible]}
        )

    def client_recording(principal: Principal, client_id: str, recording_sid: str) -> Recording:
        if not principal.can_see(client_id):
            raise ApiError(404, "not_found", "no such client")
        recording = db.recording(recording_sid)
        if recording is None or recording.client_id != client_id:
            raise ApiError(404, "not_found", f"no recording {recording_sid} for this client")
        return recording

    @app.get("/api/clients/<client_id>/recordings/<recording_sid>")
    def get_recording(client_id: str, recording_sid: str) -> Response:
        principal = _principal(runtime)
        recording = client_recording(principal, client_id, recording_sid)
        db.audit(principal.name, "recording.viewed", recording_sid, client_id)
        return jsonify(recording_json(recording, runtime, principal, time.time()))

    @app.delete("/api/clients/<client_id>/recordings/<recording_sid>")
    def delete_recording(client_id: str, recording_sid: str) -> Response:
        principal = _principal(runtime)
        recording = client_recording(principal, client_id, recording_sid)
        if not recording.stored:
            if recording.status != "deleted":
                raise ApiError(
                    409,
                    "not_stored",
                    f"recording {recording_sid} was never stored ({recording.status})",
                )
            return jsonify(recording_json(recording, runtime, None, time.time()))
        tombstone = runtime.deleter.delete(recording, principal.name, "request")
        return jsonify(recording_json(tombstone, runtime, None, time.time()))

    @app.post("/api/clients/<client_id>/recordings/erasure")
    def erase_caller(client_id: str) -> Response:
        principal = _principal(runtime)
        if not principal.can_see(client_id):
            raise ApiError(404, "not_found", "no such client")
        body = json_object(required=("phoneNumber",))
        phone = body["phoneNumber"]
        if not isinstance(phone, str) or not _E164.match(phone):
            raise ApiError(400, "invalid_field", "phoneNumber must be an E.164 number (+...)")
        deleted = runtime.deleter.erase_caller(client_id, phone, principal.name)
        return jsonify(
            {
                "clientId": client_id,
                "deleted": [r.recording_sid for r in deleted],
                "count": len(deleted),
            }
        )

    @app.get("/api/recordings/audit")
    def audit_log() -> Response:
        principal = _principal(runtime)
        if not principal.is_admin:
            raise ApiError(403, "forbidden", "the audit log is for the admin")
        try:
            limit = int(request.args.get("limit", str(AUDIT_DEFAULT_LIMIT)))
        except ValueError:
            raise ApiError(400, "invalid_field", "limit must be an integer") from None
        if not 1 <= limit <= AUDIT_MAX_LIMIT:
            raise ApiError(400, "invalid_field", f"limit must be between 1 and {AUDIT_MAX_LIMIT}")
        entries = db.audit_log(
            limit, request.args.get("target") or None, request.args.get("clientId") or None
        )
        return jsonify({"entries": [audit_json(e) for e in entries]})


def _add_privacy_routes(app: Flask, runtime: Runtime) -> None:
    """A caller's export and erasure across clients, asked by router (admin token only)."""
    db = runtime.store

    def admin_and_number(number: str) -> Principal:
        principal = _principal(runtime)
        if not principal.is_admin:
            raise ApiError(403, "forbidden", "a caller's data across clients is for the admin")
        if not _E164.match(number):
            raise ApiError(400, "invalid_number", "the number must be E.164 (+...)")
        return principal

    @app.get("/internal/privacy/callers/<number>")
    def export_caller(number: str) -> Response:
        principal = admin_and_number(number)
        recordings = db.caller_recordings_everywhere(number)
        now = time.time()
        db.audit(
            principal.name,
            "caller.exported",
            _erasure_target(request.args.get("token")),
            None,
            {"recordings": [r.recording_sid for r in recordings]},
        )
        listed = [recording_json(r, runtime, principal, now) for r in recordings]
        return jsonify({"recordings": listed})

    @app.delete("/internal/privacy/callers/<number>")
    def erase_caller_everywhere(number: str) -> Response:
        principal = admin_and_number(number)
        target = _erasure_target(request.args.get("token"))
        if target != "caller":  # the token is known: replayed calls are stored under it
            db.remember_erased(target.removeprefix("caller:"))
        deleted, calls = deletion.erase_caller_everywhere(
            runtime.deleter, number, principal.name, target
        )
        return jsonify({"deleted": [r.recording_sid for r in deleted], "calls": calls})


def _caller_eraser(runtime: Runtime) -> Callable[[str, str], None]:
    """What the worker does on caller.erased: the caller's recordings of every client deleted."""

    def erase(number: str, token: str) -> None:
        deletion.erase_caller_everywhere(
            runtime.deleter, number, ERASURE_ACTOR, _erasure_target(token)
        )

    return erase


def _erasure_target(token: str | None) -> str:
    """How the audit names a caller: router's token when given, never the number."""
    if token and _TOKEN.match(token):
        return f"caller:{token}"
    return "caller"


def _add_media_routes(app: Flask, runtime: Runtime) -> None:
    db = runtime.store
    config = runtime.config

    @app.get(links.MEDIA_PATH + "<recording_sid>")
    def media(recording_sid: str) -> Response:
        try:
            link = links.verify(
                config.link_secret, recording_sid, request.args.to_dict(), time.time()
            )
        except links.InvalidLink as err:
            raise ApiError(403, "forbidden", str(err)) from None
        recording = db.recording(recording_sid)
        if recording is None or not recording.stored or recording.storage_key is None:
            raise ApiError(404, "not_found", f"recording {recording_sid} is not available")
        size = recording.bytes or 0
        headers = {
            "Accept-Ranges": "bytes",
            "Content-Type": recording.content_type,
            "Content-Disposition": f'{link.disposition}; filename="{recording.filename()}"',
            "Cache-Control": "private, no-store",
            "ETag": f'"{recording.sha256}"',
        }
        try:
            span = parse_range(request.headers.get("Range"), size)
        except Unsatisfiable as err:
            response = error_response(416, "range_not_satisfiable", str(err))[0]
            response.status_code = 416
            response.headers["Content-Range"] = f"bytes */{size}"
            response.headers["Accept-Ranges"] = "bytes"
            return response
        action = "recording.downloaded" if link.disposition == "attachment" else "recording.played"
        detail: dict[str, Any] = {"linkBy": link.by}
        if span is not None:
            detail["range"] = [span.start, span.end]
        db.audit(f"link:{link.by}", action, recording_sid, recording.client_id, detail)
        if request.method == "HEAD":
            headers["Content-Length"] = str(span.length if span else size)
            if span is not None:
                headers["Content-Range"] = span.content_range(size)
            return Response(status=206 if span else 200, headers=headers)
        try:
            if span is None:
                body: Iterator[bytes] = runtime.storage.read(recording.storage_key)
                headers["Content-Length"] = str(size)
                return Response(body, status=200, headers=headers, direct_passthrough=True)
            body = runtime.storage.read(recording.storage_key, span.start, span.end)
        except ObjectMissing:
            log.error("stored recording %s is missing from storage", recording_sid)
            raise ApiError(
                404, "not_found", f"recording {recording_sid} is not available"
            ) from None
        except IntegrityError as err:
            # Our stored copy is damaged (or its key gone), not the request: a 5xx
            # that says so, never a 200 with bytes that are not the recording.
            log.error("stored recording %s fails its integrity check: %s", recording_sid, err)
            db.audit(
                "recordings-service",
                "recording.integrity-failed",
                recording_sid,
                recording.client_id,
                {"reason": str(err), "storageKey": recording.storage_key},
            )
            raise ApiError(
                500,
                "recording_integrity_failed",
                f"recording {recording_sid} cannot be served: its stored copy fails the "
                "integrity check",
            ) from None
        headers["Content-Length"] = str(span.length)
        headers["Content-Range"] = span.content_range(size)
        return Response(body, status=206, headers=headers, direct_passthrough=True)


def _add_health_routes(app: Flask, runtime: Runtime) -> None:
    def problems() -> dict[str, str]:
        found = probe("database", lambda: runtime.store.ping(_READY_TIMEOUT))
        try:
            runtime.storage.check()
        except StorageError as err:
            found["storage"] = str(err)
        worker = runtime.worker
        if worker is not None and not worker.alive:
            found["worker"] = f"stopped: {worker.error}" if worker.error else "not running"
        return found

    health_routes(app, problems, lambda: {"storage": runtime.storage.describe()})
