"""A caller's erasure in analytics: the number nowhere, the counts unchanged, no way back."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from flask import Flask

from services.analytics.calls import CallFilter
from services.analytics.clients import ClientSettings
from services.analytics.consumer import write
from services.analytics.privacy import (
    ErasedCallers,
    client_cutoffs,
    expire_client_calls,
    find_text,
)
from services.analytics.store import Store
from services.recordings.announcements import deleted_event
from services.router import facts
from services.router.directory import Client
from services.router.directory import ClientSettings as RouterSettings
from services.router.privacy import caller_erased
from switchboard.events import Event
from switchboard.privacy import DEV_TOKEN_SECRET, caller_token
from tests.analytics import call_scripts as script
from tests.analytics.conftest import AUTH, bearer

BASE = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
CALLER = "+12125550147"
OTHER = "+12125550999"
TOKEN = caller_token(DEV_TOKEN_SECRET, CALLER)


def ingest(store: Store, events: Sequence[Event], erased: ErasedCallers | None = None) -> None:
    """Through the consumer's write step, with the raw payloads as Kafka delivers them."""
    write(store, events, {e.id: e.to_json() for e in events}, erased=erased)


def audited(store: Store, target: str) -> list[str]:
    """The actions analytics' audit log records about `target`."""
    rows = store.execute(
        f"SELECT action FROM {store.database}.audit_log WHERE targetId = {{t:String}} ORDER BY id",
        {"t": target},
    )
    return [row[0] for row in rows]


def calls_from(caller: str, sid: str, start: datetime, talk: int) -> list[Event]:
    return script.answered_call(sid, start, "client-1", talk=talk, caller=caller)


def test_erasure_tokenizes_the_number_in_every_table_and_keeps_the_counts(
    store: Store,
) -> None:
    erased = ErasedCallers(DEV_TOKEN_SECRET)
    ingest(store, calls_from(CALLER, "CAerased1", BASE, 40), erased)
    ingest(store, calls_from(CALLER, "CAerased2", BASE + timedelta(hours=2), 25), erased)
    ingest(store, calls_from(OTHER, "CAother1", BASE + timedelta(hours=1), 60), erased)
    before = store.summary(CallFilter(client_id="client-1"))
    assert sum(find_text(store, CALLER).values()) > 0

    ingest(store, [caller_erased(CALLER, TOKEN, "admin")], erased)

    assert find_text(store, CALLER) == dict.fromkeys(find_text(store, CALLER), 0)
    assert "events" in find_text(store, CALLER) and "call_state" in find_text(store, CALLER)
    assert store.summary(CallFilter(client_id="client-1")) == before
    call = store.get_call("CAerased1")
    assert call is not None and call.fromNumber == TOKEN and call.durationSec == 40
    other = store.get_call("CAother1")
    assert other is not None and other.fromNumber == OTHER
    assert TOKEN in ErasedCallers.load(store, DEV_TOKEN_SECRET)
    assert audited(store, TOKEN) == ["caller.erased"]


def test_events_of_an_erased_caller_read_again_are_stored_with_the_token(store: Store) -> None:
    erased = ErasedCallers(DEV_TOKEN_SECRET)
    erasure = [caller_erased(CALLER, TOKEN, "admin"), caller_erased(None, TOKEN, "admin")]
    ingest(store, erasure, erased)
    # A consumer started afterwards knows the token from the table alone.
    restarted = ErasedCallers.load(store, DEV_TOKEN_SECRET)
    assert TOKEN in restarted

    replayed = calls_from(CALLER, "CAreplayed", BASE, 33)
    ingest(store, replayed, restarted)

    assert sum(find_text(store, CALLER).values()) == 0
    call = store.get_call("CAreplayed")
    assert call is not None and call.fromNumber == TOKEN and call.durationSec == 33
    assert call.callerCity == "NEW YORK"  # only the number is gone


def test_only_the_number_less_erasure_is_remembered_when_the_first_was_compacted_away(
    store: Store,
) -> None:
    erased = ErasedCallers(DEV_TOKEN_SECRET)
    ingest(store, [caller_erased(None, TOKEN, "admin")], erased)
    assert TOKEN in erased
    ingest(store, calls_from(CALLER, "CAlate", BASE, 12), erased)
    assert sum(find_text(store, CALLER).values()) == 0


