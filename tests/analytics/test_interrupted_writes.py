"""A write that stops half way: the next write of the same events mends what it left.

A batch's write commits table by table (call_facts, the materialized views'
call_state, calls_by_client and, from that, client_hourly; beside them, on a
connection of its own, events), so a process killed inside it can leave any
of those tables with the batch and the rest without. These tests build each
such state for real on chDB: a twin database takes the whole write, and only
the chosen tables' share of it is copied into the store under test, its
views detached meanwhile. The store then gets the batch again, as a consumer
re-reading it would, and must end exactly like the twin: no call counted
twice, none stale.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.analytics.calls import CallFilter
from services.analytics.config import Config
from services.analytics.consumer import AnalyticsConsumer, write
from services.analytics.store import Repair, Store
from switchboard.events import Event
from tests.analytics import call_scripts as script
from tests.analytics.conftest import ConsumerFactory
from tests.analytics.test_consumer import Publish, all_committed
from tests.analytics.topic_state import committed_total, end_total
from tests.support import wait_until

BASE = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
FACT_TABLES = ("call_facts", "call_state", "calls_by_client", "client_hourly")
TABLES = (*FACT_TABLES, "events")
# The views that feed each table a write reaches, detached while its share is copied.
FEEDS = {
    "call_facts": ("call_state_mv", "calls_by_client_mv"),
    "calls_by_client": ("client_hourly_mv",),
}

ONGOING, NEW = "CAongoing", "CAnew"


def first_batch() -> list[Event]:
    """The ongoing call has rung: its first version, unrouted, is stored."""
    return [script.received(ONGOING, BASE)]


def second_batch() -> list[Event]:
    """The ongoing call is routed and answered (new client, new status); a new call, whole."""
    return [
        *script.answered_call(ONGOING, BASE)[1:],
        *script.missed_call(NEW, BASE + timedelta(minutes=30), client_id="client-2"),
    ]


@pytest.fixture
def stores(ch_url: str, ch_client: Any, ch_database: str) -> Iterator[tuple[Store, Store]]:
    """The store under test and its twin, both migrated, both holding the first batch."""
    twin_database = f"{ch_database}_twin"
    made = []
    for database in (ch_database, twin_database):
        store = Store.open(ch_url, database)
        store.migrate()
        write(store, first_batch())
        made.append(store)
    yield made[0], made[1]
    for store in made:
        store.close()
    ch_client.command(f"DROP DATABASE IF EXISTS {twin_database}")


def copy_share(store: Store, twin: Store, table: str) -> None:
    """What the second batch's write added to `table` in the twin, into the store alone."""
    db, other = store.database, twin.database
    for view in FEEDS.get(table, ()):
        store._command(f"DETACH TABLE {db}.{view}")
    try:
        if table == "call_state":
            store._command(f"INSERT INTO {db}.call_state SELECT * FROM {other}.call_state")
        elif table == "client_hourly":
            measures = [
                name
                for (name,) in store._query(
                    "SELECT name FROM system.columns WHERE database = {db:String} "
                    "AND table = 'client_hourly' AND name NOT IN ('clientId', 'hour')",
                    {"db": db},
                )
            ]
            twin_rows = ", ".join(measures)
            negated = ", ".join(f"-{name}" for name in measures)
            sums = ", ".join(f"sum({name})" for name in measures)
            store._command(
                f"INSERT INTO {db}.client_hourly (clientId, hour, {twin_rows}) "
                f"SELECT clientId, hour, {sums} FROM ("
                f"SELECT clientId, hour, {twin_rows} FROM {other}.client_hourly UNION ALL "
                f"SELECT clientId, hour, {negated} FROM {db}.client_hourly"
                ") GROUP BY clientId, hour"
            )
        elif table == "events":
            store._command(
                f"INSERT INTO {db}.events SELECT * FROM {other}.events "
                f"WHERE id NOT IN (SELECT id FROM {db}.events)"
            )
        else:  # the second write's rows: the new versions and the cancelled old ones
            store._command(
                f"INSERT INTO {db}.{table} SELECT * FROM {other}.{table} "
                f"WHERE sign = -1 OR (callSid = '{ONGOING}' AND version = 2) "
                f"OR callSid = '{NEW}'"
            )
    finally:
        for view in FEEDS.get(table, ()):
            store._command(f"ATTACH TABLE {db}.{view}")


