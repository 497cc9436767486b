"""Reporting's housekeeping against a real migrated PostgreSQL: a deleted client's purge, retention.

The rows are written by reporting's own code: alerts made by `missed_call_alert`
and held by `Store.hold_alert`, deliveries by `Store.add_deliveries` and ended
by the dispatcher's `delivered` / `dead`, the text-back ledger by
`TextBackStore`; clients by `report_client` from router's own
`client.settings-changed` builder, saved as the report-clients consumer saves
them. The clock is injected: each pass is given its `now`.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from services.reporting.alerts import MissedCall, TextBackSetting, missed_call_alert
from services.reporting.housekeeping import (
    LONGEST_COOLDOWN,
    ClientRetention,
    Housekeeping,
    cutoffs,
)
from services.reporting.notifications import Delivery
from services.reporting.reports.clients import report_client
from services.reporting.reports.config import ReportsConfig
from services.reporting.reports.service import ReportService
from services.reporting.reports.store import ReportStore
from services.reporting.sms import Refused, Sent
from services.reporting.store import Store
from services.reporting.textback_rules import Send
from services.reporting.textback_store import TextBackStore
from services.router import facts
from services.router.directory import Client, ClientSettings
from switchboard.privacy import DEV_TOKEN_SECRET, caller_token
from switchboard.settings import ConfigError
from tests.reporting.conftest import reporting_database

# Rows get their created_at from the database's clock: the passes run from there on.
NOW = datetime.now(UTC).replace(microsecond=0)
TEXT = TextBackSetting("Sorry we missed you.", 24)
LEASE = timedelta(minutes=5)
FAR = timedelta(days=3650)
_lines = itertools.count(6100)


@pytest.fixture
def reporting_db(postgres_url: str) -> Iterator[str]:
    """A fresh migrated database per test: the dispatcher's claims see every due row."""
    with reporting_database(postgres_url) as dsn:
        yield dsn


@dataclass
class Stores:
    dsn: str
    alerts: Store
    ledger: TextBackStore
    reports: ReportStore


@pytest.fixture
def stores(reporting_db: str) -> Iterator[Stores]:
    store = Store.open(reporting_db)
    yield Stores(reporting_db, store, TextBackStore(store.pool), ReportStore(store.pool))
    store.close()


def settings_changed(
    stores: Stores,
    client_id: str,
    retention_days: int | None = None,
    purge_after: datetime | None = None,
) -> None:
    """Router's event for the client, saved as the report-clients consumer saves it."""
    moment = datetime.now(UTC)
    client = Client(
        client_id, ClientSettings(name=client_id, retention_days=retention_days), moment, moment
    )
    event = facts.client_settings_changed(
        client, deleted=purge_after is not None, purge_after=purge_after
    )
    stores.reports.save_client(report_client(event))


def new_client() -> str:
    return f"client-{uuid.uuid4().hex[:8]}"


def new_number() -> str:
    return f"+1415555{next(_lines)}"


def new_caller() -> str:
    return f"+1212555{next(_lines)}"


def missed(client_id: str, number: str, caller: str, at: datetime) -> MissedCall:
    return MissedCall(
        call_sid="CA" + uuid.uuid4().hex,
        client_id=client_id,
        called_number=number,
        caller_number=caller,
        outcome="no-answer",
        called_at=at - timedelta(minutes=1),
        text_back=TEXT,
    )


def alerted(stores: Stores, call: MissedCall, published: bool = True) -> dict[str, Any]:
    """The call's alert held, and published unless told otherwise (then due far ahead)."""
    alert = missed_call_alert(call, NOW).to_dict()
    stores.alerts.hold_alert(call.call_sid, call.client_id, alert, NOW if published else NOW + FAR)
    if published:
        stores.alerts.alert_published(call.call_sid, NOW)
    return alert


def delivered_and_dead(stores: Stores, alert: dict[str, Any]) -> None:
    """An email delivered and an SMS given up, as the dispatcher ends them."""
    stores.alerts.add_deliveries(
        alert,
        [Delivery("email", "owner@example.com", NOW), Delivery("sms", "+14155550000", NOW)],
        NOW,
    )
    for row in stores.alerts.claim_due(NOW, LEASE, limit=100):
        if row.channel == "email":
            stores.alerts.delivered(row, NOW)
        else:
            stores.alerts.dead(row, "unreachable", NOW)


