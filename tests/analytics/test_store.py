"""The ClickHouse side on the real engine: migrations, dedupe, the write step."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest

from services.analytics.calls import CallFilter
from services.analytics.config import Config
from services.analytics.consumer import EXPIRE_EVERY_SECONDS, AnalyticsConsumer, write
from services.analytics.facts import fold_all
from services.analytics.store import (
    Store,
    StoredFact,
    migration_files,
    migration_statements,
)
from services.analytics.store import sql as store_sql
from services.analytics.store.writes import _FACT_COLUMNS
from tests.analytics import call_scripts as script

BASE = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def test_migrations_twice_are_harmless(config: Config, ch_client: Any) -> None:
    store = Store.open(config.clickhouse_url, config.clickhouse_database)
    try:
        first = store.migrate()
        second = store.migrate()
        assert first == [path.name for path in migration_files()]
        assert second == []
        assert store.applied_migrations() == first
        tables = {
            row[0]
            for row in ch_client.query(
                "SELECT name FROM system.tables WHERE database = {db:String}",
                parameters={"db": config.clickhouse_database},
            ).result_rows
        }
        assert {
            "events",
            "events_arrived",
            "events_arrived_mv",
            "call_facts",
            "calls",
            "schema_migrations",
            "calls_by_client",
            "client_calls",
            "client_hourly",
            "calls_by_client_mv",
            "client_hourly_mv",
            "number_assignments",
            "client_settings",
            "conversions",
            "call_state",
            "call_state_mv",
        } <= tables
    finally:
        store.close()


def test_migrations_survive_a_crash_before_they_were_recorded(store: Store, ch_client: Any) -> None:
    # As if the process died after running the DDL but before recording it.
    ch_client.command(f"TRUNCATE TABLE {store.database}.schema_migrations")
    assert store.migrate() == [path.name for path in migration_files()]
    assert store.migrate() == []


def test_two_versions_of_a_call_count_once(store: Store) -> None:
    fact = fold_all(None, script.missed_call("CA1", BASE))
    assert fact is not None
    store.insert_facts([StoredFact(fact, 1)])
    store.insert_facts([StoredFact(replace(fact, status="busy"), 2)])
    assert store.count_fact_versions() == 2
    assert store.count_calls() == 1
    call = store.get_call("CA1")
    assert call is not None and call.status == "busy"
    assert store.summary(CallFilter()).totalCalls == 1
    assert store.list_calls(CallFilter(status="no-answer"), 10).calls == []


def test_load_facts_finds_the_newest_version_of_each_call(store: Store) -> None:
    fact = fold_all(None, script.missed_call("CA10", BASE))
    assert fact is not None
    store.insert_facts([StoredFact(fact, 1)])
    store.insert_facts([StoredFact(replace(fact, status="busy"), 2)])
    found = store.load_facts(["CA10", "CA-never-seen"])
    assert list(found) == ["CA10"]
    assert found["CA10"] == StoredFact(replace(fact, status="busy"), 2)


def test_facts_stored_before_call_state_existed_are_found(store: Store, ch_client: Any) -> None:
    fact = fold_all(None, script.answered_call("CA11", BASE))
    assert fact is not None
    store.insert_facts([StoredFact(fact, 3)])
    # As a store migrated before 0013: facts in call_facts, none in call_state.
    ch_client.command(f"TRUNCATE TABLE {store.database}.call_state")
    assert store.load_facts(["CA11"]) == {}
    ch_client.command(f"TRUNCATE TABLE {store.database}.schema_migrations")
    store.migrate()
    assert store.load_facts(["CA11"]) == {"CA11": StoredFact(fact, 3)}


def test_write_skips_events_already_stored(store: Store) -> None:
    events = script.answered_call("CA2", BASE)
    first = write(store, events)
    assert (first.events_written, first.facts_written) == (len(events), 1)
    again = write(store, events)
    assert (again.events_written, again.duplicates_skipped, again.facts_written) == (
        0,
        len(events),
        0,
    )
    assert store.count_events() == len(events)
    assert store.count_fact_versions() == 1


def test_write_folds_late_events_into_the_stored_fact(store: Store) -> None:
    events = script.answered_call("CA3", BASE)
    write(store, events[:2])
    before = store.load_facts(["CA3"])["CA3"]
    assert before.fact.status == "in-progress" and before.version == 1
    write(store, events[2:])
    after = store.load_facts(["CA3"])["CA3"]
    assert after.version == 2
    assert after.fact == fold_all(None, events)
    assert (after.fact.status, after.fact.durationSec, after.fact.recorded) == (
        "completed",
        42,
        True,
    )


def test_fact_round_trips_through_clickhouse(store: Store) -> None:
    fact = fold_all(None, script.answered_call("CA4", BASE + timedelta(milliseconds=7)))
    assert fact is not None
    store.insert_facts([StoredFact(fact, 1)])
    assert store.load_facts(["CA4"])["CA4"].fact == fact


def test_unmigrated_database_is_reported_not_created_silently(config: Config) -> None:
    store = Store.open(config.clickhouse_url, config.clickhouse_database + "_missing")
    try:
        try:
            store.count_calls()
        except Exception as err:  # the engine's own error
            assert "_missing" in str(err)
        else:
            raise AssertionError("query on an unmigrated database succeeded")
    finally:
        store.close()


def test_a_fact_whose_client_arrives_late_moves_to_that_client(store: Store) -> None:
    events = script.answered_call("CA5", BASE, client_id="acme")
    write(store, events[:1])  # call.received only: no client yet
    assert store.summary(CallFilter(client_id="")).totalCalls == 1
    write(store, events[1:])
    assert store.summary(CallFilter(client_id="")).totalCalls == 0
    assert store.summary(CallFilter(client_id="acme")).totalCalls == 1
    assert [c.callSid for c in store.list_calls(CallFilter(client_id="acme"), 10).calls] == ["CA5"]


def test_retention_ttl_can_be_set_and_removed(store: Store, ch_client: Any) -> None:
    def engines() -> dict[str, str]:
        rows = ch_client.query(
            "SELECT name, engine_full FROM system.tables WHERE database = {db:String}",
            parameters={"db": store.database},
        ).result_rows
        return {name: engine for name, engine in rows}

    store.apply_retention(400)
    assert "toIntervalDay(400)" in engines()["calls_by_client"]
    assert " TTL " in engines()["events"]
    store.apply_retention(0)
    assert " TTL " not in engines()["calls_by_client"]


def test_retention_deletes_expired_calls_from_call_state(store: Store) -> None:
    now = datetime.now(UTC)
    for sid, started in (("CAold", now - timedelta(days=401)), ("CAnew", now - timedelta(days=2))):
        fact = fold_all(None, script.missed_call(sid, started))
        assert fact is not None
        store.insert_facts([StoredFact(fact, 1)])

    store.apply_retention(400)

    assert list(store.load_facts(["CAold", "CAnew"])) == ["CAnew"]
    store.apply_retention(0)  # keep all: nothing more is deleted
    assert list(store.load_facts(["CAold", "CAnew"])) == ["CAnew"]


def test_the_consumer_expires_call_state_once_an_hour(config: Config, store: Store) -> None:
    expired: list[int] = []
    consumer = AnalyticsConsumer(replace(config, retention_days=30), store)
    consumer.store = cast(Any, SimpleNamespace(expire_call_state=expired.append))
    start = time.monotonic()

    consumer.expire_call_state(start)  # apply_retention did it at start-up
    consumer.expire_call_state(start + EXPIRE_EVERY_SECONDS + 1)
    consumer.expire_call_state(start + EXPIRE_EVERY_SECONDS + 2)
    assert expired == [30]
    consumer.expire_call_state(start + 2 * EXPIRE_EVERY_SECONDS + 2)
    assert expired == [30, 30]


def test_legacy_facts_are_copied_into_the_client_projection_once(
    config: Config, ch_client: Any
) -> None:
    """Facts stored before 0004-0007 existed are copied over by 0007, and only once."""
    old = Store.open(config.clickhouse_url, config.clickhouse_database)
    try:
        db = config.clickhouse_database
        ch_client.command(f"CREATE DATABASE IF NOT EXISTS {db}")
        # Only the first three migrations, as before this schema change.
        for path in migration_files()[:3]:
            for statement in migration_statements(path, db):
                ch_client.command(statement)
        fact = fold_all(None, script.missed_call("CAold", BASE, client_id="acme"))
        assert fact is not None
        # The columns call_facts had then (0010 added the recording ones).
        columns = _FACT_COLUMNS[: _FACT_COLUMNS.index("storedRecordings")]
        ch_client.insert(
            f"{db}.call_facts",
            [[*Store._fact_row(fact)[: len(columns)], 1, datetime.now(UTC)]],
            column_names=[*columns, "version", "updatedAt"],
        )
        old.migrate()
        old.migrate()
        assert old.summary(CallFilter(client_id="acme")).totalCalls == 1
        assert old.summary(CallFilter(client_id="acme")).missed == 1
    finally:
        old.close()


def test_call_sids_with_quotes_and_backslashes_are_looked_up_as_they_are(store: Store) -> None:
    """The consumer's look-ups put a batch's CallSids into the SQL as literals."""
    sids = ["CA'quote", "CA\\backslash", "CA\\'both", "CA{x:String}", "CA`tick`\n"]
    events = [e for sid in sids for e in script.missed_call(sid, BASE)]
    assert write(store, events).events_written == len(events)
    assert store.stored_event_ids(events) == {e.id for e in events}
    assert sorted(store.load_facts(sids)) == sorted(sids)
    assert store.load_facts(["CA'", "CA\\"]) == {}
    again = write(store, events)
    assert (again.events_written, again.duplicates_skipped) == (0, len(events))


def test_events_without_a_call_sid_are_deduplicated_by_id(store: Store) -> None:
    assigned = script.number_assigned(script.TWILIO_NUMBER, "acme", "google", BASE)
    assert assigned.callSid is None
    assert write(store, [assigned]).events_written == 1
    assert store.stored_event_ids([assigned]) == {assigned.id}
    assert write(store, [assigned]).duplicates_skipped == 1
    assert store.count_events() == 1


def test_fact_times_are_stored_to_the_millisecond_as_clickhouse_truncates(store: Store) -> None:
    fact = fold_all(None, script.missed_call("CA5", BASE))
    assert fact is not None
    precise = replace(fact, startedAt=BASE + timedelta(microseconds=123_999))
    store.insert_facts([StoredFact(precise, 1)])
    stored = store.load_facts(["CA5"])["CA5"].fact
    assert stored.startedAt == BASE + timedelta(milliseconds=123)
    assert stored.storedRecordings == fact.storedRecordings


def test_events_are_stored_as_they_arrived_with_their_envelope_columns(store: Store) -> None:
    event = replace(
        script.missed_call('CAé"1', BASE)[0],
        occurredAt="2024-05-01T14:00:00.1239+02:00",
        clientId="acme",
        requestId="req-1",
    )
    arrived = json.dumps(event.to_dict(), indent=2).encode()  # whitespace, \\u escapes
    write(store, [event], {event.id: arrived})
    rows = store._query(
        "SELECT id, type, version, callSid, clientId, toUnixTimestamp64Milli(occurredAt), "
        f"source, requestId, payload FROM {store.database}.events"
    )
    assert rows == [
        (
            event.id,
            event.type,
            1,
            'CAé"1',
            "acme",
            int(datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC).timestamp() * 1000),
            event.source,
            "req-1",
            arrived.decode(),
        )
    ]
    bare = script.missed_call("CA6", BASE)[1]
    write(store, [bare])  # no payload given: stored re-encoded
    stored = store._query(
        f"SELECT callSid, requestId, payload FROM {store.database}.events WHERE id = '{bare.id}'"
    )
    assert stored == [("CA6", "", bare.to_json().decode())]


def test_a_batch_of_more_calls_than_one_query_can_name_is_written_whole(store: Store) -> None:
    """8,000 CallSids are ~300 KB of keys, past ClickHouse's max_query_size (256 KiB)."""
    events = [script.received(f"CA{n:032x}", BASE) for n in range(8000)]
    assert write(store, events).events_written == len(events)
    assert store.stored_event_ids(events) == {e.id for e in events}
    assert len(store.load_facts(e.callSid or "" for e in events)) == len(events)
    again = write(store, events)
    assert (again.events_written, again.duplicates_skipped) == (0, len(events))


