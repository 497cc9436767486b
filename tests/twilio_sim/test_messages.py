"""SMS through twilio-python's Client: sends, Twilio's errors, STOP replies and opt-ins."""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from typing import Any

import pytest
import requests
from twilio.base.exceptions import TwilioRestException

from tests.support import wait_until
from tests.twilio_sim.receiver import WebhookReceiver
from tests.twilio_sim.simulator import Simulator

CALLER = "+14155550177"


def sent_to(sim: Simulator, phone: str) -> list[dict[str, Any]]:
    return sim.messages(to=phone)


def reply_from(sim: Simulator, phone: str, number: str, body: str) -> requests.Response:
    return requests.post(
        f"{sim.base_url}/sim/messages/inbound",
        json={"from": phone, "to": number, "body": body},
        timeout=10,
    )


def test_a_text_is_queued_with_twilios_resource_and_listed(
    simulator: Simulator, receiver: WebhookReceiver, tracking_number: str
) -> None:
    simulator.own_number(tracking_number, f"{receiver.base_url}/voice")
    caller = "+14155550301"
    message = simulator.client().messages.create(
        to=caller,
        from_=tracking_number,
        body="Sorry we missed your call!",
        status_callback=f"{receiver.base_url}/sms-status",
    )
    assert message.sid.startswith("SM") and len(message.sid) == 34
    assert message.status == "queued"
    assert message.direction == "outbound-api"
    assert (message.to, message.from_, message.body) == (caller, tracking_number, message.body)
    assert message.account_sid == simulator.account_sid
    assert message.num_segments == "1"
    assert message.date_created is not None
    assert message.uri.endswith(f"/Messages/{message.sid}.json")

    [listed] = sent_to(simulator, caller)
    assert listed["sid"] == message.sid
    assert listed["body"] == "Sorry we missed your call!"
    parsedate_to_datetime(listed["date_created"])  # RFC 2822

    statuses = wait_until(
        lambda: (
            receiver.received("/sms-status")[:2] or None
            if len(receiver.received("/sms-status")) >= 2
            else None
        ),
        timeout=10,
        message="sent and delivered callbacks",
    )
    assert [r.params["MessageStatus"] for r in statuses] == ["sent", "delivered"]
    assert all(r.signature_valid and r.params["MessageSid"] == message.sid for r in statuses)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"to": "not-a-number", "body": "hi"}, 21211),
        ({"to": "+14155550302", "body": "   "}, 21602),
    ],
)
def test_bad_sends_get_twilios_error_codes(
    simulator: Simulator,
    receiver: WebhookReceiver,
    tracking_number: str,
    fields: dict[str, str],
    code: int,
) -> None:
    simulator.own_number(tracking_number, f"{receiver.base_url}/voice")
    with pytest.raises(TwilioRestException) as raised:
        simulator.client().messages.create(from_=tracking_number, **fields)
    assert raised.value.status == 400
    assert raised.value.code == code


@pytest.mark.parametrize(("sender", "code"), [("+19995550100", 21606), ("front-desk", 21212)])
def test_a_from_number_the_account_does_not_own_is_refused(
    simulator: Simulator, sender: str, code: int
) -> None:
    with pytest.raises(TwilioRestException) as raised:
        simulator.client().messages.create(to="+14155550303", from_=sender, body="hi")
    assert (raised.value.status, raised.value.code) == (400, code)
    assert sent_to(simulator, "+14155550303") == []


def test_stop_opts_the_sender_out_of_that_number_only_and_start_opts_back_in(
    simulator: Simulator, receiver: WebhookReceiver, tracking_number: str
) -> None:
    other = "+16505550199"
    simulator.own_number(tracking_number, f"{receiver.base_url}/voice")
    simulator.own_number(other, f"{receiver.base_url}/voice")
    client = simulator.client()
    reply = reply_from(simulator, CALLER, tracking_number, " stop ")
    assert reply.status_code == 201 and reply.json()["optedOut"] is True

    with pytest.raises(TwilioRestException) as raised:
        client.messages.create(to=CALLER, from_=tracking_number, body="Still there?")
    assert (raised.value.status, raised.value.code) == (400, 21610)
    raw = requests.post(
        f"{simulator.base_url}/2010-04-01/Accounts/{simulator.account_sid}/Messages.json",
        data={"To": CALLER, "From": tracking_number, "Body": "Still there?"},
        auth=(simulator.account_sid, simulator.auth_token),
        timeout=10,
    )
    assert raw.status_code == 400
    assert raw.json() == {
        "code": 21610,
        "message": "Attempt to send to unsubscribed recipient",
        "more_info": "https://www.twilio.com/docs/errors/21610",
        "status": 400,
    }
    # Opt-outs are per number: the business's other number may still text.
    client.messages.create(to=CALLER, from_=other, body="From the other line")
    assert [m["direction"] for m in sent_to(simulator, CALLER)] == ["outbound-api"]

    assert simulator.text_from(CALLER, tracking_number, "START")["optedOut"] is False
    client.messages.create(to=CALLER, from_=tracking_number, body="Welcome back")
    inbound = sent_to(simulator, tracking_number)
    assert [(m["body"], m["direction"], m["status"]) for m in inbound] == [
        (" stop ", "inbound", "received"),
        ("START", "inbound", "received"),
    ]


@pytest.mark.parametrize("word", ["UNSUBSCRIBE", "cancel", "End", "QUIT"])
def test_every_opt_out_keyword_stops_texts(
    simulator: Simulator, receiver: WebhookReceiver, tracking_number: str, word: str
) -> None:
    simulator.own_number(tracking_number, f"{receiver.base_url}/voice")
    reply_from(simulator, CALLER, tracking_number, word)
    with pytest.raises(TwilioRestException) as raised:
        simulator.client().messages.create(to=CALLER, from_=tracking_number, body="hi")
    assert raised.value.code == 21610


def test_a_bad_inbound_reply_is_a_400_and_changes_nothing(
    simulator: Simulator, receiver: WebhookReceiver, tracking_number: str
) -> None:
    simulator.own_number(tracking_number, f"{receiver.base_url}/voice")
    reply = reply_from(simulator, "nobody", tracking_number, "STOP")
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "invalid_field"
    assert sent_to(simulator, tracking_number) == []