def pending(stores: Stores, alert: dict[str, Any]) -> None:
    """A webhook held until the end of quiet hours far ahead: not sent yet."""
    stores.alerts.add_deliveries(
        alert, [Delivery("webhook", "https://example.com/hook", NOW + FAR, "s3cret")], NOW
    )


def texted(stores: Stores, call: MissedCall, at: datetime, published: bool = True) -> None:
    token = caller_token(DEV_TOKEN_SECRET, call.caller_number)
    claim = stores.ledger.claim(call, at, timedelta(hours=1), token)
    assert isinstance(claim.decision, Send)
    stores.ledger.record_sent(call.call_sid, Sent("SM" + uuid.uuid4().hex, "queued"), at)
    if published:
        stores.ledger.mark_published(call.call_sid)


def opted_out(stores: Stores, call: MissedCall, at: datetime) -> None:
    """The caller had replied STOP: Twilio refuses the text with 21610."""
    token = caller_token(DEV_TOKEN_SECRET, call.caller_number)
    stores.ledger.claim(call, at, timedelta(hours=1), token)
    stores.ledger.record_refused(call, Refused(21610, "unsubscribed"), at)


@dataclass(frozen=True)
class Held:
    client_id: str
    number: str
    callers: tuple[str, ...]


def hold_everything(stores: Stores, client_id: str) -> Held:
    """A client's number with a text-back, two missed calls alerted (one texted, one opted out)."""
    number, texted_caller, stop_caller = new_number(), new_caller(), new_caller()
    stores.ledger.apply_number(number, client_id, TEXT, NOW - timedelta(days=1))
    first = missed(client_id, number, texted_caller, NOW)
    delivered_and_dead(stores, alerted(stores, first))
    texted(stores, first, NOW)
    second = missed(client_id, number, stop_caller, NOW)
    delivered_and_dead(stores, alerted(stores, second))
    opted_out(stores, second, NOW)
    return Held(client_id, number, (texted_caller, stop_caller))


def kept(stores: Stores, client_id: str, numbers: tuple[str, ...] = ()) -> dict[str, Any]:
    """What reporting holds of a client (and of its numbers' opt-outs), table by table."""
    with psycopg.connect(stores.dsn) as conn:

        def count(query: str, *args: Any) -> int:
            row = conn.execute(query, args).fetchone()
            return int(row[0]) if row else 0

        return {
            "alerts": count(
                "SELECT count(*) FROM reporting.alerts WHERE client_id = %s", client_id
            ),
            "deliveries": sorted(
                status
                for (status,) in conn.execute(
                    "SELECT status FROM reporting.deliveries WHERE client_id = %s", (client_id,)
                )
            ),
            "textback_calls": count(
                "SELECT count(*) FROM reporting.textback_calls WHERE client_id = %s", client_id
            ),
            "textback_numbers": count(
                "SELECT count(*) FROM reporting.textback_numbers WHERE client_id = %s", client_id
            ),
            "opt_outs": count(
                "SELECT count(*) FROM reporting.textback_opt_outs WHERE phone_number = ANY(%s)",
                list(numbers),
            ),
        }


EVERYTHING = {
    "alerts": 2,
    "deliveries": ["dead", "dead", "delivered", "delivered"],
    "textback_calls": 2,
    "textback_numbers": 1,
    "opt_outs": 1,
}
NOTHING = {
    "alerts": 0,
    "deliveries": [],
    "textback_calls": 0,
    "textback_numbers": 0,
    "opt_outs": 0,
}


# -- a deleted client's purge -----------------------------------------------------------------


def test_a_deleted_client_past_purge_after_loses_its_alerts_texts_and_opt_outs(
    stores: Stores,
) -> None:
    purge_after = NOW + timedelta(days=30)
    gone, other = hold_everything(stores, new_client()), hold_everything(stores, new_client())
    settings_changed(stores, gone.client_id, purge_after=purge_after)
    settings_changed(stores, other.client_id)

    swept = Housekeeping(stores.alerts.pool).run(purge_after + timedelta(minutes=1))

    assert swept.purged_clients == [gone.client_id]
    assert kept(stores, gone.client_id, (gone.number,)) == NOTHING
    assert kept(stores, other.client_id, (other.number,)) == EVERYTHING


