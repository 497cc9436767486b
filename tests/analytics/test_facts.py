"""The fold from events to a call fact: pure, so no broker and no database."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from services.analytics.facts import CallFact, fold, fold_all
from switchboard.events import Event, validate
from tests.analytics import call_scripts as script

BASE = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
SID = "CA11111111111111111111111111111111"


def folded(events: list[Event]) -> CallFact:
    fact = fold_all(None, events)
    assert fact is not None
    return fact


def test_scripts_produce_schema_valid_events() -> None:
    for events in (
        script.answered_call(SID, BASE),
        script.missed_call(SID, BASE),
        script.unrouted_call(SID, BASE),
        script.fallback_call(SID, BASE),
    ):
        for event in events:
            validate(event.to_dict())


def test_answered_forwarded_call_takes_dial_duration_not_parent_duration() -> None:
    fact = folded(script.answered_call(SID, BASE, talk=42))
    assert fact.status == "completed"
    assert fact.answered is True
    assert fact.durationSec == 42
    assert fact.parentDurationSec > 42  # the parent's includes ringing; it is not used
    assert fact.routed is True
    assert fact.clientId == "client-1"
    assert fact.forwardedTo == script.CLIENT_PHONE
    assert fact.direction == "inbound"
    assert (fact.fromNumber, fact.toNumber) == ("+12125550123", script.TWILIO_NUMBER)
    assert (fact.callerCity, fact.callerState, fact.callerCountry) == ("NEW YORK", "NY", "US")
    assert fact.campaign == "spring"
    assert fact.startedAt == BASE
    assert fact.endedAt is not None and fact.endedAt > BASE


def test_dial_no_answer_with_parent_completed_is_a_missed_no_answer() -> None:
    fact = folded(script.missed_call(SID, BASE))
    assert fact.status == "no-answer"
    assert fact.answered is False
    assert fact.durationSec == 0


def test_parent_duration_never_becomes_duration_of_a_forwarded_call() -> None:
    events = [
        script.received(SID, BASE),
        script.routed(SID, BASE),
        script.parent_status(SID, BASE, "completed", 50, 50),
    ]
    fact = folded(events)
    assert fact.answered is False
    assert fact.durationSec == 0
    assert fact.status == "canceled"  # caller left before any dial outcome


def test_dial_result_before_or_after_parent_completed_gives_same_fact() -> None:
    dial = script.dial_completed(SID, BASE, "completed", 42, 50, bridged="true")
    parent = script.parent_status(SID, BASE, "completed", 51, 51)
    head = [script.received(SID, BASE), script.routed(SID, BASE)]
    assert folded([*head, dial, parent]) == folded([*head, parent, dial])
    assert folded([*head, parent, dial]).durationSec == 42


def test_every_order_of_a_call_gives_the_same_fact() -> None:
    for events in (script.answered_call(SID, BASE), script.missed_call(SID, BASE)):
        expected = folded(events)
        for order in itertools.permutations(events[1:]):
            assert folded([events[0], *order]) == expected


def test_applying_an_event_twice_changes_nothing() -> None:
    events = script.answered_call(SID, BASE)
    fact = folded(events)
    for event in events:
        assert fold(fact, event) == fact
    assert folded([e for event in events for e in (event, event)]) == fact


def test_refolding_a_tail_of_already_folded_events_changes_nothing() -> None:
    events = script.answered_call(SID, BASE)
    fact = folded(events)
    assert fold_all(fact, events[3:]) == fact


def test_unassigned_number_gives_unrouted_call() -> None:
    fact = folded(script.unrouted_call(SID, BASE))
    assert fact.status == "unrouted"
    assert fact.answered is False
    assert fact.durationSec == 0
    assert fact.routed is False
    assert fact.clientId == ""


def test_fallback_served_is_a_failed_unanswered_call() -> None:
    fact = folded(script.fallback_call(SID, BASE))
    assert fact.status == "failed"
    assert fact.answered is False
    assert fact.durationSec == 0
    assert fact.routed is False


def test_dial_result_wins_over_fallback() -> None:
    events = [
        *script.fallback_call(SID, BASE),
        script.dial_completed(SID, BASE, "completed", 20, 30, bridged="true"),
    ]
    fact = folded(events)
    assert (fact.status, fact.answered, fact.durationSec) == ("completed", True, 20)


def test_completed_recording_sets_recorded() -> None:
    without = folded(script.missed_call(SID, BASE))
    assert without.recorded is False
    assert without.recordingEnabled is True
    with_recording = fold(without, script.recording(SID, BASE))
    assert with_recording is not None and with_recording.recorded is True


def test_failed_recording_does_not_set_recorded() -> None:
    fact = fold(folded(script.missed_call(SID, BASE)), script.recording(SID, BASE, "failed"))
    assert fact is not None and fact.recorded is False


def test_dial_completed_without_bridge_is_no_answer() -> None:
    events = [
        script.received(SID, BASE),
        script.routed(SID, BASE),
        script.child_status(SID, BASE, "completed", 12, 20, 3),
        script.dial_completed(SID, BASE, "completed", 12, 20.5, bridged="false"),
        script.parent_status(SID, BASE, "completed", 22, 22),
    ]
    fact = folded(events)
    assert (fact.status, fact.answered, fact.durationSec) == ("no-answer", False, 0)


def test_dial_answered_status_counts_as_completed() -> None:
    events = [
        script.received(SID, BASE),
        script.routed(SID, BASE),
        script.dial_completed(SID, BASE, "answered", 17, 30),
    ]
    fact = folded(events)
    assert (fact.status, fact.answered, fact.durationSec) == ("completed", True, 17)


def test_child_leg_outcome_counts_until_the_dial_result_arrives() -> None:
    head = [script.received(SID, BASE), script.routed(SID, BASE)]
    child = script.child_status(SID, BASE, "completed", 30, 40, 3)
    fact = folded([*head, child])
    assert (fact.status, fact.answered, fact.durationSec) == ("completed", True, 30)
    dial = script.dial_completed(SID, BASE, "completed", 29, 40.2, bridged="true")
    after = fold(fact, dial)
    assert after is not None and after.durationSec == 29


def test_dial_busy_wins_over_child_completed() -> None:
    events = [
        script.received(SID, BASE),
        script.routed(SID, BASE),
        script.child_status(SID, BASE, "completed", 5, 10, 3),
        script.dial_completed(SID, BASE, "busy", None, 10.1),
    ]
    fact = folded(events)
    assert (fact.status, fact.answered, fact.durationSec) == ("busy", False, 0)


def test_caller_hangup_before_routing_is_canceled() -> None:
    events = [script.received(SID, BASE), script.parent_status(SID, BASE, "canceled", None, 2)]
    fact = folded(events)
    assert (fact.status, fact.answered) == ("canceled", False)


def test_call_without_final_status_is_in_progress() -> None:
    events = [
        script.received(SID, BASE),
        script.routed(SID, BASE),
        script.child_status(SID, BASE, "ringing", None, 3, 1),
    ]
    assert folded(events).status == "in-progress"


def test_outbound_call_takes_its_own_status_and_duration() -> None:
    events = [
        script.received(SID, BASE, direction="outbound-api"),
        script.parent_status(SID, BASE, "completed", 65, 65),
    ]
    fact = folded(events)
    assert fact.direction == "outbound"
    assert (fact.status, fact.answered, fact.durationSec) == ("completed", True, 65)


def test_geo_falls_back_to_caller_fields() -> None:
    received = script.received(SID, BASE)
    params = {k: v for k, v in received.data["params"].items() if not k.startswith("From")}
    params["From"] = "+12125550123"
    params["CallerCity"] = "BROOKLYN"
    event = script.webhook("voice", params, received.occurredAt)
    fact = folded([event])
    assert (fact.callerCity, fact.callerState, fact.callerCountry) == ("BROOKLYN", "NY", "US")


def test_started_at_is_the_earliest_event() -> None:
    received = script.received(SID, BASE)
    routed = script.routed(SID, BASE)
    late_first = folded([routed, received])
    assert late_first.startedAt == BASE


def test_client_id_arriving_late_is_kept() -> None:
    events = script.answered_call(SID, BASE)
    fact = folded([e for e in events if e.type != "call.routed"])
    assert fact.clientId == ""
    routed = next(e for e in events if e.type == "call.routed")
    after = fold(fact, routed)
    assert after is not None and after.clientId == "client-1"


def test_placed_outbound_call_takes_its_own_status_and_duration() -> None:
    fact = folded(script.outbound_call(SID, BASE, client_id="client-9", talk=75))
    assert (fact.direction, fact.status, fact.answered, fact.durationSec) == (
        "outbound",
        "completed",
        True,
        75,
    )
    assert fact.clientId == "client-9"
    assert (fact.fromNumber, fact.toNumber) == (script.TWILIO_NUMBER, "+13105550177")
    # The place of an outbound call is the called party's, not our own number's.
    assert (fact.callerCity, fact.callerState) == ("LOS ANGELES", "CA")


def test_outbound_call_not_picked_up_is_missed() -> None:
    fact = folded(script.outbound_call(SID, BASE, talk=None, status="no-answer"))
    assert (fact.status, fact.answered, fact.durationSec) == ("no-answer", False, 0)


def test_outbound_call_in_any_order_gives_the_same_fact() -> None:
    events = script.outbound_call(SID, BASE, talk=30, campaign="radio")
    facts = {folded(list(order)) for order in itertools.permutations(events)}
    assert len(facts) == 1
    (fact,) = facts
    assert (fact.status, fact.durationSec, fact.campaign) == ("completed", 30, "radio")


def test_new_scripts_produce_schema_valid_events() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for event in (
        *script.outbound_call(SID, BASE),
        script.number_assigned(script.TWILIO_NUMBER, "client-1", "spring", start),
        script.number_released(script.TWILIO_NUMBER, "client-1", None, start, BASE),
        script.settings_changed(
            "client-1",
            "America/New_York",
            leadThresholds={"shortSec": 20, "longSec": 60, "qualifiedSec": 30},
        ),
    ):
        validate(event.to_dict())


def test_recording_stored_and_deleted_set_and_clear_recording_stored() -> None:
    call = script.answered_call(SID, BASE)
    assert folded(call).recordingStored is False
    stored = [script.recording_stored(SID, BASE, "RE1"), script.recording_stored(SID, BASE, "RE2")]
    for event in stored:
        validate(event.to_dict())
    assert folded([*call, stored[0]]).recordingStored is True
    deleted_one = script.recording_deleted(SID, BASE, "RE1")
    validate(deleted_one.to_dict())
    # one of two recordings deleted: the other is still stored
    assert folded([*call, *stored, deleted_one]).recordingStored is True
    everything = [*call, *stored, deleted_one, script.recording_deleted(SID, BASE, "RE2")]
    gone = folded(everything)
    assert gone.recordingStored is False
    assert (gone.storedRecordings, gone.deletedRecordings) == (("RE1", "RE2"), ("RE1", "RE2"))


def test_recording_events_twice_or_in_any_order_give_the_same_fact() -> None:
    call = script.answered_call(SID, BASE)
    recordings = [
        script.recording_stored(SID, BASE, "RE1"),
        script.recording_stored(SID, BASE, "RE2"),
        script.recording_deleted(SID, BASE, "RE1"),
    ]
    expected = folded([*call, *recordings])
    assert expected.recordingStored is True
    for order in itertools.permutations(recordings):
        assert folded([*call, *order]) == expected
        assert folded([*order, *call]) == expected
        assert folded([*call, *order, *order]) == expected
    for event in recordings:
        assert fold(expected, event) == expected
    # a deletion seen before the store event still wins
    late_store = folded(
        [script.recording_deleted(SID, BASE, "RE9"), script.recording_stored(SID, BASE, "RE9")]
    )
    assert late_store.recordingStored is False


def test_a_fact_built_from_its_fields_equals_the_constructed_one() -> None:
    fact = folded(script.answered_call(SID, BASE))
    constructed = CallFact(**fact.__dict__)
    rebuilt = CallFact.from_fields(dict(fact.__dict__))
    assert rebuilt == constructed == fact
    assert repr(rebuilt) == repr(constructed)
    assert sorted(vars(rebuilt)) == sorted(vars(constructed))


def test_unanswered_call_with_a_voicemail_is_voicemail() -> None:
    fact = folded(script.voicemail_call(SID, BASE, message=12))
    assert fact.status == "voicemail"
    assert fact.answered is False
    assert fact.durationSec == 0
    assert fact.voicemailSid == f"RE{SID[2:]}"
    assert fact.voicemailDurationSec == 12
    assert fact.recorded is False  # a voicemail is not a recording of a conversation


def test_voicemail_in_any_order_or_twice_gives_the_same_fact() -> None:
    events = script.voicemail_call(SID, BASE)
    expected = folded(events)
    for order in itertools.permutations(events[1:]):
        assert folded([events[0], *order]) == expected
    assert folded([e for event in events for e in (event, event)]) == expected


def test_caller_who_hangs_up_at_the_beep_stays_no_answer() -> None:
    fact = folded(script.voicemail_call(SID, BASE, message=0))
    assert fact.status == "no-answer"
    assert fact.voicemailDurationSec == 0


def test_voicemail_that_failed_is_no_voicemail() -> None:
    events = [
        *script.missed_call(SID, BASE),
        script.recording(SID, BASE, status="failed", source="RecordVerb", duration=12),
    ]
    assert folded(events).status == "no-answer"


def test_answered_call_stays_completed_whatever_voicemail_follows() -> None:
    events = [
        *script.answered_call(SID, BASE),
        script.recording(SID, BASE, source="RecordVerb", duration=12, offset=70),
    ]
    fact = folded(events)
    assert fact.status == "completed"
    assert fact.answered is True
    assert fact.durationSec == 42


def test_voicemail_of_an_unrouted_call_stays_unrouted() -> None:
    events = [
        *script.unrouted_call(SID, BASE),
        script.recording(SID, BASE, source="RecordVerb", duration=12, offset=5),
    ]
    assert folded(events).status == "unrouted"


def test_after_hours_voicemail_without_any_dial_is_voicemail() -> None:
    events = [
        script.received(SID, BASE),
        script.routed(SID, BASE),
        script.recording(SID, BASE, source="RecordVerb", duration=20, offset=30),
        script.parent_status(SID, BASE, "completed", 31, 31),
    ]
    assert folded(events).status == "voicemail"
