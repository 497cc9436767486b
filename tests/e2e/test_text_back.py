"""The missed-call text-back through the whole system: calls played by the simulator to the edge.

Its own stack (router, ingress and reporting behind the edge; the text on
the call's detail in analytics is tests/analytics/test_text_back.py's):
the flow's `textBack` is set through router's API, calls nobody answers are
played by the Twilio simulator, and the caller's texts are read at the
simulator, where they arrive from the called number. Reporting's clock (a
file, REPORTING_CLOCK_FILE) is moved past the cooldown; "no text" is shown
by waiting until reporting has committed past the call's events and its
alert.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack.stack import Stack
from services.reporting.alerts import alerts_topic
from services.reporting.clock import set_file_clock
from services.reporting.textback_rules import is_textable
from tests.e2e.conftest import ACCOUNT_SID, ADMIN, AUTH_TOKEN, System, number
from tests.kafka_read import read_topic, wait_committed_past
from tests.support import wait_until

TARGET = "+14155550101"
MESSAGE = "Sorry we missed your call! We will ring you back shortly."


@pytest.fixture(scope="module")
def clock_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("textback-clock") / "now"


@pytest.fixture(scope="module")
def system(
    kafka_bootstrap: str,
    postgres_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    clock_file: Path,
) -> Iterator[System]:
    with Stack(
        tmp_path_factory.mktemp("textback"),
        kafka_bootstrap=kafka_bootstrap,
        postgres_url=postgres_url,
        services=("twilio_sim", "router", "ingress", "reporting"),
        env={
            "ADMIN_API_TOKEN": ADMIN,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            # Reporting's clock, moved past the cooldown by the test.
            "REPORTING_CLOCK_FILE": str(clock_file),
            "REPORTING_TEXTBACK_MAX_AGE_HOURS": "1000",
            # A caller who hangs up at the greeting leaves no voicemail: alert soon.
            "REPORTING_VOICEMAIL_WAIT_SECONDS": "1",
        },
    ) as made:
        assert made.edge is not None
        yield System(made.edge, made.services, made.topics, made.env)


def tracked_number_with_text_back(system: System) -> str:
    created = system.admin(
        "POST", "/api/clients", json={"name": "Smile Dental", "forwardTo": TARGET}
    )
    assert created.status_code == 201, created.text
    tracked = number()
    assigned = system.admin(
        "POST",
        f"/api/clients/{created.json()['id']}/numbers",
        json={"phoneNumber": tracked, "record": False},
    )
    assert assigned.status_code == 201, assigned.text
    flow = {
        "ring": {"strategy": "simultaneous", "targets": [{"number": TARGET, "timeoutSec": 10}]},
        "textBack": {"message": MESSAGE, "cooldownHours": 24},
    }
    put = system.admin("PUT", f"/api/numbers/{tracked}/flow", json=flow)
    assert put.status_code == 200, put.text
    system.own_at_simulator(tracked)
    return tracked


def missed_call(system: System, caller: str, tracked: str) -> str:
    """A call nobody answers, played to its end and followed by reporting; its CallSid."""
    sim = system.simulator
    played = requests.post(
        f"{sim}/sim/calls",
        json={"from": caller, "to": tracked, "answerers": {TARGET: "no-answer"}},
        timeout=10,
    )
    assert played.status_code == 202, played.text
    call_sid: str = played.json()["callSid"]

    def finished() -> bool:
        reply = requests.get(f"{sim}/sim/calls/{call_sid}", params={"wait": 5}, timeout=15)
        return bool(reply.json().get("state") == "finished")

    wait_until(finished, timeout=60, message=f"simulated call {call_sid}")
    return call_sid


def followed(system: System, call_sid: str) -> None:
    """Wait until reporting has alerted on the call and weighed its text-back."""
    group = system.services["reporting"].env["REPORTING_GROUP_ID"]
    alerts = alerts_topic(system.topics.prefix)
    wait_committed_past(system.bootstrap, group, system.topics.call_events, timeout=60)
    wait_until(
        lambda: any(m["key"] == call_sid for m in read_topic(system.bootstrap, alerts, settle=0.2)),
        timeout=60,
        message=f"the alert of {call_sid}",
    )
    wait_committed_past(system.bootstrap, group, alerts, timeout=60)


def texts_to(system: System, caller: str) -> list[dict[str, Any]]:
    reply = requests.get(f"{system.simulator}/sim/messages", params={"to": caller}, timeout=10)
    found: list[dict[str, Any]] = reply.json()["messages"]
    return found


def mobile_caller() -> str:
    """A random caller reporting sees as able to take a text (a valid US number)."""
    while True:
        candidate = f"+1415{random.randint(2_000_000, 9_999_999)}"
        if is_textable(candidate):
            return candidate


def texts_reached(system: System, caller: str, count: int) -> list[dict[str, Any]]:
    """Wait for the caller's `count` texts; on timeout, say what reporting logged of them."""

    def enough() -> list[dict[str, Any]] | None:
        found = texts_to(system, caller)
        return found if len(found) >= count else None

    try:
        return wait_until(enough, timeout=60, message=f"text-back number {count}")
    except TimeoutError as err:
        logged = system.services["reporting"].log_file.read_text(errors="replace").splitlines()
        said = [line for line in logged if any(w in line for w in ("text-back", "alert", "ERROR"))]
        raise AssertionError(f"{err}; reporting logged:\n" + "\n".join(said[-30:])) from None


def test_text_back_is_sent_once_not_again_within_the_cooldown_and_never_after_stop(
    system: System, clock_file: Path
) -> None:
    tracked = tracked_number_with_text_back(system)
    caller = mobile_caller()
    start = datetime.now(UTC)
    set_file_clock(clock_file, start)

    first = missed_call(system, caller, tracked)
    [text] = texts_reached(system, caller, 1)
    assert (text["from"], text["body"]) == (tracked, MESSAGE)
    [sent] = wait_until(
        lambda: [
            m["value"]
            for m in read_topic(system.bootstrap, system.topics.call_events, settle=0.2)
            if m["key"] == first and m["value"]["type"] == "sms.sent"
        ],
        timeout=30,
        message="sms.sent on the call's events",
    )
    assert (sent["data"]["to"], sent["data"]["messageSid"]) == (caller, text["sid"])

    # Within the cooldown: no second text.
    set_file_clock(clock_file, start + timedelta(hours=23))
    followed(system, missed_call(system, caller, tracked))
    assert len(texts_to(system, caller)) == 1

    # After it: texted again.
    set_file_clock(clock_file, start + timedelta(hours=25))
    missed_call(system, caller, tracked)
    assert len(texts_reached(system, caller, 2)) == 2

    # The caller replies STOP: never texted again, even once they opt back in at Twilio.
    stop = requests.post(
        f"{system.simulator}/sim/messages/inbound",
        json={"from": caller, "to": tracked, "body": "STOP"},
        timeout=10,
    )
    assert stop.status_code == 201, stop.text
    set_file_clock(clock_file, start + timedelta(hours=50))
    followed(system, missed_call(system, caller, tracked))
    requests.post(
        f"{system.simulator}/sim/messages/inbound",
        json={"from": caller, "to": tracked, "body": "START"},
        timeout=10,
    ).raise_for_status()
    set_file_clock(clock_file, start + timedelta(hours=75))
    followed(system, missed_call(system, caller, tracked))
    assert len(texts_to(system, caller)) == 2
