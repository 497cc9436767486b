"""Weekly reports over a known data set, against analytics fed through Kafka and a real SMTP server.

Two clients, each with a week from Monday 2026-03-02 to Sunday 2026-03-08:

"pacific" lives in America/Los_Angeles, where that Sunday at 02:00 the
clocks go forward (PST, UTC-8, to PDT, UTC-7): its week is 167 hours, from
03-02 08:00Z to 03-09 07:00Z.

    call   UTC            local              what                             campaign
    pac0   03-02 07:30    Sun 03-01 23:30    A answers 30 s (week before)     google
    pac1   03-02 08:30    Mon 00:30 PST      A answers 120 s                  google
    pac2   03-03 18:00    Tue 10:00          B no-answer                      google
    pac3   03-05 23:00    Thu 15:00          B answers 60 s (follows pac2 up) yelp
    pac4   03-07 17:00    Sat 09:00          C no-answer (waits)              yelp
    pac5   03-08 10:30    Sun 03:30 PDT      D leaves a voicemail (waits)     google
    pac6   03-09 06:30    Sun 23:30 PDT      A answers 45 s                   google
    pac7   03-09 07:30    Mon 03-09 00:30    E no-answer (next week; inside a
                                             168-hour week from Monday 08:00Z)

"mumbai" lives in Asia/Kolkata (UTC+5:30, no DST): its week runs from
03-01 18:30Z to 03-08 18:30Z.

    mum0   03-01 18:40    Mon 00:10          F answers 30 s                   facebook
    mum1   03-04 06:30    Wed 12:00          G no-answer (waits)              facebook
    mum2   03-08 18:20    Sun 23:50          H answers 200 s                  facebook
    mum3   03-08 18:40    Mon 03-09 00:10    H answers 10 s (next week)       facebook

pac1 converted (value 500), so pacific's google campaign has an ROI.
"""

from __future__ import annotations

import json
import threading
import uuid
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from PIL import Image
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from devstack.poppler import render_page
from services.reporting.clock import set_file_clock
from services.reporting.reports.builder import ReportBuilder
from services.reporting.reports.figures import ENDPOINTS, AnalyticsFigures, Figures
from services.reporting.reports.files import DocumentMissing
from services.reporting.reports.openapi import document as reports_document
from services.reporting.reports.periods import Period
from services.reporting.reports.service import ReportService, standalone_app
from services.reporting.reports.store import Report
from services.router import facts
from services.router.directory import Client, ClientSettings
from services.router.privacy import caller_erased, erased_key
from switchboard.events import Event
from switchboard.privacy import DEV_TOKEN_SECRET, caller_token
from tests.analytics import call_scripts as script
from tests.kafka_read import read_topic
from tests.reporting.reports_stack import (
    ADMIN_TOKEN,
    AUTH,
    Gate,
    Stack,
    open_stack,
    settings_changed,
    wait_for_calls,
    wait_for_clients,
)
from tests.support import ServiceProcess, api_key, wait_until

A, B, C, D, E = "+12125550001", "+12125550002", "+12125550003", "+12125550004", "+12125550005"
F, G, H = "+912225550001", "+912225550002", "+912225550003"
MUMBAI_NUMBER = "+14155550101"
PACIFIC_MAIL, MUMBAI_MAIL = "owner@pacific.example", "owner@mumbai.example"
WEEK = {"from": "2026-03-02", "to": "2026-03-08"}
# Monday 03-09 08:00 has passed in both zones (Kolkata 02:30Z, Los Angeles 15:00Z).
AFTER_BOTH_DUE = datetime(2026, 3, 9, 15, 1, tzinfo=UTC)


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def for_mumbai(events: list[Event], sid: str, base: datetime) -> list[Event]:
    """A call script's events with router's decision for mumbai's own number."""
    routed = script.routed(sid, base, "mumbai", campaign="facebook", number=MUMBAI_NUMBER)
    return [routed if event.type == "call.routed" else event for event in events]


