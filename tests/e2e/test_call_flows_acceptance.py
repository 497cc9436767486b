"""Call flows end to end: the simulator plays each call through the edge to the real stack.

Ring-all where the second target answers, screening declined by a voicemail
box, after hours to voicemail by the simulated clock (router reads it at
ROUTER_CLOCK_URL, the simulator's GET /sim/clock), and every bad flow
refused through the edge. Outcomes are read back from analytics as a client
would, and voicemails from recordings through their signed links.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.e2e.conftest import System, number
from tests.support import wait_until

CALLER = "+12125550188"
FIRST, SECOND = "+14155550101", "+14155550102"


@pytest.fixture(scope="module")
def flows(system: System) -> Iterator[System]:
    """The module's system, its router reading the simulator's clock; the clock real again after."""
    router = system.services["router"]
    if "ROUTER_CLOCK_URL" not in router.env:
        router.stop()
        router.env["ROUTER_CLOCK_URL"] = f"{system.simulator}/sim/clock"
        router.start()
    yield system
    set_clock(system, None)


def set_clock(system: System, moment: str | None) -> None:
    reply = requests.post(f"{system.simulator}/sim/clock", json={"now": moment}, timeout=10)
    assert reply.status_code == 200, reply.text


def tracked_number(system: System, flow: dict[str, Any]) -> tuple[str, str]:
    """A new client's number with `flow`, owned at the simulator; (clientId, number)."""
    client_id = system.new_client("+14155559999")
    tracked = number()
    system.assign(client_id, tracked)
    reply = system.admin("PUT", f"/api/numbers/{tracked}/flow", json=flow)
    assert reply.status_code == 200, reply.text
    system.own_at_simulator(tracked)
    return client_id, tracked


def outcome(system: System, call_sid: str, status: str) -> dict[str, Any]:
    """The call as analytics shows it, once its status is `status`."""

    def settled() -> dict[str, Any] | None:
        call = system.call(call_sid, timeout=15.0)
        return call if call["status"] == status else None

    found: dict[str, Any] = wait_until(settled, timeout=20.0, message=f"call {status}")
    return found


