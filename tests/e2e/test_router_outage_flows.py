"""Router stopped: ingress forwards known numbers from its own copy, with their whole flow.

The simulator plays each call through the edge while router is down. Before
the outage a client's numbers get their flows (ring-all with whisper and
screening, sequential ringing, voicemail) and one number is released; ingress
is then restarted, so it rebuilds its copy from the number events before it
serves. During the outage, callers to known numbers are forwarded with their
flow and analytics counts each call with its real outcome; a released number
is not forwarded; only a number ingress never saw hears the apology.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.e2e.conftest import System, number
from tests.kafka_read import read_topic
from tests.support import wait_until

CALLER = "+12125550188"
FIRST, SECOND = "+14155550101", "+14155550102"
RING_ALL = {
    "ring": {"strategy": "simultaneous", "targets": [{"number": FIRST}, {"number": SECOND}]},
    "whisper": "Call from {campaign}",
    "screening": True,
}
SEQUENTIAL = {
    "ring": {
        "strategy": "sequential",
        "targets": [{"number": FIRST, "timeoutSec": 15}, {"number": SECOND}],
    },
    "voicemail": {"greeting": "Please leave a message", "maxLengthSec": 60},
}


class Outage:
    """The numbers set up before router stopped."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.client_id = system.new_client("+14155559999")
        self.ring_all, self.sequential = number(), number()
        self.released, self.never_seen = number(), number()
        for phone, flow in ((self.ring_all, RING_ALL), (self.sequential, SEQUENTIAL)):
            system.assign(self.client_id, phone, campaign="mailer")
            reply = system.admin("PUT", f"/api/numbers/{phone}/flow", json=flow)
            assert reply.status_code == 200, reply.text
        system.assign(self.client_id, self.released)
        reply = system.admin("DELETE", f"/api/clients/{self.client_id}/numbers/{self.released}")
        assert reply.status_code == 204, reply.text
        for phone in (self.ring_all, self.sequential, self.released, self.never_seen):
            system.own_at_simulator(phone)

    def published(self) -> bool:
        """Whether router's number events for every number are on Kafka."""
        found = read_topic(self.system.bootstrap, self.system.topics.number_events, settle=0.5)
        seen = {(m["key"], m["value"]["type"], bool(m["value"]["data"].get("flow"))) for m in found}
        return {
            (self.ring_all, "number.assigned", True),
            (self.sequential, "number.assigned", True),
            (self.released, "number.released", False),
        } <= seen

    def play(self, to: str, **script: Any) -> dict[str, Any]:
        log = self.system.play(**{"from": CALLER, "to": to, **script})
        assert log["error"] is None, log["error"]
        return log

    def outcome(self, call_sid: str, status: str) -> dict[str, Any]:
        """The call as analytics shows it, once its status is `status`."""

        last: list[dict[str, Any]] = []

        def settled() -> dict[str, Any] | None:
            last[:] = [self.system.call(call_sid, timeout=15.0)]
            return last[0] if last[0]["status"] == status else None

        try:
            found: dict[str, Any] = wait_until(settled, timeout=45.0, message=f"call {status}")
        except TimeoutError as err:
            raise AssertionError(f"{err}; analytics shows {last}") from None
        return found


@pytest.fixture(scope="module")
def outage(system: System) -> Iterator[Outage]:
    """The numbers set up, ingress restarted on them, then router stopped (started again after)."""
    numbers = Outage(system)
    wait_until(numbers.published, timeout=30.0, message="number events on Kafka")
    ingress = system.services["ingress"]
    ingress.stop()
    ingress.start()
    # A restarted ingress has rebuilt its copy before it says it is ready.
    ready = requests.get(f"{ingress.url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["routingCopy"]["built"] is True
    router = system.services["router"]
    router.stop()
    try:
        yield numbers
    finally:
        router.start()


def dialed(log: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The legs a played call dialed, by number."""
    return {leg.get("to") or leg["number"]: leg for leg in log["dials"]}


def test_ring_all_with_screening_is_forwarded_whole_and_counted_from_the_answering_leg(
    outage: Outage,
) -> None:
    log = outage.play(
        outage.ring_all,
        answerers={
            FIRST: "no-answer",
            SECOND: {"after": 4, "pressDigits": "1", "talkSeconds": 42},
        },
    )
    legs = dialed(log)
    assert set(legs) == {FIRST, SECOND}
    assert legs[SECOND]["bridged"] is True
    assert all(cb["status"] == 200 for cb in log["callbacks"]), log["callbacks"]
    call = outage.outcome(log["callSid"], "completed")
    assert call["answered"] is True
    # The answering leg's own time (screening and talk), as Twilio's DialCallDuration.
    assert call["durationSec"] == legs[SECOND]["talkSeconds"]
    assert 42 <= call["durationSec"] < 42 + 60
    assert call["clientId"] == outage.client_id


def test_sequential_ringing_falls_through_then_takes_a_voicemail(outage: Outage) -> None:
    moved_on = outage.play(
        outage.sequential,
        answerers={FIRST: "no-answer", SECOND: {"after": 3, "talkSeconds": 30}},
    )
    assert list(dialed(moved_on)) == [FIRST, SECOND]
    answered = outage.outcome(moved_on["callSid"], "completed")
    assert answered["durationSec"] == 30

    nobody = outage.play(
        outage.sequential,
        answerers={FIRST: "no-answer", SECOND: "no-answer"},
        voicemailSeconds=12,
    )
    assert list(dialed(nobody)) == [FIRST, SECOND]
    voicemail = outage.outcome(nobody["callSid"], "voicemail")
    assert voicemail["answered"] is False and voicemail["voicemail"]["durationSec"] == 12


def test_a_number_released_before_the_outage_is_not_forwarded(outage: Outage) -> None:
    log = outage.play(outage.released, outcome="completed", talkSeconds=30)
    assert log["dials"] == []
    call = outage.outcome(log["callSid"], "unrouted")
    assert call["answered"] is False


def test_only_a_number_ingress_never_saw_hears_the_apology_and_counts_as_failed(
    outage: Outage,
) -> None:
    log = outage.play(outage.never_seen, outcome="completed", talkSeconds=30)
    assert log["dials"] == []
    said = " ".join(entry["body"] for entry in log["twiml"])
    assert "cannot connect your call" in said
    call = outage.outcome(log["callSid"], "failed")
    assert call["answered"] is False