def calls() -> list[Event]:
    pacific = [
        script.answered_call("CApac0", utc(2, 7, 30), "pacific", 30, A, "google"),
        script.answered_call("CApac1", utc(2, 8, 30), "pacific", 120, A, "google"),
        script.missed_call("CApac2", utc(3, 18), "pacific", B, "google"),
        script.answered_call("CApac3", utc(5, 23), "pacific", 60, B, "yelp"),
        script.missed_call("CApac4", utc(7, 17), "pacific", C, "yelp"),
        script.voicemail_call("CApac5", utc(8, 10, 30), "pacific", 15, D),
        script.answered_call("CApac6", utc(9, 6, 30), "pacific", 45, A, "google"),
        script.missed_call("CApac7", utc(9, 7, 30), "pacific", E, "google"),
    ]
    mumbai = [
        (script.answered_call, "CAmum0", utc(1, 18, 40), 30, F),
        (script.missed_call, "CAmum1", utc(4, 6, 30), None, G),
        (script.answered_call, "CAmum2", utc(8, 18, 20), 200, H),
        (script.answered_call, "CAmum3", utc(8, 18, 40), 10, H),
    ]
    events = [event for call in pacific for event in call]
    for build, sid, base, talk, caller in mumbai:
        made = (
            build(sid, base, "mumbai", talk, caller, "facebook")  # type: ignore[operator]
            if talk is not None
            else build(sid, base, "mumbai", caller, "facebook")  # type: ignore[operator]
        )
        events.extend(for_mumbai(made, sid, base))
    return events


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str,
    postgres_url: str,
    ch_url: str,
    ch_client: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    opened = open_stack(
        kafka_bootstrap, postgres_url, ch_url, ch_client, tmp_path_factory.mktemp("reports")
    )
    stack = next(opened)
    topics = stack.topics
    # Reports turned on on Monday 03-02 at 16:00Z, when the week before had fallen due
    # in both zones (08:00 local): the week of 03-02 is the first one due.
    on = utc(2, 16)
    stack.publish(
        topics.client_events,
        [
            settings_changed(
                "pacific", "America/Los_Angeles", on, monthly=True, emails=(PACIFIC_MAIL,)
            ),
            settings_changed("mumbai", "Asia/Kolkata", on, emails=(MUMBAI_MAIL,)),
        ],
        key=lambda event: event.clientId,
    )
    stack.publish(
        topics.number_events,
        [
            script.number_assigned(script.TWILIO_NUMBER, "pacific", "google", utc(1, 0)),
            script.number_assigned(MUMBAI_NUMBER, "mumbai", "facebook", utc(1, 0)),
        ],
        key=lambda event: event.data["phoneNumber"],
    )
    stack.publish(topics.call_events, calls(), key=lambda event: event.callSid)
    wait_for_calls(stack, "pacific", 8)
    wait_for_calls(stack, "mumbai", 4)
    converted = requests.post(
        stack.analytics_url + "/api/analytics/conversions",
        json={"callSid": "CApac1", "value": 500},
        headers=AUTH,
        timeout=10,
    )
    assert converted.status_code == 201, converted.text
    try:
        yield stack
    finally:
        next(opened, None)


@pytest.fixture(scope="module")
def idle(stack: Stack) -> ReportService:
    """A report service the tests only send bad requests to: it never holds a report."""
    return listening(stack)


def listening(stack: Stack, **overrides: Any) -> ReportService:
    service = stack.service(listen=True, **overrides)
    wait_for_clients(service, "pacific", "mumbai")
    return service


def client_of(service: ReportService) -> FlaskClient:
    return standalone_app(service).test_client()


def build(http: FlaskClient, client_id: str, headers: dict[str, str] = AUTH) -> dict[str, Any]:
    reply = http.post(
        "/api/reports",
        json={"clientId": client_id, "period": "week", **WEEK},
        headers=headers,
    )
    assert reply.status_code == 201, reply.get_json()
    body: dict[str, Any] = reply.get_json()
    return body


def analytics_answers(stack: Stack, client_id: str) -> dict[str, Any]:
    """What /api/analytics/* answers for the client and the week, asked as anyone would."""
    return {
        name: stack.analytics(path, clientId=client_id, **WEEK, **extra)
        for name, (path, extra) in ENDPOINTS.items()
    }


# --- figures equal the analytics API


