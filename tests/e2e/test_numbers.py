"""Issue 3's acceptance, end to end: numbers, outbound calls, access control, fail-safe forwarding.

The whole system runs as `make run` runs it (services as processes behind
the nginx edge, real PostgreSQL, Kafka and chDB), with the Twilio simulator
as Twilio: router reaches it through the twilio library, and it plays the
calls. Numbers are bought through router's purchase API, so every number
here is one the simulated account really holds.
"""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
import requests

from devstack import demo
from tests.e2e.conftest import ADMIN, System
from tests.support import ServiceProcess, wait_until

CALLER = "+12125550147"
NOT_IN_SERVICE_TWIMLET = "https://twimlets.com/message?Message%5B0%5D=Sorry%2C+the+number"


def forward_twimlet(phone: str) -> str:
    return f"https://twimlets.com/forward?PhoneNumber={quote(phone, safe='')}"


def held_number(system: System, phone: str) -> dict[str, Any] | None:
    reply = system.admin("GET", "/api/twilio/numbers")
    assert reply.status_code == 200, reply.text
    found = [n for n in reply.json()["numbers"] if n["phoneNumber"] == phone]
    return found[0] if found else None


def fallback_at_twilio(system: System, phone: str, expected_prefix: str) -> Any:
    """The number as Twilio holds it, once its Voice Fallback URL starts with `expected_prefix`."""
    rest = system.twilio_rest()

    def configured() -> Any:
        [number] = rest.incoming_phone_numbers.list(phone_number=phone)
        return number if (number.voice_fallback_url or "").startswith(expected_prefix) else None

    return wait_until(configured, timeout=30.0, message=f"{phone} fallback at Twilio")


def buy(system: System, area_code: str) -> dict[str, Any]:
    reply = system.admin("POST", "/api/twilio/purchase-number", json={"areaCode": area_code})
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


def take_from_pool(system: System, client_id: str, **body: Any) -> str:
    reply = system.admin("POST", f"/api/clients/{client_id}/numbers", json=body)
    assert reply.status_code == 201, reply.text
    return str(reply.json()["phoneNumber"])


def fact_of(
    system: System, call_sid: str, until: Callable[[dict[str, Any]], bool] | None = None
) -> dict[str, Any]:
    """The call's fact in analytics once its outcome is final (and `until` holds).

    Events of one call reach analytics in several batches: wait for the whole story.
    """

    def found() -> dict[str, Any] | None:
        reply = system.admin("GET", f"/api/calls/{call_sid}")
        if reply.status_code != 200:
            return None
        fact: dict[str, Any] = reply.json()
        final = fact["status"] not in ("in-progress", "unrouted")
        return fact if final and (until is None or until(fact)) else None

    try:
        return wait_until(found, timeout=30.0, message=f"call {call_sid} in analytics")
    except TimeoutError:
        reply = system.admin("GET", f"/api/calls/{call_sid}")
        raise AssertionError(
            f"call {call_sid} in analytics: {reply.status_code} {reply.text}"
        ) from None


def stored_recordings(system: System, call_sid: str) -> list[dict[str, Any]]:
    def stored() -> list[dict[str, Any]] | None:
        reply = system.admin("GET", f"/api/twilio/recording/{call_sid}")
        if reply.status_code != 200:
            return None
        found = [r for r in reply.json()["recordings"] if r["status"] == "stored"]
        return found or None

    return wait_until(stored, timeout=30.0, message=f"recording of {call_sid} stored")


