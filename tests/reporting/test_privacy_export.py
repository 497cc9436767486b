"""A caller's export from reporting, against a real migrated PostgreSQL.

The rows are written by reporting's own code: alerts made by `missed_call_alert`
and held by `Store.hold_alert`, deliveries by `Store.add_deliveries`, the
text-back ledger by `TextBackStore`, reports by `ReportStore`; the erasure by
`Store.erase_caller` and `TextBackStore.erase_caller` as the agents call them.
The endpoint is asked through reporting's own Flask app.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from services.reporting.alerts import MissedCall, TextBackSetting, missed_call_alert
from services.reporting.config import Config
from services.reporting.notifications import Delivery
from services.reporting.reports.store import ReportClient, ReportStore
from services.reporting.runtime import Runtime, build_runtime
from services.reporting.sms import Refused, Sent
from services.reporting.textback_store import TextBackStore
from services.reporting.web import create_web_app
from switchboard.privacy import DEV_TOKEN_SECRET, caller_token

ADMIN = "test-admin-token"
CLIENT_KEY = "sbk_" + "A" * 43
BY_ADMIN = {"Authorization": f"Bearer {ADMIN}"}
NOW = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
TEXT = TextBackSetting("Sorry we missed you.", 24)
_lines = itertools.count(5100)


@pytest.fixture(scope="module")
def runtime(reporting_db: str) -> Iterator[Runtime]:
    made = build_runtime(Config(database_url=reporting_db, admin_token=ADMIN))
    yield made
    made.close()


@pytest.fixture(scope="module")
def client(runtime: Runtime) -> FlaskClient:
    return create_web_app(runtime).test_client()


@dataclass(frozen=True)
class Held:
    caller: str
    number: str
    missed: MissedCall
    report_id: str


def hold_everything(runtime: Runtime) -> Held:
    """One caller's missed call with its alert delivered, a text sent, an opt-out, a report."""
    line = next(_lines)
    caller, number = f"+1212555{line}", f"+1415555{line}"
    client_id = f"client-{uuid.uuid4().hex[:8]}"
    missed = MissedCall(
        call_sid="CA" + uuid.uuid4().hex,
        client_id=client_id,
        called_number=number,
        caller_number=caller,
        outcome="no-answer",
        called_at=NOW - timedelta(minutes=1),
        text_back=TEXT,
    )
    alert = missed_call_alert(missed, NOW).to_dict()
    runtime.store.hold_alert(missed.call_sid, client_id, alert, NOW)
    runtime.store.add_deliveries(alert, [Delivery("email", "owner@example.com", NOW)], NOW)

    ledger = TextBackStore(runtime.store.pool)
    ledger.claim(missed, NOW, timedelta(hours=1), caller_token(DEV_TOKEN_SECRET, caller))
    ledger.record_sent(missed.call_sid, Sent("SM" + uuid.uuid4().hex, "queued"), NOW)
    refused = MissedCall(**{**missed.__dict__, "call_sid": "CA" + uuid.uuid4().hex})
    ledger.claim(refused, NOW + timedelta(days=2), timedelta(hours=1), "erased:" + "0" * 32)
    ledger.record_refused(refused, Refused(21610, "unsubscribed"), NOW + timedelta(days=2))

    reports = ReportStore(runtime.store.pool)
    owner = ReportClient(client_id, "Acme", "UTC", True, False, (), None, False, NOW)
    reports.save_client(owner)
    slot, _ = reports.claim_slot(owner, "week", date(2026, 11, 23), date(2026, 11, 29), "request")
    taken = reports.take("test", 60, slot.id)
    assert taken is not None
    figures = {"missedCalls": {"calls": [{"callSid": missed.call_sid, "from": caller}]}}
    assert reports.built(taken.id, "test", figures, "r.pdf", "r.html")
    return Held(caller, number, missed, taken.id)


def export(client: FlaskClient, number: str, **params: str) -> Any:
    reply = client.get(
        f"/internal/privacy/callers/{number}",
        query_string=params,
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    assert reply.status_code == 200, reply.get_data(as_text=True)
    return reply.get_json()


def test_the_export_lists_alerts_texts_opt_outs_and_reports_naming_the_caller(
    runtime: Runtime, client: FlaskClient
) -> None:
    held = hold_everything(runtime)
    other = hold_everything(runtime)

    found = export(client, held.caller, token=caller_token(DEV_TOKEN_SECRET, held.caller))

    [alert] = found["alerts"]
    assert alert["callSid"] == held.missed.call_sid
    assert alert["callerNumber"] == held.caller
    assert alert["deliveries"] == [{"channel": "email", "status": "pending", "deliveredAt": None}]
    sent, refused = found["texts"]
    assert (sent["callSid"], sent["from"], sent["status"]) == (
        held.missed.call_sid,
        held.number,
        "sent",
    )
    assert sent["body"] == TEXT.message and sent["sentAt"] is not None
    assert (refused["status"], refused["errorCode"]) == ("refused", 21610)
    assert found["optOuts"] == [
        {"phoneNumber": held.number, "optedOutAt": (NOW + timedelta(days=2)).isoformat()}
    ]
    assert [r["id"] for r in found["reports"]] == [held.report_id]
    assert found["reports"][0]["period"] == "week"
    assert other.caller not in str(found) and other.missed.call_sid not in str(found)


def test_an_erased_caller_is_found_under_their_token(runtime: Runtime, client: FlaskClient) -> None:
    held = hold_everything(runtime)
    token = caller_token(DEV_TOKEN_SECRET, held.caller)
    runtime.store.erase_caller(held.caller, token)
    TextBackStore(runtime.store.pool).erase_caller(held.caller, token)
    ReportStore(runtime.store.pool).set_figures(
        held.report_id, {"missedCalls": {"calls": [{"from": token}]}}
    )

    found = export(client, held.caller, token=token)

    assert [a["callerNumber"] for a in found["alerts"]] == [token]
    assert len(found["texts"]) == 2 and len(found["optOuts"]) == 1
    assert [r["id"] for r in found["reports"]] == [held.report_id]
    assert held.caller not in str(found)
    # Without the token nothing names the number any more.
    assert export(client, held.caller) == {"alerts": [], "texts": [], "optOuts": [], "reports": []}


@pytest.mark.parametrize(
    ("headers", "number", "params", "status", "code"),
    [
        ({}, "+12125550100", {}, 401, "unauthorized"),
        ({"Authorization": f"Bearer {CLIENT_KEY}"}, "+12125550100", {}, 403, "forbidden"),
        (BY_ADMIN, "12125550100", {}, 400, "invalid_number"),
        (BY_ADMIN, "+12125550100", {"token": "x"}, 400, "invalid_token"),
    ],
)
def test_the_export_is_for_the_admin_and_an_e164_number(
    client: FlaskClient,
    headers: dict[str, str],
    number: str,
    params: dict[str, str],
    status: int,
    code: str,
) -> None:
    reply = client.get(f"/internal/privacy/callers/{number}", headers=headers, query_string=params)
    assert reply.status_code == status
    assert reply.get_json()["error"]["code"] == code