def test_weekly_report_across_the_dst_change_in_los_angeles_equals_the_analytics_api(
    stack: Stack,
) -> None:
    http = client_of(listening(stack))
    report = build(http, "pacific")
    figures = report["figures"]
    assert (report["from"], report["to"], report["timezone"]) == (
        "2026-03-02",
        "2026-03-08",
        "America/Los_Angeles",
    )
    assert figures["analyticsQuery"]["from"] == "2026-03-02T08:00:00Z"
    assert figures["analyticsQuery"]["to"] == "2026-03-09T07:00:00Z"  # 167 hours later
    for name, answer in analytics_answers(stack, "pacific").items():
        assert figures[name] == answer, name
    # And by hand: pac1..pac6 are the week's, pac0 and pac7 are not.
    summary = figures["summary"]
    assert (summary["totalCalls"], summary["answered"], summary["missed"]) == (6, 3, 3)
    assert summary["voicemail"] == 1
    days = figures["callsPerDay"]["points"]
    assert [point["total"] for point in days] == [1, 1, 0, 1, 0, 1, 2]
    assert days[-1]["t"].startswith("2026-03-08T00:00:00")
    waiting = [call["callSid"] for call in figures["awaitingFollowUp"]]
    assert sorted(waiting) == ["CApac4", "CApac5"]  # pac2's caller got through on Thursday
    google = next(c for c in figures["campaigns"]["campaigns"] if c["campaign"] == "google")
    assert google["conversions"] == 1 and google["roi"] is not None


def test_weekly_report_in_kolkata_equals_the_analytics_api(stack: Stack) -> None:
    http = client_of(listening(stack))
    figures = build(http, "mumbai")["figures"]
    assert figures["analyticsQuery"]["from"] == "2026-03-01T18:30:00Z"
    assert figures["analyticsQuery"]["to"] == "2026-03-08T18:30:00Z"
    for name, answer in analytics_answers(stack, "mumbai").items():
        assert figures[name] == answer, name
    assert figures["summary"]["totalCalls"] == 3
    assert [p["total"] for p in figures["callsPerDay"]["points"]] == [1, 0, 1, 0, 0, 0, 1]
    assert [call["callSid"] for call in figures["awaitingFollowUp"]] == ["CAmum1"]


# --- documents