def everything(store: Store) -> dict[str, Any]:
    """What each table shows of the calls: facts, current calls both ways, hourly sums."""
    db = store.database
    hourly = store._query(
        f"SELECT clientId, hour, sum(calls), sum(inbound), sum(completed), sum(missed), "
        f"sum(answered), sum(unrouted), sum(recorded), sum(durationSec) "
        f"FROM {db}.client_hourly GROUP BY clientId, hour ORDER BY clientId, hour"
    )
    return {
        "call_state": store.load_facts([ONGOING, NEW]),
        "calls": {sid: store.get_call(sid) for sid in (ONGOING, NEW)},
        "current": store.list_calls(CallFilter(), 100).calls,
        "client_calls": store._query(
            f"SELECT callSid, clientId, status, version FROM {db}.client_calls ORDER BY callSid"
        ),
        "summary": store.summary(CallFilter()),
        "client_hourly": [row for row in hourly if any(row[2:])],
        "events": store._query(f"SELECT id, count() FROM {db}.events GROUP BY id ORDER BY id"),
    }


SHARES = [shared for n in range(len(TABLES) + 1) for shared in itertools.combinations(TABLES, n)]


@pytest.mark.parametrize("committed", SHARES, ids=lambda t: "+".join(t) or "nothing")
def test_the_batch_written_again_mends_whatever_the_broken_write_left(
    stores: tuple[Store, Store], committed: tuple[str, ...]
) -> None:
    store, twin = stores
    result = write(twin, second_batch())
    assert result.facts_written == 2
    for table in committed:
        copy_share(store, twin, table)

    again = write(store, second_batch(), repair=True)

    assert everything(store) == everything(twin)
    if set(committed) & set(FACT_TABLES) not in (set(), set(FACT_TABLES)):
        mended = again.repair
        assert mended.calls or mended.hourly_cells, "the copies disagreed, yet nothing was mended"


def test_calls_in_line_are_left_alone(stores: tuple[Store, Store]) -> None:
    store, _ = stores
    write(store, second_batch())
    before = everything(store)
    assert store.repair(second_batch()) == Repair((), 0)
    assert everything(store) == before


def test_a_repair_stopped_half_way_is_finished_by_the_next(
    stores: tuple[Store, Store],
) -> None:
    store, twin = stores
    write(twin, second_batch())
    for table in ("call_facts", "calls_by_client"):  # call_state and the hourly sums behind
        copy_share(store, twin, table)
    # The repair's first step only: the calls' rows gone from calls_by_client.
    store._command(f"DELETE FROM {store.database}.calls_by_client WHERE callSid = '{ONGOING}'")

    write(store, second_batch(), repair=True)

    assert everything(store) == everything(twin)


# -- the consumer: which batches it repairs ------------------------------------


class Killed(Exception):
    """The process died: raised from inside a write and by everything after it."""


class DiesInsideAWrite(Store):
    """A store whose second fact write reaches call_facts and call_state only, then dies.

    calls_by_client (and so client_hourly) miss that write, as when a
    process is killed between the tables' commits. Once dead it fails every
    call; with `revive` it comes back after the one broken write instead, as
    ClickHouse after a failure in the middle of an insert.
    """

    revive = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fact_writes = 0
        self.dead = False

    def record_write_started(self, *args: Any, **kwargs: Any) -> None:
        if self.dead:
            raise Killed("the process is gone")
        super().record_write_started(*args, **kwargs)

    def insert_facts(self, *args: Any, **kwargs: Any) -> None:
        self.fact_writes += 1
        if self.fact_writes != 2:
            super().insert_facts(*args, **kwargs)
            return
        self._command(f"DETACH TABLE {self.database}.calls_by_client_mv")
        try:
            super().insert_facts(*args, **kwargs)
        finally:
            self._command(f"ATTACH TABLE {self.database}.calls_by_client_mv")
        self.dead = not self.revive
        raise Killed("killed between call_facts' commit and calls_by_client's")