def test_a_purge_leaves_what_is_still_in_flight_for_a_later_pass(stores: Stores) -> None:
    """An unpublished alert and an unsent delivery stay until they end, then go."""
    client_id, number = new_client(), new_number()
    purge_after = NOW + timedelta(days=30)
    settings_changed(stores, client_id, purge_after=purge_after)
    waiting = missed(client_id, number, new_caller(), NOW)
    alerted(stores, waiting, published=False)
    pending(stores, alerted(stores, missed(client_id, number, new_caller(), NOW)))
    housekeeping = Housekeeping(stores.alerts.pool)

    housekeeping.run(purge_after + timedelta(minutes=1))
    assert kept(stores, client_id)["alerts"] == 1
    assert kept(stores, client_id)["deliveries"] == ["pending"]

    stores.alerts.alert_published(waiting.call_sid, NOW + FAR)
    [row] = stores.alerts.claim_due(NOW + FAR, LEASE)
    stores.alerts.dead(row, "gone", NOW + FAR)
    housekeeping.run(NOW + FAR)
    assert kept(stores, client_id) == NOTHING


def test_nothing_of_a_deleted_client_goes_before_its_purge_after(stores: Stores) -> None:
    held = hold_everything(stores, new_client())
    purge_after = NOW + timedelta(days=30)
    settings_changed(stores, held.client_id, purge_after=purge_after)

    swept = Housekeeping(stores.alerts.pool, default_days=0).run(purge_after - timedelta(minutes=1))

    assert swept.purged_clients == [] and swept.total == 0
    assert kept(stores, held.client_id, (held.number,)) == EVERYTHING


def test_a_purge_keeps_the_opt_outs_of_a_number_another_client_holds_now(stores: Stores) -> None:
    """A STOP is to the number: the new owner's callers who sent it stay opted out."""
    gone = hold_everything(stores, new_client())
    purge_after = NOW + timedelta(days=30)
    settings_changed(stores, gone.client_id, purge_after=purge_after)
    successor = new_client()
    stores.ledger.apply_number(gone.number, successor, TEXT, NOW)

    Housekeeping(stores.alerts.pool).run(purge_after + timedelta(minutes=1))

    assert kept(stores, gone.client_id, (gone.number,)) == {**NOTHING, "opt_outs": 1}
    assert stores.ledger.opted_out(gone.number, gone.callers[1])
    assert kept(stores, successor)["textback_numbers"] == 1


# -- retention ---------------------------------------------------------------------------------


def test_retention_deletes_old_rows_but_keeps_pending_opt_outs_and_the_last_text(
    stores: Stores,
) -> None:
    client_id, keeper = new_client(), new_client()
    settings_changed(stores, client_id, retention_days=7)
    settings_changed(stores, keeper)
    held = hold_everything(stores, client_id)
    pending(stores, alerted(stores, missed(client_id, held.number, new_caller(), NOW)))
    alerted(stores, missed(client_id, held.number, new_caller(), NOW), published=False)
    # A caller texted twice (only the last text counts for a cooldown), and a text whose
    # sms.sent is not on Kafka yet.
    twice = new_caller()
    texted(
        stores,
        missed(client_id, held.number, twice, NOW - timedelta(days=2)),
        NOW - timedelta(days=2),
    )
    texted(stores, missed(client_id, held.number, twice, NOW), NOW)
    # (long past any cooldown, so only its announcement keeps it).
    long_ago = NOW - LONGEST_COOLDOWN - timedelta(days=10)
    unannounced = missed(client_id, held.number, new_caller(), long_ago)
    texted(stores, unannounced, long_ago, published=False)
    other = hold_everything(stores, keeper)
    housekeeping = Housekeeping(stores.alerts.pool)

    housekeeping.run(NOW + timedelta(days=8))

    assert kept(stores, client_id, (held.number,)) == {
        # the unpublished alert, and the one whose webhook is still pending
        "alerts": 1,
        "deliveries": ["pending"],
        # each texted caller's last text (a cooldown may count it) and the unannounced one
        "textback_calls": 3,
        "textback_numbers": 1,
        "opt_outs": 1,
    }
    assert stores.ledger.opted_out(held.number, held.callers[1])
    assert stores.ledger.call(unannounced.call_sid) is not None
    assert kept(stores, keeper, (other.number,)) == EVERYTHING

    stores.ledger.mark_published(unannounced.call_sid)
    housekeeping.run(NOW + LONGEST_COOLDOWN + timedelta(days=1))
    assert kept(stores, client_id, (held.number,))["textback_calls"] == 0
    assert kept(stores, client_id, (held.number,))["opt_outs"] == 1