def test_pdf_page_one_holds_the_four_charts(stack: Stack, tmp_path: Path) -> None:
    http = client_of(listening(stack))
    report = build(http, "pacific")
    reply = http.get(f"/api/reports/{report['id']}.pdf", headers=AUTH)
    assert reply.status_code == 200 and reply.mimetype == "application/pdf"
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(reply.data)
    page = Image.open(render_page(pdf, 1, tmp_path / "page1")).convert("L")
    width, height = page.size
    assert width > height  # landscape: the charts page
    # Each quadrant of the page (below the title) holds one chart: drawn, not blank.
    top = height // 10
    for left, upper in [(0, top), (width // 2, top), (0, height // 2), (width // 2, height // 2)]:
        box = page.crop((left, upper, left + width // 2, upper + (height - top) // 2))
        dark = sum(box.histogram()[:200])
        assert dark > box.size[0] * box.size[1] // 100, (left, upper)
    html = http.get(f"/api/reports/{report['id']}.html", headers=AUTH)
    assert html.status_code == 200 and html.mimetype == "text/html"
    assert html.data.count(b"data:image/png;base64,") == 4


def inline_images(msg: EmailMessage) -> tuple[str, dict[str, bytes]]:
    """The email's HTML and its image parts by Content-ID (without the angle brackets)."""
    body = msg.get_body(("html",))
    assert body is not None
    images = {
        str(part["Content-ID"]).strip("<>"): part.get_content()
        for part in msg.walk()
        if part.get_content_type() == "image/png"
    }
    return body.get_content(), images


def attachments(msg: EmailMessage) -> list[EmailMessage]:
    return [part for part in msg.iter_attachments() if isinstance(part, EmailMessage)]


# --- the schedule


def test_scheduled_run_emails_each_client_its_week_with_charts_inline(stack: Stack) -> None:
    service = listening(stack, group_id="reports-scheduled")
    service.scheduler.clock = lambda: AFTER_BOTH_DUE
    before = {to: len(stack.inbox.to(to)) for to in (PACIFIC_MAIL, MUMBAI_MAIL)}
    service.scheduler.run_once()
    for address, client in ((PACIFIC_MAIL, "pacific"), (MUMBAI_MAIL, "mumbai")):
        wait_until(lambda: len(stack.inbox.to(address)) > before[address], message=address)  # noqa: B023
        msg = stack.inbox.to(address)[-1]
        html, images = inline_images(msg)
        assert sorted(images) == ["calls-per-day", "campaigns", "outcomes", "peak-hours"]
        for cid in images:
            assert f"cid:{cid}" in html
        assert all(png.startswith(b"\x89PNG") for png in images.values())
        (pdf,) = attachments(msg)
        assert pdf.get_content_type() == "application/pdf"
        assert pdf.get_content().startswith(b"%PDF")
        reports = service.store.reports(client, 10)
        assert [(r.period, str(r.period_first), r.status) for r in reports] == [
            ("week", "2026-03-02", "sent")
        ]
    # March's monthly report is not due before April 1st; February's fell due before reports
    # were on.
    service.scheduler.run_once()
    assert len(service.store.reports(None, 10)) == 2


class Stuck(ReportBuilder):
    """A builder that hangs in its first build until released, as a process dying mid-build."""

    def __init__(self, real: ReportBuilder) -> None:
        super().__init__(real.store, real.source, real.files, real.send, real.sender)
        self.inside = threading.Event()
        self.release = threading.Event()
        self.first: Report | None = None

    def build(self, report: Report, worker: str) -> bool:
        if self.first is None:
            self.first = report
            self.inside.set()
            self.release.wait(60)
        return super().build(report, worker)


def test_restart_in_the_middle_of_a_scheduled_run_leaves_one_report_per_client(
    stack: Stack,
) -> None:
    # The first scheduler claims both weeks and hangs building the first; its lease is short.
    first = listening(stack, lease_seconds=1.0)
    first.scheduler.clock = lambda: AFTER_BOTH_DUE
    stuck = Stuck(first.builder)
    first.scheduler.builder = stuck
    before = {to: len(stack.inbox.to(to)) for to in (PACIFIC_MAIL, MUMBAI_MAIL)}
    run = threading.Thread(target=first.scheduler.run_once, daemon=True)
    run.start()
    assert stuck.inside.wait(30)
    assert stuck.first is not None
    # "Restarted": a new scheduler over the same database, as the process that comes back.
    second = ReportService(
        first.config,
        first.store,
        first.builder.source,
        first.files,
        first.builder.send,
        lambda: AFTER_BOTH_DUE,
        sender=first.builder.sender,
    )
    assert second.scheduler.claim_due() == []  # both weeks are claimed already

    def all_sent() -> bool:
        second.scheduler.run_once()
        return all(r.status == "sent" for r in first.store.reports(None, 10))

    wait_until(all_sent, message="both reports built by the new scheduler")
    # The old one wakes up: its claim is gone, so it records and sends nothing.
    stuck.release.set()
    run.join(60)
    reports = first.store.reports(None, 10)
    assert sorted((r.client_id, r.period, str(r.period_first)) for r in reports) == [
        ("mumbai", "week", "2026-03-02"),
        ("pacific", "week", "2026-03-02"),
    ]
    assert {to: len(stack.inbox.to(to)) - n for to, n in before.items()} == {
        PACIFIC_MAIL: 1,
        MUMBAI_MAIL: 1,
    }
    second.scheduler.run_once()
    assert len(first.store.reports(None, 10)) == 2


def reporting_env(stack: Stack, analytics_url: str, clock: Path, folder: Path) -> dict[str, str]:
    """`switchboard reporting` on this stack: its topics, a database of its own, our SMTP."""
    prefix = stack.topics.prefix
    return {
        "SWITCHBOARD_ENV": "development",
        "ADMIN_API_TOKEN": ADMIN_TOKEN,
        "DATABASE_URL": stack.database(),
        "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": prefix,
        "REPORTING_GROUP_ID": f"{prefix}reporting-{uuid.uuid4().hex[:6]}",
        "SMTP_URL": stack.smtp_url,
        "ANALYTICS_URL": analytics_url,
        "ROUTER_URL": stack.keys.url,
        "REPORTING_CLOCK_FILE": str(clock),
        "REPORTS_STORAGE_DIR": str(folder),
        "REPORTS_INTERVAL_SECONDS": "0.5",
        "REPORTS_LEASE_SECONDS": "3",
    }


def test_the_reporting_process_killed_mid_run_and_restarted_sends_each_report_once(
    stack: Stack, tmp_path: Path
) -> None:
    """The real `switchboard reporting`, SIGKILLed while it builds the first due report."""
    gate = Gate(stack.analytics_url)
    clock = tmp_path / "clock"
    set_file_clock(clock, AFTER_BOTH_DUE)
    env = reporting_env(stack, gate.url, clock, tmp_path / "documents")
    before = {to: len(stack.inbox.to(to)) for to in (PACIFIC_MAIL, MUMBAI_MAIL)}
    first = ServiceProcess("reporting", env, startup_timeout=60).start()
    try:
        assert gate.asked.wait(60), "the scheduler never asked analytics"
    finally:
        first.kill()
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    gate.open.set()
    second = ServiceProcess("reporting", env, startup_timeout=60).start()
    try:

        def reports() -> list[dict[str, Any]] | None:
            reply = requests.get(f"{second.url}/api/reports", headers=admin, timeout=10)
            listed: list[dict[str, Any]] = reply.json()["reports"]
            return listed if listed and all(r["status"] == "sent" for r in listed) else None

        listed = wait_until(reports, timeout=90, message="both reports sent after the restart")
        assert sorted((r["clientId"], r["period"], r["from"]) for r in listed) == [
            ("mumbai", "week", "2026-03-02"),
            ("pacific", "week", "2026-03-02"),
        ]
        assert max(r["attempts"] for r in listed) == 2  # the one the first process held
        assert {to: len(stack.inbox.to(to)) - n for to, n in before.items()} == {
            PACIFIC_MAIL: 1,
            MUMBAI_MAIL: 1,
        }
        ready = requests.get(f"{second.url}/readyz", timeout=10)
        assert "reports" not in ready.json()["problems"]
    finally:
        second.stop()
        gate.stop()


class FailingFirst:
    """Analytics answers only from the second ask on, as after an outage."""

    def __init__(self, real: AnalyticsFigures) -> None:
        self.real = real
        self.asked = 0

    def figures(self, client_id: str, period: Period, tz: str) -> Figures:
        self.asked += 1
        if self.asked == 1:
            raise ConnectionError("analytics unavailable")
        return self.real.figures(client_id, period, tz)


def test_a_failing_build_is_retried_and_shows_in_readyz_and_metrics(stack: Stack) -> None:
    service = listening(stack, retry_first_seconds=0.5)
    source = FailingFirst(service.builder.source)  # type: ignore[arg-type]
    service.builder.source = source
    service.scheduler.clock = lambda: AFTER_BOTH_DUE - timedelta(hours=12)  # Kolkata's only
    http = client_of(service)
    service.scheduler.run_once()
    (report,) = service.store.reports(None, 10)
    assert (report.client_id, report.status, report.attempts) == ("mumbai", "failed", 1)
    assert "analytics unavailable" in (report.last_error or "")
    ready = http.get("/readyz")
    assert ready.status_code == 503
    assert "analytics unavailable" in ready.get_json()["problems"]["reports"]
    metrics = http.get("/metrics").get_data(as_text=True)
    assert 'reports{service="reporting",status="failed"} 1.0' in metrics
    assert 'reports_builds_total{outcome="failed",period="week",service="reporting"}' in metrics

    def sent() -> bool:
        service.scheduler.run_once()
        return service.store.reports(None, 10)[0].status == "sent"

    wait_until(sent, message="the failed report retried and sent")
    assert service.store.reports(None, 10)[0].attempts == 2
    assert http.get("/readyz").status_code == 200


# --- the API


def test_a_client_key_sees_only_its_own_reports(stack: Stack) -> None:
    http = client_of(listening(stack))
    pacific = build(http, "pacific")
    mumbai = build(http, "mumbai")
    key = stack.keys.issue(api_key("reports-pacific"), "pacific")
    own = {"Authorization": f"Bearer {key}"}
    listed = http.get("/api/reports", headers=own).get_json()["reports"]
    assert [r["id"] for r in listed] == [pacific["id"]]
    assert http.get("/api/reports?clientId=mumbai", headers=own).status_code == 404
    for suffix in ("", ".pdf", ".html"):
        assert http.get(f"/api/reports/{mumbai['id']}{suffix}", headers=own).status_code == 404
        assert http.get(f"/api/reports/{pacific['id']}{suffix}", headers=own).status_code == 200
    other = http.post(
        "/api/reports", json={"clientId": "mumbai", "period": "week", **WEEK}, headers=own
    )
    assert other.status_code == 404
    admin = http.get("/api/reports", headers=AUTH).get_json()["reports"]
    assert sorted(r["clientId"] for r in admin) == ["mumbai", "pacific"]
    assert http.get("/api/reports").status_code == 401


def test_building_the_same_period_again_answers_the_report_that_exists(stack: Stack) -> None:
    http = client_of(listening(stack))
    first = build(http, "mumbai")
    again = http.post(
        "/api/reports", json={"clientId": "mumbai", "period": "week", **WEEK}, headers=AUTH
    )
    assert again.status_code == 200
    assert again.get_json()["id"] == first["id"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"period": "week", "from": "2026-03-02"}, "clientId"),
        ({"clientId": "pacific", "period": "day", "from": "2026-03-02"}, "period"),
        ({"clientId": "pacific", "period": "week", "from": "2026-03-03"}, "Monday"),
        ({"clientId": "pacific", "period": "month", "from": "2026-03-02"}, "1st"),
        ({"clientId": "pacific", "period": "week", "from": "2026-03-02", "to": "2026-03-09"}, "to"),
        ({"clientId": "pacific", "period": "week", "from": "03/02/2026"}, "YYYY-MM-DD"),
        ({"clientId": "pacific", "period": "week", "from": "2026-03-02", "send": True}, "send"),
        ({"clientId": 7, "period": "week", "from": "2026-03-02"}, "clientId"),
    ],
)
def test_a_bad_build_request_is_a_400_and_builds_nothing(
    idle: ReportService, body: dict[str, Any], reason: str
) -> None:
    service = idle
    reply = client_of(service).post("/api/reports", json=body, headers=AUTH)
    assert reply.status_code == 400
    assert reason in reply.get_json()["error"]["message"]
    assert service.store.reports(None, 10) == []


def test_an_unknown_client_or_report_is_a_404(idle: ReportService) -> None:
    http = client_of(idle)
    unknown = http.post(
        "/api/reports", json={"clientId": "nobody", "period": "week", **WEEK}, headers=AUTH
    )
    assert unknown.status_code == 404
    assert http.get("/api/reports/not-a-uuid", headers=AUTH).status_code == 404
    missing = "00000000-0000-0000-0000-000000000000"
    assert http.get(f"/api/reports/{missing}.pdf", headers=AUTH).status_code == 404


# --- the OpenAPI document is true of the app

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def report_operations() -> list[Any]:
    found = []
    for result in schemathesis.openapi.from_dict(reports_document()).get_all_operations():
        assert isinstance(result, Ok), f"the document is not valid: {result}"
        if result.ok().path.startswith("/api/reports"):
            found.append(result.ok())
    return found


def test_the_document_covers_every_reports_route(idle: ReportService) -> None:
    served = {
        rule.rule for rule in standalone_app(idle).url_map.iter_rules() if "/api/" in rule.rule
    }
    # One rule answers a report, its .pdf and its .html.
    assert served == {"/api/reports", "/api/reports/<report_ref>"}
    assert {op.path for op in report_operations()} == {
        "/api/reports",
        "/api/reports/{reportId}",
        "/api/reports/{reportId}.pdf",
        "/api/reports/{reportId}.html",
    }


@pytest.mark.parametrize(
    ("label", "mode"),
    [
        pytest.param(op.label, mode, id=f"{op.label} {mode.value}")
        for op in report_operations()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    ],
)
def test_every_reports_answer_is_documented_and_none_is_a_server_error(
    stack: Stack, label: str, mode: GenerationMode
) -> None:
    """schemathesis over each operation as the admin; half the ids and bodies made real."""
    service = listening(stack)
    app = standalone_app(service)
    made = build(app.test_client(), "mumbai")
    schema = schemathesis.openapi.from_dict(reports_document())
    schema.app = app
    [operation] = [
        r.ok() for r in schema.get_all_operations() if isinstance(r, Ok) and r.ok().label == label
    ]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=12,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: Any) -> None:
        if zlib.crc32(repr((case.path_parameters, case.body)).encode()) % 2 == 0:
            if isinstance(case.path_parameters, dict) and "reportId" in case.path_parameters:
                case.path_parameters["reportId"] = made["id"]
            if isinstance(case.body, dict):
                case.body.update({"clientId": "mumbai", "period": "week", "from": WEEK["from"]})
        case.call_and_validate(headers=AUTH, checks=CHECKS)

    run()


