"""The reports' HTTP routes, as a blueprint: list, figures, documents, build one now.

`GET /api/reports?clientId=` lists reports, newest period first;
`GET /api/reports/<id>` answers the report with its figures (what
`/api/analytics/*` answered for its client and range);
`/api/reports/<id>.pdf` and `.html` the documents; `POST /api/reports`
builds one now. The admin token sees every client; a client API key
(resolved through router) sees only its own, and another client's report
or clientId answers 404.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint, Response, jsonify, request

from services.reporting.reports.files import DocumentMissing
from services.reporting.reports.periods import InvalidPeriod, parse_period
from services.reporting.reports.store import Report
from switchboard.auth import Principal, authenticate
from switchboard.http import ApiError, json_object

if TYPE_CHECKING:
    from services.reporting.reports.service import ReportService

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
POST_FIELDS = ("clientId", "period", "from", "to")
DOCUMENTS = {".pdf": ("pdf_key", "application/pdf"), ".html": ("html_key", "text/html")}


def reports_api(service: ReportService) -> Blueprint:
    api = Blueprint("reports", __name__)
    store = service.store

    def principal() -> Principal:
        return authenticate(service.config.admin_token, service.keys)

    def visible(report_id: str, who: Principal) -> Report:
        report = store.report(report_id)
        if report is None or not who.can_see(report.client_id):
            raise ApiError(404, "not_found", f"no report {report_id}")
        return report

    @api.get("/api/reports")
    def list_reports() -> Response:
        who = principal()
        client_id = who.scope(request.args.get("clientId") or None)
        limit = _limit(request.args.get("limit"))
        reports = store.reports(client_id, limit)
        return jsonify({"reports": [report.to_json() for report in reports]})

    @api.get("/api/reports/<report_ref>")
    def get_report(report_ref: str) -> Response:
        who = principal()
        for ext, (column, mimetype) in DOCUMENTS.items():
            if report_ref.endswith(ext):
                report = visible(report_ref.removesuffix(ext), who)
                key = getattr(report, column)
                if key is None:
                    raise ApiError(404, "not_built", f"report {report.id} is not built yet")
                try:
                    content = service.files.get(key)
                except DocumentMissing:
                    raise ApiError(404, "not_found", f"report {report.id}: document gone") from None
                return Response(content, mimetype=mimetype)
        report = visible(report_ref, who)
        return jsonify({**report.to_json(), "figures": store.figures(report.id)})

    @api.post("/api/reports")
    def build_report() -> tuple[Response, int]:
        who = principal()
        body = json_object(required=("clientId", "period", "from"))
        unknown = sorted(set(body) - set(POST_FIELDS))
        if unknown:
            raise ApiError(400, "unknown_field", f"unknown field(s): {', '.join(unknown)}")
        client_id = body["clientId"]
        if not isinstance(client_id, str):
            raise ApiError(400, "invalid_field", "clientId must be a string")
        try:
            period = parse_period(body["period"], body["from"], body.get("to"))
        except InvalidPeriod as err:
            raise ApiError(400, "invalid_field", str(err)) from None
        if not who.can_see(client_id):
            raise ApiError(404, "not_found", "no such client")
        report, status = service.build_now(client_id, period)
        return jsonify({**report.to_json(), "figures": store.figures(report.id)}), status

    return api


def _limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not raw.isascii() or not raw.isdigit() or len(raw) > 6 or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiError(
            400, "invalid_parameter", f"limit must be from 1 to {MAX_LIMIT}, got {raw!r}"
        )
    return int(raw)
