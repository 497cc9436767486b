"""A call flow's dial-status callback when router cannot say what follows.

The callback is kept as an event like any other, and the call ends after its
<Dial> as it would without a flow, rather than failing the caller's call.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from devstack.processes import free_port
from services.ingress.app import create_app, runtime_of
from services.ingress.config import Config
from switchboard.kafka import Topics
from tests.kafka_read import read_topic
from tests.twilio_calls import ForwardedCall, sign

TOKEN = "test-auth-token"
BASE = "https://calls.example.com"


@pytest.fixture
def ingress(kafka_bootstrap: str, topics: Topics, tmp_path: Path) -> Iterator[Flask]:
    # Nothing listens on this port: router is down.
    config = Config(
        kafka_bootstrap=kafka_bootstrap,
        topics=topics,
        auth_token=TOKEN,
        validate_signatures=True,
        public_base=BASE,
        router_url=f"http://127.0.0.1:{free_port()}",
        router_timeout=0.5,
        publish_timeout=2.0,
        spool_dir=str(tmp_path),
        bind="127.0.0.1:0",
    )
    app = create_app(config)
    yield app
    runtime_of(app).close()


def test_without_router_a_flow_dial_ends_the_call_and_is_still_kept(
    ingress: Flask, kafka_bootstrap: str, topics: Topics
) -> None:
    call = ForwardedCall(to="+14155550100", forward_to="+14155550101")
    (hook,) = [h for h in call.unanswered() if h.path == "/api/twilio/dial-status"]
    path = hook.path + "?flowStep=0"
    signature = sign(TOKEN, BASE + path, hook.params)
    reply = ingress.test_client().post(
        path, data=hook.params, headers={"X-Twilio-Signature": signature}
    )
    assert reply.status_code == 200
    assert [child.tag for child in ET.fromstring(reply.get_data(as_text=True))] == ["Hangup"]
    found = read_topic(kafka_bootstrap, topics.call_events, expect=1)
    assert [m["value"]["type"] for m in found] == ["call.dial-completed"]
    assert found[0]["value"]["data"]["url"] == BASE + path