# --- the consumer of client settings


def test_a_client_event_that_is_not_an_event_is_dead_lettered_and_the_next_one_is_saved(
    stack: Stack,
) -> None:
    key = f"bad-{uuid.uuid4().hex[:8]}"
    client_id = f"after-{key}"
    stack.producer.publish_raw(stack.topics.client_events, b"not an event", key, timeout=10)
    # Reports off: the other tests' scheduled runs have nothing to build for it.
    later = settings_changed(client_id, "UTC", utc(2, 16), weekly=False)
    stack.publish(stack.topics.client_events, [later], key=lambda event: event.clientId)
    service = listening(stack)
    wait_for_clients(service, client_id)

    def dead() -> list[dict[str, Any]]:
        found = read_topic(stack.kafka_bootstrap, stack.topics.dead_letters, settle=0.5)
        return [
            m["value"]
            for m in found
            if m["key"] == key and m["value"]["consumer"] == "reporting-reports"
        ]

    # One per report service listening in this module (each its own group).
    letters = wait_until(dead, timeout=60, message="the dead letter")
    for letter in letters:
        assert letter["value"] == "not an event" and "not JSON" in letter["reason"]
        assert letter["topic"] == stack.topics.client_events
    assert service.listener is not None and service.listener.alive
    assert service.problems() == {}