def play(system: System, to: str, answerers: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Play a call from CALLER to `to` with the simulator; its log once finished."""
    call: dict[str, Any] = {"from": CALLER, "to": to, "answerers": answerers, **extra}
    return system.play(**call)


def dial_durations(log: dict[str, Any]) -> list[int]:
    """DialCallDuration of each <Dial> result the simulator reported, in order."""
    return [
        int(cb["params"]["DialCallDuration"])
        for cb in log["callbacks"]
        if "DialCallDuration" in cb.get("params", {})
    ]


def played_ok(log: dict[str, Any]) -> None:
    assert log["error"] is None, log["error"]
    failed = [cb for cb in log["callbacks"] if cb["status"] != 200]
    assert not failed, [(cb["kind"], cb.get("url"), cb["status"]) for cb in failed]


def legs(log: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The dialed legs of a played call, by the number each rang."""
    return {leg["number"]: leg for leg in log["dials"]}


def test_ring_all_where_the_second_target_answers_counts_the_second_legs_talk_time(
    flows: System,
) -> None:
    client_id, tracked = tracked_number(
        flows,
        {
            "ring": {
                "strategy": "simultaneous",
                "targets": [{"number": FIRST, "timeoutSec": 30}, {"number": SECOND}],
            }
        },
    )
    log = play(
        flows,
        tracked,
        {FIRST: {"after": 20, "talkSeconds": 300}, SECOND: {"after": 4, "talkSeconds": 42}},
    )
    played_ok(log)
    rang = legs(log)
    assert rang[FIRST]["dialCallStatus"] == "canceled"
    assert (rang[SECOND]["dialCallStatus"], rang[SECOND]["bridged"]) == ("completed", True)

    call = outcome(flows, log["callSid"], "completed")
    assert call["answered"] is True
    assert call["durationSec"] == 42
    summary = flows.summary(client_id)
    assert (summary["answered"], summary["missed"]) == (1, 0)


def test_screening_declined_by_a_voicemail_box_moves_on_to_the_next_target(
    flows: System,
) -> None:
    client_id, tracked = tracked_number(
        flows,
        {
            "ring": {
                "strategy": "sequential",
                "targets": [{"number": FIRST, "timeoutSec": 25}, {"number": SECOND}],
            },
            "screening": True,
            "whisper": "Call from {campaign}",
        },
    )
    log = play(
        flows,
        tracked,
        {
            # Picks up, hears the screening prompt, presses nothing.
            FIRST: "voicemail-box",
            SECOND: {"after": 3, "pressDigits": "1", "talkSeconds": 37},
        },
    )
    played_ok(log)
    first, second = log["dials"]
    assert (first["number"], first["dialCallStatus"], first["bridged"]) == (
        FIRST,
        "completed",
        False,
    )
    assert (second["number"], second["bridged"]) == (SECOND, True)
    call = outcome(flows, log["callSid"], "completed")
    assert call["answered"] is True
    # The answering leg's own duration (Twilio's DialCallDuration: its screening and talk),
    # never the voicemail box's.
    assert call["durationSec"] == dial_durations(log)[-1] == second["talkSeconds"]
    assert 37 <= call["durationSec"] < 37 + 60
    summary = flows.summary(client_id)
    assert (summary["answered"], summary["missed"]) == (1, 0)


def test_screening_declined_by_every_voicemail_box_counts_as_not_answered(
    flows: System,
) -> None:
    client_id, tracked = tracked_number(
        flows,
        {
            "ring": {"strategy": "sequential", "targets": [{"number": FIRST}, {"number": SECOND}]},
            "screening": True,
        },
    )
    log = play(flows, tracked, {FIRST: "voicemail-box", SECOND: "voicemail-box"})
    played_ok(log)
    assert [leg["number"] for leg in log["dials"]] == [FIRST, SECOND]
    flows.analytics_caught_up()
    call = flows.call(log["callSid"])
    assert call["answered"] is False
    assert call["durationSec"] == 0
    summary = flows.summary(client_id)
    assert (summary["answered"], summary["missed"]) == (0, 1)


def test_after_hours_by_the_simulated_clock_a_caller_leaves_a_voicemail(flows: System) -> None:
    weekdays = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
    client_id, tracked = tracked_number(
        flows,
        {
            "businessHours": {"weekly": weekdays},
            "ring": {"strategy": "simultaneous", "targets": [{"number": FIRST}]},
            "afterHours": "voicemail",
            "voicemail": {"greeting": "We are closed, please leave a message", "maxLengthSec": 60},
        },
    )
    # The client's zone is UTC: Sunday 03:00 is after hours.
    set_clock(flows, "2026-12-06T03:00:00Z")
    try:
        log = play(flows, tracked, {FIRST: {"after": 2, "talkSeconds": 30}}, voicemailSeconds=9)
    finally:
        set_clock(flows, None)
    played_ok(log)
    assert log["dials"] == []  # nobody was rung
    call = outcome(flows, log["callSid"], "voicemail")
    assert call["answered"] is False
    voicemail = call["voicemail"]
    assert voicemail["durationSec"] == 9
    summary = flows.summary(client_id)
    assert (summary["voicemail"], summary["missed"], summary["answered"]) == (1, 1, 0)

    def stored() -> dict[str, Any] | None:
        reply = flows.admin("GET", voicemail["recordingUrl"])
        if reply.status_code != 200:
            return None
        found = [r for r in reply.json()["recordings"] if r["status"] == "stored"]
        return found[0] if found else None

    recording = wait_until(stored, timeout=20.0, message="voicemail stored")
    assert recording["kind"] == "voicemail"
    played = requests.get(recording["playbackUrl"], timeout=10)
    assert played.status_code == 200
    assert len(played.content) == recording["bytes"]


def test_in_hours_by_the_simulated_clock_the_targets_ring(flows: System) -> None:
    weekdays = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
    _, tracked = tracked_number(
        flows,
        {
            "businessHours": {"weekly": weekdays},
            "ring": {"strategy": "simultaneous", "targets": [{"number": FIRST}]},
        },
    )
    set_clock(flows, "2026-12-07T10:00:00Z")  # a Monday, in hours
    try:
        log = play(flows, tracked, {FIRST: {"after": 2, "talkSeconds": 21}})
    finally:
        set_clock(flows, None)
    played_ok(log)
    assert [leg["number"] for leg in log["dials"]] == [FIRST]
    assert outcome(flows, log["callSid"], "completed")["durationSec"] == 21


@pytest.mark.parametrize(
    ("flow", "field", "reason"),
    [
        ({"ringAll": True}, "ringAll", "unknown field"),
        ({"ring": {"targets": [{"number": FIRST, "delay": 3}]}}, "ring.targets[0].delay",
         "unknown field"),
        ({"businessHours": {"weekly": {"mon": [["09:00", "25:00"]]}}}, "mon[0][1]",
         "must be a time"),
        ({"businessHours": {"weekly": {"mon": [["09:00", "13:00"], ["12:00", "17:00"]]}}},
         "businessHours.weekly.mon", "overlapping"),
        ({"ring": {"targets": [{"number": f"+1415555{i:04d}"} for i in range(300, 311)]}},
         "ring.targets", "at most 10"),
        ({"ring": {"targets": []}}, "ring.targets", "1 to 10"),
        ({"ring": {"targets": [{"number": "4155550101"}]}}, "ring.targets[0].number", "E.164"),
        ({"afterHours": "forward", "afterHoursNumber": "0044207946"}, "afterHoursNumber",
         "E.164"),
        ({"ring": {"targets": [{"number": "+442079460000"}]}}, "ring.targets[0].number",
         "calls may only go to US"),
        ({"afterHours": "forward", "afterHoursNumber": "+33142685300"}, "afterHoursNumber",
         "calls may only go to US"),
    ],
)  # fmt: skip
def test_a_bad_flow_is_refused_through_the_edge_with_field_and_reason(
    flows: System, flow: dict[str, Any], field: str, reason: str
) -> None:
    client_id = flows.new_client("+14155559999")
    tracked = number()
    flows.assign(client_id, tracked)
    good = {"ring": {"strategy": "sequential", "targets": [{"number": FIRST}]}}
    assert flows.admin("PUT", f"/api/numbers/{tracked}/flow", json=good).status_code == 200
    before = flows.admin("GET", f"/api/numbers/{tracked}/flow").json()

    reply = flows.admin("PUT", f"/api/numbers/{tracked}/flow", json=flow)
    assert reply.status_code == 400, reply.text
    message = reply.json()["error"]["message"]
    assert field in message and reason in message, message
    assert flows.admin("GET", f"/api/numbers/{tracked}/flow").json() == before