def play_two_batches(publish: Publish, first: AnalyticsConsumer, config: Config) -> None:
    publish(first_batch())
    wait_until(lambda: all_committed(config, config.group_id))
    publish(second_batch())


def expect_the_calls_as_played(store: Store) -> None:
    summary = store.summary(CallFilter())
    assert (summary.totalCalls, summary.completed, summary.missed) == (2, 1, 1)
    assert [
        (c.callSid, c.clientId, c.status) for c in store.list_calls(CallFilter(), 10).calls
    ] == [
        (NEW, "client-2", "no-answer"),
        (ONGOING, "client-1", "completed"),
    ]


def test_a_consumer_killed_inside_a_write_leaves_it_for_the_next_to_mend(
    config: Config, store: Store, publish: Publish, start_consumer: ConsumerFactory
) -> None:
    dying = DiesInsideAWrite.open(config.clickhouse_url, config.clickhouse_database)
    try:
        first = start_consumer(dying)
        play_two_batches(publish, first, config)
        wait_until(lambda: dying.dead and first.stats.write_failures >= 2)
        first.stop(drain=False)
    finally:
        dying.close()
    assert committed_total(config.kafka_bootstrap, config.group_id, config.topics.call_events) < (
        end_total(config.kafka_bootstrap, config.topics.call_events)
    )

    second = start_consumer(store)
    wait_until(lambda: all_committed(config, config.group_id))
    expect_the_calls_as_played(store)
    assert second.stats.calls_mended >= 1


def test_a_write_that_failed_half_way_is_mended_when_retried(
    config: Config, publish: Publish, start_consumer: ConsumerFactory
) -> None:
    failing = DiesInsideAWrite.open(config.clickhouse_url, config.clickhouse_database)
    failing.revive = True
    try:
        failing.migrate()
        consumer = start_consumer(failing)
        play_two_batches(publish, consumer, config)
        wait_until(lambda: all_committed(config, config.group_id))
        expect_the_calls_as_played(failing)
        assert consumer.stats.write_failures == 1
        assert consumer.stats.calls_mended >= 1
    finally:
        failing.close()


def test_a_consumer_after_a_clean_stop_repairs_nothing(
    config: Config, store: Store, publish: Publish, start_consumer: ConsumerFactory
) -> None:
    first = start_consumer(store)
    play_two_batches(publish, first, config)
    wait_until(lambda: all_committed(config, config.group_id))
    first.stop()
    publish([script.received("CAlater", BASE + timedelta(hours=1))])

    second = start_consumer(store)
    wait_until(lambda: all_committed(config, config.group_id))
    assert (second.stats.calls_mended, second.stats.hourly_cells_corrected) == (0, 0)
    topic = config.topics.call_events
    started = store.writes_started(config.group_id, [(topic, p) for p in range(3)])
    assert sum(started.values()) == end_total(config.kafka_bootstrap, topic)


class StoresEventsThenFailsTheFacts(Store):
    """A store whose second batch's events are stored and whose fact write then fails, once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fact_writes = 0

    def begin_insert_events(self, *args: Any, **kwargs: Any) -> Future[None]:
        done: Future[None] = Future()
        self.insert_events(*args, **kwargs)  # before the facts, for certain
        done.set_result(None)
        return done

    def insert_facts(self, *args: Any, **kwargs: Any) -> None:
        self.fact_writes += 1
        if self.fact_writes == 2:
            raise Killed("the facts' insert failed after the events' went in")
        super().insert_facts(*args, **kwargs)


def test_a_write_whose_events_went_in_without_its_facts_is_folded_again_when_retried(
    config: Config, publish: Publish, start_consumer: ConsumerFactory
) -> None:
    failing = StoresEventsThenFailsTheFacts.open(config.clickhouse_url, config.clickhouse_database)
    try:
        failing.migrate()
        consumer = start_consumer(failing)
        play_two_batches(publish, consumer, config)
        wait_until(lambda: all_committed(config, config.group_id))
        expect_the_calls_as_played(failing)
        assert consumer.stats.write_failures == 1
        assert failing.count_events() == len(first_batch()) + len(second_batch())
    finally:
        failing.close()