# --- a caller's erasure and a client's deletion (last: analytics, on the same topics, acts on
# them too)


def test_an_erased_caller_is_replaced_by_the_token_in_stored_reports(stack: Stack) -> None:
    service = listening(stack)
    http = client_of(service)
    report = build(http, "pacific")
    assert D in json.dumps(report["figures"])
    before_pdf = http.get(f"/api/reports/{report['id']}.pdf", headers=AUTH).data
    assert D.encode() in http.get(f"/api/reports/{report['id']}.html", headers=AUTH).data
    token = caller_token(DEV_TOKEN_SECRET, D)
    stack.publish(
        stack.topics.client_events,
        [caller_erased(D, token, "admin"), caller_erased(None, token, "admin")],
        key=lambda event: erased_key(token),
    )

    def erased() -> dict[str, Any] | None:
        body: dict[str, Any] = http.get(f"/api/reports/{report['id']}", headers=AUTH).get_json()
        return body if D not in json.dumps(body) else None

    figures = wait_until(erased, message="the caller erased from the report")["figures"]
    assert [c["from"] for c in figures["awaitingFollowUp"] if c["callSid"] == "CApac5"] == [token]
    html = http.get(f"/api/reports/{report['id']}.html", headers=AUTH).data
    assert D.encode() not in html and token.encode() in html
    assert http.get(f"/api/reports/{report['id']}.pdf", headers=AUTH).data != before_pdf