def test_look_ups_cut_into_parts_find_what_one_query_finds(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    sids = [f"CA{n:04d}" for n in range(40)] + ["CA'quote", "CA\\backslash"]
    events = [e for sid in sids for e in script.missed_call(sid, BASE)]
    assigned = script.number_assigned(script.TWILIO_NUMBER, "acme", "google", BASE)
    assert write(store, [*events, assigned]).events_written == len(events) + 1
    monkeypatch.setattr(store_sql, "_MAX_KEYS_TEXT", 100)  # a few keys a query
    assert len(store_sql._string_lists(sids)) > 5
    assert store.stored_event_ids([*events, assigned]) == {e.id for e in [*events, assigned]}
    assert sorted(store.load_facts(sids)) == sorted(sids)
    assert store.repair(events).calls == ()
    again = write(store, [*events, assigned], repair=True)
    assert (again.events_written, again.duplicates_skipped) == (0, len(events) + 1)


def test_a_key_list_is_cut_only_when_it_is_too_long(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = [f"CA{n:032x}" for n in range(100)]
    assert store_sql._string_lists(keys) == [store_sql._string_list(keys)]
    monkeypatch.setattr(store_sql, "_MAX_KEYS_TEXT", 500)
    parts = store_sql._string_lists(keys)
    assert len(parts) > 1 and all(len(part) <= 500 for part in parts)
    rejoined = [key for part in parts for key in json.loads(part.split("'")[1])]
    assert rejoined == keys
