"""Analytics' HTTP routes as blueprints: calls, metrics, conversions, the audit, health.

Routes are thin: parameters are parsed in `calls` and `metrics`, SQL lives
in `store`. Every route but health authenticates: the admin token sees every
client; a client API key (resolved through router) sees only its own
client, and another client's call or clientId answers 404. An answered read
is audited: `reader` notes who asked on flask.g, and the app's after-request
hook (`audit_reads`) records it.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, g, jsonify, request

from services.analytics import metrics
from services.analytics.audit import AuditQuery, read_entry
from services.analytics.calls import (
    CSV_COLUMNS,
    GEOGRAPHY_LIMIT,
    MISSED_CALLS_LIMIT,
    TOP_CALLERS_LIMIT,
    CallFilter,
    CallRecord,
    iso_utc,
    parse_call_query,
    parse_filter,
    parse_limit,
)
from services.analytics.campaigns import campaigns as campaign_table
from services.analytics.clients import ClientSettings, LeadThresholds, valid_timezone
from services.analytics.store import Store
from switchboard.auth import Principal, authenticate
from switchboard.http import ApiError, error_response, json_object

if TYPE_CHECKING:
    from services.analytics.app import AnalyticsRuntime


@dataclass(frozen=True)
class Scope:
    """Who asks, about which calls, and in which time zone days and hours are shown."""

    principal: Principal
    filter: CallFilter
    tz: str
    settings: ClientSettings | None

    def echo(self) -> dict[str, Any]:
        return {
            "clientId": self.filter.client_id,
            "timezone": self.tz,
            **metrics.day_range_text(self.filter.start, self.filter.end),
        }


def reader(runtime: AnalyticsRuntime) -> Principal:
    """The authenticated principal; an answered request of theirs is audited."""
    principal = authenticate(runtime.config.admin_token, runtime.keys)
    g.reader = principal
    return principal


def scope(
    runtime: AnalyticsRuntime, args: Mapping[str, str], principal: Principal | None = None
) -> Scope:
    principal = principal or reader(runtime)
    client_id = principal.scope(args.get("clientId") or None)
    settings = runtime.store.client_settings(client_id).get(client_id) if client_id else None
    tz = args.get("tz") or (settings.timezone if settings else None) or "UTC"
    if not valid_timezone(tz):
        raise ApiError(400, "invalid_parameter", f"tz must be an IANA time zone name, got {tz!r}")
    where = Scope(principal, parse_filter(args, client_id, tz), tz, settings)
    g.read_scope = where.filter
    return where


def thresholds(
    runtime: AnalyticsRuntime, where: Scope
) -> tuple[LeadThresholds, dict[str, int] | None]:
    """Lead thresholds of the client; across clients the defaults, qualified per client."""
    defaults = runtime.config.lead_thresholds
    if where.settings is not None:
        return where.settings.thresholds(defaults), None
    if where.filter.client_id is not None:
        return defaults, None
    own = {
        client: settings.leadQualifiedSec
        for client, settings in runtime.store.client_settings().items()
        if settings.leadQualifiedSec is not None
    }
    return defaults, own or None


def audit_reads(runtime: AnalyticsRuntime, response: Response) -> Response:
    """After a request: an answered read of an authenticated principal goes to the audit."""
    principal: Principal | None = g.get("reader")
    if principal is not None and response.status_code < 400 and runtime.audit is not None:
        runtime.audit.record(
            read_entry(
                principal,
                request.path,
                request.args,
                g.get("read_scope"),
                g.get("read_client"),
                g.get("read_details"),
            )
        )
    return response


def health_api(runtime: AnalyticsRuntime) -> Blueprint:
    """/healthz (the consumer has not failed) and /readyz (ClickHouse answers, consumer runs)."""
    api = Blueprint("analytics_health", __name__)
    consumer = runtime.consumer

    @api.get("/healthz")
    def healthz() -> tuple[Response, int]:
        if consumer is not None and consumer.error is not None:
            return error_response(503, "consumer_failed", f"consumer stopped: {consumer.error}")
        return jsonify({"status": "ok"}), 200

    @api.get("/readyz")
    def readyz() -> tuple[Response, int]:
        try:
            runtime.store.ping()
        except Exception as err:  # any failure to answer means not ready
            return error_response(503, "clickhouse_unreachable", f"ClickHouse: {err}")
        if consumer is not None and not consumer.alive:
            reason = consumer.error or "not running"
            return error_response(503, "consumer_not_running", f"consumer: {reason}")
        return jsonify({"status": "ready"}), 200

    return api


def calls_api(runtime: AnalyticsRuntime) -> Blueprint:
    """The call list (JSON pages or a CSV export) and one call."""
    api = Blueprint("analytics_calls", __name__)
    store = runtime.store

    @api.get("/api/calls")
    def list_calls() -> Response:
        where = scope(runtime, request.args)
        query = parse_call_query(request.args, where.filter.client_id, where.tz)
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

    @api.get("/api/calls/<call_sid>")
    def get_call(call_sid: str) -> Response:
        principal = reader(runtime)
        call = store.get_call(call_sid)
        if call is None or not principal.can_see(call.clientId):
            raise ApiError(404, "not_found", f"no call {call_sid}")
        g.read_client = call.clientId
        return jsonify(
            {
                **call.to_json(),
                "voicemail": call.voicemail_json(),
                "textBack": call.text_back_json(),
            }
        )

    return api


def metrics_api(runtime: AnalyticsRuntime) -> Blueprint:
    """/api/analytics/*: summary, timeseries, durations, peak hours, callers, places, leads."""
    api = Blueprint("analytics_metrics", __name__)
    store = runtime.store
    config = runtime.config

    @api.get("/api/analytics/summary")
    def summary() -> Response:
        where = scope(runtime, request.args)
        return jsonify({**where.echo(), **store.summary(where.filter).to_json()})

    @api.get("/api/analytics/timeseries")
    def timeseries() -> Response:
        where = scope(runtime, request.args)
        interval = request.args.get("interval") or "day"
        if interval not in metrics.INTERVALS:
            raise ApiError(
                400,
                "invalid_parameter",
                f"interval must be one of {', '.join(metrics.INTERVALS)}, got {interval!r}",
            )
        start, end = metrics.series_range(where.filter.start, where.filter.end, metrics.utc_now())
        if start >= end:
            raise ApiError(400, "invalid_parameter", "from must be earlier than to")
        keys = metrics.bucket_keys(start, end, interval, where.tz)
        bounded = replace(where.filter, start=start, end=end)
        found = metrics.as_points(store.timeseries(bounded, interval, where.tz))
        bounded_scope = replace(where, filter=bounded)
        return jsonify(
            {
                **bounded_scope.echo(),
                "interval": interval,
                "points": metrics.zero_filled(keys, found, interval, where.tz),
            }
        )

    @api.get("/api/analytics/durations")
    def durations() -> Response:
        where = scope(runtime, request.args)
        return jsonify({**where.echo(), **store.durations(where.filter).to_json()})

    @api.get("/api/analytics/peak-hours")
    def peak_hours() -> Response:
        where = scope(runtime, request.args)
        counts = store.peak_hours(where.filter, where.tz)
        return jsonify({**where.echo(), **metrics.peak_hours(counts)})

    @api.get("/api/analytics/top-callers")
    def top_callers() -> Response:
        where = scope(runtime, request.args)
        limit = parse_limit(request.args.get("limit"), TOP_CALLERS_LIMIT)
        assert limit is not None
        callers, stats = store.top_callers(where.filter, limit)
        return jsonify(
            {**where.echo(), "callers": [c.to_json() for c in callers], **stats.to_json()}
        )

    @api.get("/api/analytics/geography")
    def geography() -> Response:
        where = scope(runtime, request.args)
        limit = parse_limit(request.args.get("limit"), GEOGRAPHY_LIMIT)
        assert limit is not None
        places, unknown = store.geography(where.filter)
        return jsonify({**where.echo(), **geography_json(places, unknown, limit)})

    @api.get("/api/analytics/lead-quality")
    def lead_quality() -> Response:
        where = scope(runtime, request.args)
        limits, per_client = thresholds(runtime, where)
        counts, decided, qualified = store.lead_buckets(where.filter, limits, per_client)
        return jsonify({**where.echo(), **metrics.lead_quality(limits, counts, decided, qualified)})

    @api.get("/api/analytics/campaigns")
    def campaigns() -> Response:
        where = scope(runtime, request.args)
        limits, per_client = thresholds(runtime, where)
        counted = store.campaign_calls(where.filter, limits, config.prices, per_client)
        assignments = [
            a
            for a in store.load_assignments(client_id=where.filter.client_id)
            if where.filter.campaign is None or a.campaign == where.filter.campaign
        ]
        end = where.filter.end or metrics.utc_now()
        table = campaign_table(
            counted, assignments, config.prices.number_monthly, where.filter.start, end
        )
        rows = [c.to_json() for c in table]
        totals = {
            "calls": sum(r["calls"] for r in rows),
            "qualifiedLeads": sum(r["qualifiedLeads"] for r in rows),
            "conversions": sum(r["conversions"] for r in rows),
            "value": round(sum(c.value for c in table), 2),
            "cost": round(sum(c.cost for c in table), 4),
        }
        totals["roi"] = round(totals["value"] / totals["cost"], 4) if totals["cost"] else None
        return jsonify({**where.echo(), "campaigns": rows, "totals": totals})

    @api.get("/api/analytics/missed-calls")
    def missed_calls() -> Response:
        where = scope(runtime, request.args)
        limit = parse_limit(request.args.get("limit"), MISSED_CALLS_LIMIT)
        assert limit is not None
        missed = store.missed_calls(where.filter, limit)
        return jsonify({**where.echo(), "calls": with_follow_ups(store, missed)})

    return api


def audit_api(runtime: AnalyticsRuntime) -> Blueprint:
    """GET /api/analytics/audit: the read audit, for the admin."""
    api = Blueprint("analytics_audit", __name__)

    @api.get("/api/analytics/audit")
    def audit_log() -> Response:
        if not reader(runtime).is_admin:
            raise ApiError(403, "forbidden", "the audit log is for the admin")
        query = AuditQuery.parse(request.args)
        if runtime.audit is not None:
            runtime.audit.flush()  # so the listing holds every read answered before it
        entries = runtime.store.audit_entries(query)
        next_before = entries[-1].id if len(entries) == query.limit else None
        return jsonify({"entries": [e.to_json() for e in entries], "nextBefore": next_before})

    return api


def conversions_api(runtime: AnalyticsRuntime) -> Blueprint:
    """POST /api/analytics/conversions: a call that converted, and what it was worth."""
    api = Blueprint("analytics_conversions", __name__)
    store = runtime.store

    @api.post("/api/analytics/conversions")
    def record_conversion() -> tuple[Response, int]:
        principal = reader(runtime)
        body = json_object(required=("callSid",))
        call_sid = body["callSid"]
        if not isinstance(call_sid, str):
            raise ApiError(400, "invalid_field", "callSid must be a string")
        call = store.get_call(call_sid)
        if call is None or not principal.can_see(call.clientId):
            raise ApiError(404, "not_found", f"no call {call_sid}")
        if not call.clientId:
            raise ApiError(
                409, "no_client", f"call {call_sid} belongs to no client; nothing to attribute"
            )
        value = body.get("value")
        if value is None:
            settings = store.client_settings(call.clientId).get(call.clientId)
            value = settings.valuePerConversion if settings else None
            if value is None:
                raise ApiError(
                    400,
                    "missing_field",
                    "value is required: the client has no valuePerConversion to default to",
                )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ApiError(400, "invalid_field", "value must be a number")
        if not math.isfinite(value) or value < 0 or value > 1e12:
            raise ApiError(400, "invalid_field", "value must be from 0 to 1e12")
        recorded = store.record_conversion(call.clientId, call_sid, float(value))
        g.read_client = call.clientId
        g.read_details = {"callSid": call_sid, "value": float(value)}
        return jsonify(
            {
                "callSid": call_sid,
                "clientId": call.clientId,
                "campaign": call.campaign or None,
                "value": float(value),
                "recordedAt": iso_utc(recorded),
            }
        ), 201

    return api


def geography_json(places: list[Any], unknown: int, limit: int) -> dict[str, Any]:
    countries: dict[str, int] = {}
    states: dict[tuple[str, str], int] = {}
    cities: dict[tuple[str, str, str], int] = {}
    for place in places:
        countries[place.country] = countries.get(place.country, 0) + place.calls
        if place.state:
            key = (place.country, place.state)
            states[key] = states.get(key, 0) + place.calls
        if place.city:
            city = (place.city, place.state, place.country)
            cities[city] = cities.get(city, 0) + place.calls

    def top(counts: Mapping[Any, int]) -> list[tuple[Any, int]]:
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]

    return {
        "countries": [{"country": c, "calls": n} for c, n in top(countries)],
        "states": [{"country": c, "state": s, "calls": n} for (c, s), n in top(states)],
        "cities": [
            {"city": city, "state": s, "country": c, "calls": n} for (city, s, c), n in top(cities)
        ],
        "unknown": unknown,
        "total": sum(countries.values()) + unknown,
    }


def with_follow_ups(store: Store, missed: list[CallRecord]) -> list[dict[str, Any]]:
    """Each missed call, with the first answered call with the same person after it."""
    if not missed:
        return []

    def party(call: CallRecord) -> str:
        return call.fromNumber if call.direction == "inbound" else call.toNumber

    clients = sorted({call.clientId or "" for call in missed})
    since = min(call.startedAt for call in missed)
    later = store.follow_ups(clients, [party(call) for call in missed], since)
    result = []
    for call in missed:
        after = [
            f.startedAt
            for f in later
            if f.clientId == (call.clientId or "")
            and f.number == party(call)
            and f.startedAt > call.startedAt
        ]
        first = min(after) if after else None
        result.append(
            {
                **call.to_json(),
                "followedUp": first is not None,
                "followedUpAt": iso_utc(first) if first else None,
            }
        )
    return result


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