def test_calls_filter_by_caller_and_refuse_a_malformed_number(
    store: Store, make_app: Callable[..., Flask]
) -> None:
    ingest(store, calls_from(CALLER, "CAmine", BASE, 10))
    ingest(store, calls_from(OTHER, "CAnotmine", BASE, 10))
    client = make_app().test_client()

    listed = client.get("/api/calls", query_string={"caller": CALLER}, headers=AUTH)
    assert listed.status_code == 200
    assert [c["callSid"] for c in listed.get_json()["calls"]] == ["CAmine"]
    bad = client.get("/api/calls", query_string={"caller": "2125550147"}, headers=AUTH)
    assert bad.status_code == 400
    assert bad.get_json()["error"]["code"] == "invalid_parameter"


def test_search_for_a_stored_text_is_for_the_admin_only(
    store: Store, make_app: Callable[..., Flask]
) -> None:
    ingest(store, calls_from(CALLER, "CAsearched", BASE, 10))
    client = make_app().test_client()

    found = client.get("/internal/privacy/search", query_string={"text": CALLER}, headers=AUTH)
    assert found.status_code == 200
    assert found.get_json()["tables"]["events"] > 0
    assert found.get_json()["tables"]["call_facts"] > 0
    refused = client.get(
        "/internal/privacy/search", query_string={"text": CALLER}, headers=bearer("a-client-key")
    )
    assert refused.status_code == 403
    short = client.get("/internal/privacy/search", query_string={"text": "+1"}, headers=AUTH)
    assert short.status_code == 400


def rows_of(store: Store, sid: str) -> dict[str, int]:
    """Rows per table that mention the call (its CallSid), the views' targets included."""
    return {table: n for table, n in find_text(store, sid).items() if n}


def test_a_clients_calls_older_than_its_retention_go_while_another_clients_stay(
    store: Store,
) -> None:
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=45), now - timedelta(days=2)
    ingest(
        store,
        [
            script.settings_changed("keeps-30-days", retentionDays=30),
            script.settings_changed("keeps-all"),
        ],
    )
    ingest(store, script.answered_call("CAold30", old, "keeps-30-days", talk=20))
    ingest(store, script.answered_call("CArecent30", recent, "keeps-30-days", talk=20))
    ingest(store, script.answered_call("CAoldall", old, "keeps-all", talk=20))
    assert rows_of(store, "CAold30").keys() >= {"events", "call_facts", "calls_by_client"}

    deleted = expire_client_calls(store, now)

    assert deleted == {"keeps-30-days": 1}
    assert rows_of(store, "CAold30") == {}
    assert store.get_call("CArecent30") is not None and rows_of(store, "CArecent30")
    assert store.get_call("CAoldall") is not None
    assert store.summary(CallFilter(client_id="keeps-30-days")).totalCalls == 1
    assert store.summary(CallFilter(client_id="keeps-all")).totalCalls == 1
    assert expire_client_calls(store, now) == {}  # nothing left to delete
    assert audited(store, "keeps-30-days") == ["calls.expired"]


def test_client_cutoffs_purge_a_deleted_client_only_once_its_purge_is_due() -> None:
    now = datetime(2026, 1, 31, tzinfo=UTC)
    settings = [
        ClientSettings("gone", deleted=True, purgeAfter=now - timedelta(seconds=1)),
        ClientSettings("grace", deleted=True, purgeAfter=now + timedelta(days=1), retentionDays=7),
        ClientSettings("kept"),
        ClientSettings("thirty", retentionDays=30),
    ]
    cutoffs = client_cutoffs(settings, now)
    assert cutoffs["gone"] > now + timedelta(days=365 * 100)  # past every call
    assert cutoffs["grace"] == now - timedelta(days=7)
    assert cutoffs["thirty"] == now - timedelta(days=30)
    assert "kept" not in cutoffs


def test_a_purged_clients_calls_go_and_its_late_events_do_not_bring_one_back(
    store: Store,
) -> None:
    now = datetime.now(UTC)
    erased = ErasedCallers(DEV_TOKEN_SECRET)
    ingest(store, script.answered_call("CApurged", BASE, "gone-client", talk=20), erased)
    ingest(store, script.answered_call("CAstays", BASE, "other-client", talk=20), erased)
    gone = Client("gone-client", RouterSettings(name="Gone"), BASE, BASE)
    purge_due = facts.client_settings_changed(
        gone, deleted=True, purge_after=now - timedelta(seconds=1)
    )
    ingest(store, [purge_due], erased)

    assert expire_client_calls(store, now, erased) == {"gone-client": 1}
    assert erased.purged_clients == {"gone-client"}
    assert store.get_call("CApurged") is None and rows_of(store, "CApurged") == {}
    assert store.get_call("CAstays") is not None
    assert audited(store, "gone-client") == ["client.purged"]

    late = deleted_event("RE" + "1" * 32, "CApurged", "gone-client", "purge", "system:purge", True)
    ingest(store, [late], erased)
    assert store.get_call("CApurged") is None
