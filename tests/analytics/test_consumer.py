"""The consumer against the real Kafka broker and the real chDB engine."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from services.analytics.calls import CallFilter
from services.analytics.config import Config
from services.analytics.consumer import TooManyInvalidMessages
from services.analytics.store import Store
from switchboard.events import Event, InvalidEvent, decode
from switchboard.kafka import EventProducer, Topics
from tests.analytics import call_scripts as script
from tests.analytics.conftest import ConsumerFactory
from tests.analytics.topic_state import committed_total, end_total, read_json
from tests.support import wait_until

BASE = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
Publish = Callable[[list[Event]], None]


def four_calls() -> list[Event]:
    return [
        *script.answered_call("CAanswered", BASE),
        *script.missed_call("CAmissed", BASE + timedelta(minutes=1)),
        *script.unrouted_call("CAunrouted", BASE + timedelta(minutes=2)),
        *script.fallback_call("CAfallback", BASE + timedelta(minutes=3)),
    ]


def all_committed(config: Config, group_id: str) -> bool:
    topic = config.topics.call_events
    return committed_total(config.kafka_bootstrap, group_id, topic) == end_total(
        config.kafka_bootstrap, topic
    )


def statuses(store: Store) -> dict[str, str]:
    facts = store.load_facts(["CAanswered", "CAmissed", "CAunrouted", "CAfallback"])
    return {sid: stored.fact.status for sid, stored in facts.items()}


EXPECTED = {
    "CAanswered": "completed",
    "CAmissed": "no-answer",
    "CAunrouted": "unrouted",
    "CAfallback": "failed",
}


def test_events_become_call_facts(
    config: Config, store: Store, publish: Publish, start_consumer: ConsumerFactory
) -> None:
    events = four_calls()
    publish(events)
    start_consumer(store)
    wait_until(lambda: all_committed(config, config.group_id))
    assert statuses(store) == EXPECTED
    assert store.count_events() == len(events)
    answered = store.get_call("CAanswered")
    assert answered is not None
    assert (answered.durationSec, answered.answered, answered.recorded) == (42, True, True)


def test_replaying_the_same_events_changes_no_counts(
    config: Config, store: Store, publish: Publish, start_consumer: ConsumerFactory
) -> None:
    events = four_calls()
    publish(events)
    consumer = start_consumer(store)
    wait_until(lambda: all_committed(config, config.group_id))
    counts = (store.count_events(), store.count_calls(), store.count_fact_versions())
    summary = store.summary(CallFilter())

    publish(events)  # Twilio retries: the same deliveries, the same ids
    wait_until(lambda: all_committed(config, config.group_id))
    assert consumer.stats.duplicates_skipped == len(events)
    assert (store.count_events(), store.count_calls(), store.count_fact_versions()) == counts

    # A new group reads the whole topic again, both copies.
    replay = start_consumer(store, group_id="analytics-replay")
    wait_until(lambda: all_committed(config, "analytics-replay"))
    assert replay.stats.events_written == 0
    assert (store.count_events(), store.count_calls(), store.count_fact_versions()) == counts
    assert store.summary(CallFilter()) == summary
    assert statuses(store) == EXPECTED


def test_invalid_message_is_dead_lettered_and_the_consumer_keeps_going(
    config: Config,
    store: Store,
    topics: Topics,
    producer: EventProducer,
    publish: Publish,
    start_consumer: ConsumerFactory,
) -> None:
    producer.publish_raw(topics.call_events, b"{not json", key="CAbad", timeout=10)
    wrong = script.received("CAbad", BASE).to_dict()
    del wrong["data"]["params"]["From"]
    producer.publish_raw(topics.call_events, json.dumps(wrong).encode(), "CAbad", timeout=10)
    publish(script.missed_call("CAgood", BASE))
    consumer = start_consumer(store)

    wait_until(lambda: all_committed(config, config.group_id))
    assert consumer.alive
    assert consumer.stats.invalid == 2
    assert store.get_call("CAgood") is not None
    assert store.get_call("CAbad") is None
    dead = read_json(config.kafka_bootstrap, topics.dead_letters, expect=2)
    assert len(dead) == 2
    reasons = sorted(letter["reason"] for letter in dead)
    assert reasons[0].startswith("call.received v1 invalid")
    assert "From" in reasons[0]
    assert reasons[1].startswith("not JSON")
    assert {letter["consumer"] for letter in dead} == {"analytics"}
    assert {letter["topic"] for letter in dead} == {topics.call_events}


def test_an_event_whose_time_cannot_be_read_is_dead_lettered_not_retried_for_ever(
    config: Config,
    store: Store,
    topics: Topics,
    producer: EventProducer,
    publish: Publish,
    start_consumer: ConsumerFactory,
) -> None:
    # Both pass the schema (RFC 3339 allows a lower-case "t" and a leap
    # second) but hold no time Python can read: written, they would fail the
    # batch's write on every retry and hold up every event behind them.
    lower_case = script.received("CAbadtime", BASE).to_dict()
    lower_case["occurredAt"] = "2024-05-01t12:00:00z"
    leap = script.number_assigned("+14155550100", "client-a", "radio", BASE).to_dict()
    leap["data"]["assignedAt"] = "2024-06-30T23:59:60Z"
    producer.publish_raw(
        topics.call_events, json.dumps(lower_case).encode(), "CAbadtime", timeout=10
    )
    producer.publish_raw(
        topics.number_events, json.dumps(leap).encode(), "+14155550100", timeout=10
    )
    publish(script.missed_call("CAgood", BASE))
    consumer = start_consumer(store)

    wait_until(lambda: all_committed(config, config.group_id))
    assert consumer.alive
    assert consumer.stats.write_failures == 0
    assert consumer.stats.invalid == 2
    assert store.get_call("CAgood") is not None
    assert store.get_call("CAbadtime") is None
    dead = read_json(config.kafka_bootstrap, topics.dead_letters, expect=2)
    reasons = sorted(letter["reason"] for letter in dead)
    assert "occurredAt" in reasons[0] and "2024-05-01t12:00:00z" in reasons[0]
    assert "assignedAt" in reasons[1] or "time" in reasons[1]


def test_the_consumer_decodes_with_the_decoder_it_is_given(
    config: Config,
    store: Store,
    topics: Topics,
    publish: Publish,
    start_consumer: ConsumerFactory,
) -> None:
    def refuse_one_call(raw: bytes | None) -> Event:
        event = decode(raw)
        if event.callSid == "CArefused":
            raise InvalidEvent("refused by the test's decoder")
        return event

    refused = script.missed_call("CArefused", BASE)
    publish([*script.answered_call("CAkept", BASE), *refused])
    consumer = start_consumer(store, decoder=refuse_one_call)

    wait_until(lambda: all_committed(config, config.group_id))
    assert consumer.stats.invalid == len(refused)
    assert store.get_call("CAkept") is not None
    assert store.get_call("CArefused") is None
    dead = read_json(config.kafka_bootstrap, topics.dead_letters, expect=len(refused))
    assert {letter["reason"] for letter in dead} == {"refused by the test's decoder"}


def test_consumer_stops_loudly_past_the_invalid_ratio(
    config: Config,
    store: Store,
    topics: Topics,
    producer: EventProducer,
    start_consumer: ConsumerFactory,
) -> None:
    for n in range(6):
        producer.publish_raw(topics.call_events, b"garbage", key=f"CA{n}", timeout=10)
    consumer = start_consumer(store, invalid_window=4, max_invalid_ratio=0.5)
    wait_until(lambda: consumer.error is not None)
    assert isinstance(consumer.error, TooManyInvalidMessages)
    wait_until(lambda: not consumer.alive)
    # It stopped instead of draining the topic: not everything was committed.
    assert not all_committed(config, config.group_id)


def test_offsets_are_committed_only_after_the_write(
    config: Config, publish: Publish, start_consumer: ConsumerFactory
) -> None:
    # The database is not migrated yet, so every write fails.
    store = Store.open(config.clickhouse_url, config.clickhouse_database)
    try:
        events = script.answered_call("CAlate", BASE)
        publish(events)
        consumer = start_consumer(store)
        wait_until(lambda: consumer.stats.write_failures >= 2)
        topic = config.topics.call_events
        assert committed_total(config.kafka_bootstrap, config.group_id, topic) == 0
        assert consumer.alive

        store.migrate()  # the write now succeeds on the next retry
        wait_until(lambda: all_committed(config, config.group_id))
        fact = store.load_facts(["CAlate"])["CAlate"].fact
        assert (fact.status, fact.durationSec) == ("completed", 42)
    finally:
        store.close()


def test_a_batch_lost_in_a_crash_is_read_again(
    config: Config, store: Store, publish: Publish, start_consumer: ConsumerFactory
) -> None:
    events = script.missed_call("CAcrash", BASE)
    publish(events)
    # A batch that cannot close on its own before we pull the plug.
    first = start_consumer(store, batch_size=1000, batch_seconds=3600)
    wait_until(lambda: first.stats.messages == len(events))
    first.stop(drain=False)
    assert store.get_call("CAcrash") is None
    topic = config.topics.call_events
    assert committed_total(config.kafka_bootstrap, config.group_id, topic) == 0

    start_consumer(store)
    wait_until(lambda: all_committed(config, config.group_id))
    call = store.get_call("CAcrash")
    assert call is not None and call.status == "no-answer"


def test_batch_closes_on_size_before_its_age(
    config: Config, store: Store, publish: Publish, start_consumer: ConsumerFactory
) -> None:
    events = script.missed_call("CAsize", BASE)
    publish(events)  # 5 events on one partition (one key)
    consumer = start_consumer(store, batch_size=2, batch_seconds=3600)
    wait_until(lambda: consumer.stats.batches >= 2)
    topic = config.topics.call_events
    assert committed_total(config.kafka_bootstrap, config.group_id, topic) == 4
    assert store.count_events() == 4


def test_number_and_client_events_are_consumed_and_attribute_calls(
    config: Config,
    store: Store,
    topics: Topics,
    producer: EventProducer,
    publish: Publish,
    start_consumer: ConsumerFactory,
) -> None:
    """A fallback call (no routing decision) gets its client and campaign from the number.

    The call is published first, so a consumer may well fold it before it
    reads the number event: either way it ends up attributed.
    """
    publish(script.fallback_call("CAfallback", BASE))
    publish(script.outbound_call("CAout", BASE + timedelta(minutes=5), client_id="acme"))
    assigned = script.number_assigned(
        script.TWILIO_NUMBER, "acme", "google", BASE - timedelta(days=30)
    )
    producer.publish(topics.number_events, assigned, key=script.TWILIO_NUMBER, timeout=10)
    settings = script.settings_changed("acme", "Europe/Berlin", valuePerConversion=80)
    producer.publish(topics.client_events, settings, key="acme", timeout=10)
    start_consumer(store)

    def attributed() -> bool:
        facts = store.load_facts(["CAfallback", "CAout"])
        return len(facts) == 2 and all(
            (f.fact.clientId, f.fact.campaign) == ("acme", "google") for f in facts.values()
        )

    wait_until(attributed)
    fallback = store.get_call("CAfallback")
    assert fallback is not None and fallback.status == "failed"
    outbound = store.get_call("CAout")
    assert outbound is not None
    assert (outbound.direction, outbound.status, outbound.durationSec) == (
        "outbound",
        "completed",
        60,
    )
    wait_until(lambda: "acme" in store.client_settings())
    acme = store.client_settings("acme")["acme"]
    assert (acme.timezone, acme.valuePerConversion) == ("Europe/Berlin", 80.0)
    assert store.summary(CallFilter(client_id="acme")).totalCalls == 2


def test_a_call_spread_over_many_small_batches_folds_into_one_fact(
    config: Config, store: Store, publish: Publish, start_consumer: ConsumerFactory
) -> None:
    """Each batch is written (and committed) before the next, so each folds onto the last."""
    events = [
        *script.answered_call("CAspread", BASE),
        *script.missed_call("CAspread2", BASE + timedelta(minutes=1)),
    ]
    publish(events)
    consumer = start_consumer(store, batch_size=1, batch_seconds=3600)
    wait_until(lambda: all_committed(config, config.group_id))
    assert consumer.stats.batches == len(events)
    assert store.count_events() == len(events)
    assert store.count_calls() == 2
    assert statuses_of(store, ["CAspread", "CAspread2"]) == {
        "CAspread": "completed",
        "CAspread2": "no-answer",
    }


def statuses_of(store: Store, sids: list[str]) -> dict[str, str]:
    return {sid: stored.fact.status for sid, stored in store.load_facts(sids).items()}