def test_a_deleted_clients_reports_are_purged_once_its_grace_has_passed(stack: Stack) -> None:
    service = listening(stack)
    http = client_of(service)
    gone, kept = build(http, "mumbai"), build(http, "pacific")
    pdf_key = service.store.report(gone["id"]).pdf_key  # type: ignore[union-attr]
    assert pdf_key is not None
    deleted_at = datetime.now(UTC)
    settings = ClientSettings(name="Client mumbai", recording_disclaimer=None).patched(
        {"timezone": "Asia/Kolkata"}
    )
    stack.publish(
        stack.topics.client_events,
        [
            facts.client_settings_changed(
                Client("mumbai", settings, utc(1, 0), deleted_at),
                deleted=True,
                purge_after=deleted_at + timedelta(days=30),
            )
        ],
        key=lambda event: event.clientId,
    )
    wait_until(
        lambda: getattr(service.store.client("mumbai"), "purge_after", None),
        message="mumbai's deletion seen",
    )
    service.scheduler.clock = lambda: deleted_at + timedelta(days=29)
    assert service.scheduler.purge() == 0
    assert http.get(f"/api/reports/{gone['id']}.pdf", headers=AUTH).status_code == 200
    service.scheduler.clock = lambda: deleted_at + timedelta(days=30, seconds=1)
    assert service.scheduler.purge() == 1
    assert http.get(f"/api/reports/{gone['id']}", headers=AUTH).status_code == 404
    with pytest.raises(DocumentMissing):
        service.files.get(pdf_key)
    assert [r["id"] for r in http.get("/api/reports", headers=AUTH).get_json()["reports"]] == [
        kept["id"]
    ]
    unknown = http.post(
        "/api/reports", json={"clientId": "mumbai", "period": "week", **WEEK}, headers=AUTH
    )
    assert unknown.status_code == 404