def test_retention_keeps_the_rows_younger_than_it(stores: Stores) -> None:
    held = hold_everything(stores, new_client())
    settings_changed(stores, held.client_id, retention_days=7)

    swept = Housekeeping(stores.alerts.pool).run(NOW + timedelta(days=6))

    assert swept.total == 0
    assert kept(stores, held.client_id, (held.number,)) == EVERYTHING


def test_the_global_retention_applies_to_clients_without_their_own(stores: Stores) -> None:
    unset, longer = hold_everything(stores, new_client()), hold_everything(stores, new_client())
    settings_changed(stores, unset.client_id)
    settings_changed(stores, longer.client_id, retention_days=90)
    unknown = hold_everything(stores, new_client())  # no settings event seen yet

    Housekeeping(stores.alerts.pool, default_days=30).run(NOW + timedelta(days=31))

    for held in (unset, longer, unknown):
        remaining = kept(stores, held.client_id, (held.number,))
        # past the longest cooldown even the last text goes; opt-outs stay
        assert remaining == {**NOTHING, "textback_numbers": 1, "opt_outs": 1}


def test_the_shorter_of_a_clients_retention_and_the_global_one_wins() -> None:
    now = datetime(2026, 12, 5, tzinfo=UTC)
    decided = cutoffs(
        [
            ClientRetention("short", retention_days=7),
            ClientRetention("long", retention_days=90),
            ClientRetention("gone", deleted=True, purge_after=now - timedelta(seconds=1)),
            ClientRetention("leaving", 7, deleted=True, purge_after=now + timedelta(days=1)),
        ],
        now,
        default_days=30,
    )
    assert decided.per_client == {
        "short": now - timedelta(days=7),
        "long": now - timedelta(days=30),
        "leaving": now - timedelta(days=7),
    }
    assert decided.default == now - timedelta(days=30)
    assert decided.purged == frozenset({"gone"})
    assert cutoffs([ClientRetention("none")], now, 0) == cutoffs([], now, 0)


# -- where it runs -----------------------------------------------------------------------------


def test_the_report_scheduler_runs_housekeeping_with_reporting_retention_days(
    stores: Stores, tmp_path: Path
) -> None:
    held = hold_everything(stores, new_client())
    settings_changed(stores, held.client_id)
    gone = hold_everything(stores, new_client())
    settings_changed(stores, gone.client_id, purge_after=NOW + timedelta(days=1))
    config = ReportsConfig(
        database_url=stores.dsn,
        admin_token="test-admin-token",
        storage_dir=str(tmp_path),
        retention_days=10,
    )
    moment = [NOW + timedelta(days=2)]
    service = ReportService.from_config(config, lambda: moment[0], migrate=False)
    try:
        service.scheduler.run_once()
        assert kept(stores, gone.client_id, (gone.number,)) == NOTHING
        assert kept(stores, held.client_id, (held.number,)) == EVERYTHING

        moment[0] = NOW + timedelta(days=11)
        service.scheduler.run_once()
        assert kept(stores, held.client_id, (held.number,))["alerts"] == 0
        late = hold_everything(stores, held.client_id)
        moment[0] += timedelta(minutes=30)
        service.scheduler.run_once()  # within the hour of the last pass: nothing yet
        assert kept(stores, held.client_id)["alerts"] == 2
        moment[0] += timedelta(minutes=30)
        service.scheduler.run_once()
        assert kept(stores, late.client_id)["alerts"] == 0
    finally:
        service.close()


def test_reporting_retention_days_below_zero_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="REPORTING_RETENTION_DAYS"):
        ReportsConfig(database_url="postgresql://x/y", admin_token="t", retention_days=-1)
