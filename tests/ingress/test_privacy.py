"""A caller's erasure in ingress's spool: spooled events keep everything but the number."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from services.ingress.app import create_app, runtime_of
from services.ingress.spool import Spool, SpooledEvent
from services.ingress.webhooks import WEBHOOKS, to_event
from switchboard import events
from switchboard.kafka import Topics
from switchboard.privacy import caller_token
from tests.ingress.test_app import BASE, make_config
from tests.twilio_calls import ForwardedCall

ADMIN = "ingress-admin-token"
CALLER = "+12125550147"
TOKEN = caller_token("test-secret", CALLER)


def spool_call(spool: Spool, caller: str) -> str:
    """Spool the incoming-call event of a call from `caller`, as ingress does; its CallSid."""
    call = ForwardedCall(to="+14155550100", forward_to="+14155559999", caller=caller)
    hook = call.incoming()
    event = to_event(WEBHOOKS["voice"], hook.params, BASE + hook.path, None)
    spool.append(SpooledEvent("calls", event.callSid, event.to_json()))
    return call.call_sid


def spooled(spool: Spool) -> list[bytes]:
    return [path.read_bytes() for path in sorted(spool.folder.glob("*.event"))]


def test_scrub_replaces_the_number_in_spooled_events_and_leaves_other_callers(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path)
    erased_sid = spool_call(spool, CALLER)
    other_sid = spool_call(spool, "+12125550999")

    assert spool.scrub(CALLER, TOKEN) == 1

    contents = spooled(spool)
    assert len(contents) == 2
    assert not any(CALLER.encode() in content for content in contents)
    decoded = [events.decode(json.loads(c)["value"].encode()) for c in contents]
    by_sid = {event.callSid: event for event in decoded}
    assert by_sid[erased_sid].data["params"]["From"] == TOKEN
    assert by_sid[other_sid].data["params"]["From"] == "+12125550999"
    assert spool.scrub(CALLER, TOKEN) == 0  # a repeated erasure finds nothing left


def test_spool_erasure_endpoint_is_for_the_admin_and_refuses_bad_numbers(
    topics: Topics, tmp_path: Path
) -> None:
    # No broker: what is spooled stays spooled while the test looks.
    config = replace(
        make_config("127.0.0.1:1", topics, tmp_path, "http://127.0.0.1:1"), admin_token=ADMIN
    )
    app = create_app(config)
    try:
        client = app.test_client()
        spool = runtime_of(app).sink.spool
        spool_call(spool, CALLER)
        path = "/internal/privacy/spool-erasure"
        body = {"number": CALLER, "token": TOKEN}

        assert client.post(path, json=body).status_code == 401
        refused = client.post(path, json=body, headers={"Authorization": "Bearer nope"})
        assert refused.status_code == 403
        admin = {"Authorization": f"Bearer {ADMIN}"}
        bad = client.post(path, json={"number": "12345", "token": TOKEN}, headers=admin)
        assert bad.status_code == 400 and bad.json["error"]["code"] == "invalid_field"
        assert any(CALLER.encode() in content for content in spooled(spool))

        done = client.post(path, json=body, headers=admin)
        assert done.status_code == 200, done.json
        assert done.json == {"rewritten": 1}
        assert not any(CALLER.encode() in content for content in spooled(spool))
    finally:
        runtime_of(app).close()