def curl(*args: str) -> Any:
    """Run curl as a user would; its JSON answer (curl fails on HTTP errors)."""
    done = subprocess.run(
        ["curl", "--silent", "--show-error", "--fail-with-body", "--max-time", "30", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"curl {args} failed: {done.stderr} {done.stdout}"
    return json.loads(done.stdout)


def test_bought_and_assigned_number_forwards_records_and_counts_for_its_client(
    system: System,
) -> None:
    forward_to = "+14155551001"
    client_id = system.new_client(forward_to)
    bought = buy(system, "415")
    # Bought numbers call this deployment and wait in the pool.
    number = system.twilio_rest().incoming_phone_numbers(bought["sid"]).fetch()
    assert number.voice_url == f"{system.url}/api/twilio/webhook"
    assert number.status_callback == f"{system.url}/api/twilio/status"
    assert held_number(system, bought["phoneNumber"])["status"] == "pooled"  # type: ignore[index]

    system.assign(client_id, bought["phoneNumber"], campaign="spring-mailer")
    fallback_at_twilio(system, bought["phoneNumber"], forward_twimlet(forward_to))

    log = system.play(
        **{"from": CALLER, "to": bought["phoneNumber"], "outcome": "completed", "talkSeconds": 42}
    )

    assert all(cb["status"] == 200 for cb in log["callbacks"]), log["callbacks"]
    assert log["callbacks"][0]["url"] == f"{system.url}/api/twilio/webhook"
    assert len(log["dials"]) == 1, log["twiml"]
    [dial] = log["dials"]
    assert dial["number"] == forward_to and dial["dialCallStatus"] == "completed"
    fact = fact_of(system, log["callSid"], until=lambda f: f["recorded"] and f["answered"])
    assert fact["clientId"] == client_id
    assert fact["direction"] == "inbound"
    assert fact["durationSec"] == 42
    [recording] = stored_recordings(system, log["callSid"])
    assert recording["clientId"] == client_id
    summary = system.summary(client_id)
    assert summary["totalCalls"] == 1 and summary["completed"] == 1


def test_released_number_answers_the_next_call_with_not_in_service(system: System) -> None:
    forward_to = "+13125551002"
    client_id = system.new_client(forward_to)
    phone = take_from_pool(system, client_id, forwardTo=forward_to, areaCode="312")
    fallback_at_twilio(system, phone, forward_twimlet(forward_to))
    before = system.play(**{"from": CALLER, "to": phone, "outcome": "busy"})
    assert [d["number"] for d in before["dials"]] == [forward_to]

    reply = system.admin("DELETE", f"/api/clients/{client_id}/numbers/{phone}")
    assert reply.status_code == 204, reply.text
    after = system.play(**{"from": CALLER, "to": phone})

    assert after["dials"] == []
    assert after["callbacks"][0]["status"] == 200
    [document] = after["twiml"]
    root = ET.fromstring(document["body"])
    assert [e.tag for e in root] == ["Say", "Hangup"]
    assert "not in service" in (root[0].text or "")
    # Twilio's fallback of a pooled number says the same, and no longer dials the old client.
    fallback_at_twilio(system, phone, NOT_IN_SERVICE_TWIMLET)
    assert held_number(system, phone)["status"] == "pooled"  # type: ignore[index]


def test_with_the_edge_down_callers_still_reach_the_client_through_twilios_fallback(
    system: System,
) -> None:
    forward_to = "+12125551003"
    client_id = system.new_client(forward_to)
    phone = take_from_pool(system, client_id, forwardTo=forward_to, areaCode="212")
    fallback_at_twilio(system, phone, forward_twimlet(forward_to))

    with system.edge_down():
        log = system.play(
            **{"from": CALLER, "to": phone, "outcome": "completed", "talkSeconds": 30}
        )

    voice, fallback = log["callbacks"][:2]
    assert voice["kind"] == "voice" and voice["status"] is None  # nobody answered
    assert fallback["kind"] == "voice-fallback" and fallback["status"] == 200
    assert fallback["url"] == forward_twimlet(forward_to)
    assert fallback["servedBy"].startswith("simulator")  # never requested over the network
    [dial] = log["dials"]
    assert dial["number"] == forward_to
    assert dial["dialCallStatus"] == "completed" and dial["talkSeconds"] == 30
    assert log["result"]["callStatus"] == "completed"


def test_the_guides_curl_examples_buy_a_number_and_place_a_counted_outbound_call(
    system: System,
) -> None:
    auth = f"Authorization: Bearer {ADMIN}"
    offers = curl("-H", auth, f"{system.url}/api/twilio/purchase-number?areaCode=415")
    assert offers["numbers"], offers
    assert all(n["phoneNumber"].startswith("+1415") for n in offers["numbers"])
    assert set(offers["numbers"][0]) == {"phoneNumber", "locality", "region"}

    bought = curl(
        "-X",
        "POST",
        f"{system.url}/api/twilio/purchase-number",
        "-H",
        "Content-Type: application/json",
        "-H",
        auth,
        "-d",
        '{"areaCode": "415"}',
    )
    assert bought["phoneNumber"].startswith("+1415") and bought["sid"].startswith("PN")

    client_id = system.new_client("+14155551004")
    system.assign(client_id, bought["phoneNumber"])
    callee = "+13125550123"
    body = json.dumps(
        {
            "fromNumber": bought["phoneNumber"],
            "toNumber": callee,
            "clientId": client_id,
            "message": "Your appointment is tomorrow at 10am.",
        }
    )
    placed = curl(
        "-X",
        "POST",
        f"{system.url}/api/twilio/make-call",
        "-H",
        "Content-Type: application/json",
        "-H",
        auth,
        "-d",
        body,
    )

    call_sid = placed["callSid"]
    log = system.played(call_sid)
    assert log["direction"] == "outbound-api" and log["error"] is None
    says = [e.text for e in ET.fromstring(log["twiml"][0]["body"])]
    assert says[-1] == "Your appointment is tomorrow at 10am."
    call = system.twilio_rest().calls(call_sid).fetch()
    assert (call._from, call.to) == (bought["phoneNumber"], callee)
    fact = fact_of(system, call_sid, until=lambda f: f["status"] == "completed")
    assert fact["clientId"] == client_id
    assert fact["direction"] == "outbound"


def test_a_client_key_sees_nothing_of_another_client_anywhere(system: System) -> None:
    mine_id = system.new_client("+14155551005")
    theirs_name = "Theirs Secret Dental"
    reply = system.admin(
        "POST", "/api/clients", json={"name": theirs_name, "forwardTo": "+14155551006"}
    )
    assert reply.status_code == 201, reply.text
    theirs_id = reply.json()["id"]
    mine_number = take_from_pool(system, mine_id, areaCode="415", record=True)
    theirs_number = take_from_pool(system, theirs_id, areaCode="415", record=True)
    mine_call = system.play(**{"from": CALLER, "to": mine_number, "talkSeconds": 20})["callSid"]
    theirs_call = system.play(**{"from": CALLER, "to": theirs_number, "talkSeconds": 25})["callSid"]
    for sid in (mine_call, theirs_call):
        fact_of(system, sid)
    [theirs_recording] = stored_recordings(system, theirs_call)
    stored_recordings(system, mine_call)
    key = system.issue_key(mine_id)

    # What a client key must never see: the other client's details, ids and calls.
    secrets = {theirs_name, "+14155551006", theirs_number, theirs_call}
    secrets.add(theirs_recording["recordingSid"])

    def ask(method: str, path: str, **kwargs: Any) -> requests.Response:
        reply = system.as_key(key, method, path, **kwargs)
        assert reply.status_code < 500, f"{method} {path}: {reply.status_code} {reply.text}"
        asked = path + json.dumps(kwargs.get("json", "")) + json.dumps(kwargs.get("params", ""))
        leaked = [s for s in secrets if s in reply.text and s not in asked]
        assert not leaked, f"{method} {path} leaked {leaked}: {reply.text[:500]}"
        return reply

    # Its own things are there.
    assert ask("GET", f"/api/clients/{mine_id}").status_code == 200
    assert [c["id"] for c in ask("GET", "/api/clients").json()["clients"]] == [mine_id]
    assert ask("GET", f"/api/twilio/recording/{mine_call}").status_code == 200

    theirs = f"/api/clients/{theirs_id}"
    mine = f"/api/clients/{mine_id}"
    hidden = [
        # router: the other client and its numbers, as objects of their own or of mine
        ("GET", theirs, {}),
        ("PATCH", theirs, {"json": {"name": "Taken"}}),
        ("PUT", theirs, {"json": {"name": "Taken"}}),
        ("GET", f"{theirs}/numbers", {}),
        ("GET", f"{theirs}/numbers/{theirs_number}", {}),
        ("PATCH", f"{theirs}/numbers/{theirs_number}", {"json": {"campaign": "x"}}),
        ("GET", f"{mine}/numbers/{theirs_number}", {}),
        ("PATCH", f"{mine}/numbers/{theirs_number}", {"json": {"campaign": "x"}}),
        (
            "POST",
            "/api/twilio/make-call",
            {
                "json": {
                    "fromNumber": theirs_number,
                    "toNumber": "+13125550123",
                    "clientId": theirs_id,
                    "message": "hi",
                }
            },
        ),
        (
            "POST",
            "/api/twilio/make-call",
            {
                "json": {
                    "fromNumber": theirs_number,
                    "toNumber": "+13125550123",
                    "clientId": mine_id,
                    "message": "hi",
                }
            },
        ),
        # analytics: the other client's calls and numbers
        ("GET", f"/api/calls/{theirs_call}", {}),
        ("GET", "/api/calls", {"params": {"clientId": theirs_id}}),
        ("GET", "/api/analytics/summary", {"params": {"clientId": theirs_id}}),
        # recordings
        ("GET", f"/api/twilio/recording/{theirs_call}", {}),
        ("GET", f"{theirs}/recordings/{theirs_recording['recordingSid']}", {}),
        ("GET", f"{mine}/recordings/{theirs_recording['recordingSid']}", {}),
        ("DELETE", f"{mine}/recordings/{theirs_recording['recordingSid']}", {}),
        ("POST", f"{theirs}/recordings/erasure", {"json": {"phoneNumber": CALLER}}),
    ]
    answers = {(method, path): ask(method, path, **kwargs) for method, path, kwargs in hidden}
    wrong = {where: r.status_code for where, r in answers.items() if r.status_code != 404}
    assert not wrong, f"not a 404: {wrong}"

    # Admin-only actions are refused whatever the client (403 names nobody).
    for method, path, body in (
        ("DELETE", theirs, None),
        ("POST", f"{theirs}/numbers", {"areaCode": "415"}),
        ("DELETE", f"{theirs}/numbers/{theirs_number}", None),
        ("POST", f"{theirs}/api-keys", {}),
        ("GET", f"{theirs}/api-keys", None),
        ("GET", "/api/twilio/numbers", None),
        ("GET", "/api/audit", None),
        ("POST", "/api/twilio/purchase-number", {"areaCode": "415"}),
    ):
        status = ask(method, path, json=body).status_code
        assert status in (403, 404), f"{method} {path}: {status}"

    # Lists without a client filter hold only its own calls.
    calls = ask("GET", "/api/calls").json()["calls"]
    assert {c["callSid"] for c in calls} == {mine_call}
    assert ask("GET", "/api/analytics/summary").json()["totalCalls"] == 1
    # Nothing of the other client moved.
    assert system.admin("GET", theirs).json()["name"] == theirs_name
    assert held_number(system, theirs_number)["clientId"] == theirs_id  # type: ignore[index]


def test_make_demo_runs_twice_and_after_twilio_forgot_everything(
    system: System, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "--calls",
        "6",
        "--edge",
        system.url,
        "--simulator",
        system.simulator,
        "--token",
        ADMIN,
    ]
    assert demo.main(args) == 0, capsys.readouterr().err
    first = capsys.readouterr().out
    assert demo.main(args) == 0, capsys.readouterr().err

    # A restarted `make run`: the simulator's account starts empty, the
    # deployment still believes it holds its numbers.
    simulator = system.services["twilio_sim"]
    simulator.stop()
    system.services["twilio_sim"] = ServiceProcess(
        "twilio_sim", system.env, port=simulator.port, log_dir=simulator.log_file.parent
    ).start()
    assert demo.main(args) == 0, capsys.readouterr().err
    third = capsys.readouterr().out

    names = [name for name, *_ in demo.CLIENTS]
    clients = system.admin("GET", "/api/clients").json()["clients"]
    for name in names:
        assert [c["name"] for c in clients].count(name) == 1, "the demo reuses its clients"
        assert name in first and name in third
    for client in (c for c in clients if c["name"] in names):
        [number] = system.admin("GET", f"/api/clients/{client['id']}/numbers").json()["numbers"]
        # The account holds the number again, configured by the deployment.
        fallback_at_twilio(system, number["phoneNumber"], forward_twimlet(number["forwardTo"]))
