"""ingress against a real Kafka broker: what gets a 2xx is durable, what is bad is not."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.ingress.app import create_app, runtime_of
from services.ingress.config import Config
from services.ingress.spool import Spool
from switchboard import events
from switchboard.kafka import EventProducer, Topics
from tests.kafka_read import read_topic
from tests.twilio_calls import ForwardedCall, Webhook, sign

TOKEN = "test-auth-token"
BASE = "https://calls.example.com"


def make_config(
    bootstrap: str, topics: Topics, spool: Path, router_url: str, publish_timeout: float = 2.0
) -> Config:
    return Config(
        kafka_bootstrap=bootstrap,
        topics=topics,
        auth_token=TOKEN,
        validate_signatures=True,
        public_base=BASE,
        router_url=router_url,
        router_timeout=0.5,
        publish_timeout=publish_timeout,
        spool_dir=str(spool),
        bind="127.0.0.1:0",
    )


@pytest.fixture
def silent_router() -> Iterator[str]:
    """A router that accepts connections and never answers (a hung process)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def hold() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


@pytest.fixture
def make_client() -> Iterator[Callable[[Config], FlaskClient]]:
    """Test clients over create_app; their Kafka producers and drainers are closed after."""
    apps: list[Flask] = []

    def build(config: Config) -> FlaskClient:
        app = create_app(config)
        apps.append(app)
        return app.test_client()

    yield build
    for app in apps:
        runtime_of(app).close()


def post(client: FlaskClient, hook: Webhook, signature: str | None = None) -> object:
    sig = signature if signature is not None else sign(TOKEN, BASE + hook.path, hook.params)
    return client.post(hook.path, data=hook.params, headers={"X-Twilio-Signature": sig})


def test_signed_webhooks_each_become_one_event_keyed_by_the_parent_call(
    kafka_bootstrap: str,
    topics: Topics,
    tmp_path: Path,
    silent_router: str,
    make_client: Callable[[Config], FlaskClient],
) -> None:
    client = make_client(make_config(kafka_bootstrap, topics, tmp_path, silent_router))
    call = ForwardedCall(to="+14155550100", forward_to="+14155559999")
    hooks = call.answered()
    for hook in hooks:
        assert post(client, hook).status_code == 200
    found = read_topic(kafka_bootstrap, topics.call_events, expect=len(hooks))
    assert len(found) == len(hooks)
    assert {m["key"] for m in found} == {call.call_sid}
    assert len({m["partition"] for m in found}) == 1
    for message in found:
        events.validate(message["value"])
    types = [m["value"]["type"] for m in found]
    assert types.count("call.status-reported") == 5
    assert types.count("call.dial-completed") == 1
    assert types.count("recording.status-reported") == 1


def test_invalid_signature_gets_403_and_nothing_reaches_kafka(
    kafka_bootstrap: str,
    topics: Topics,
    tmp_path: Path,
    silent_router: str,
    make_client: Callable[[Config], FlaskClient],
) -> None:
    client = make_client(make_config(kafka_bootstrap, topics, tmp_path, silent_router))
    call = ForwardedCall(to="+14155550100", forward_to="+14155559999")
    hook = call.incoming()
    forged = sign("not-the-token", BASE + hook.path, hook.params)
    wrong_url = sign(TOKEN, "https://elsewhere.example.com" + hook.path, hook.params)
    for signature in (forged, wrong_url, ""):
        reply = post(client, hook, signature)
        assert reply.status_code == 403
        assert reply.get_json()["error"]["code"] == "invalid_signature"
    tampered = Webhook(hook.path, {**hook.params, "From": "+15550000000"})
    assert post(client, tampered, sign(TOKEN, BASE + hook.path, hook.params)).status_code == 403
    assert read_topic(kafka_bootstrap, topics.call_events, settle=2.0) == []


def test_webhook_missing_required_fields_gets_400_and_produces_nothing(
    kafka_bootstrap: str,
    topics: Topics,
    tmp_path: Path,
    silent_router: str,
    make_client: Callable[[Config], FlaskClient],
) -> None:
    client = make_client(make_config(kafka_bootstrap, topics, tmp_path, silent_router))
    hook = Webhook("/api/twilio/status", {"CallStatus": "completed"})
    reply = post(client, hook)
    assert reply.status_code == 400
    assert "CallSid" in reply.get_json()["error"]["message"]
    assert read_topic(kafka_bootstrap, topics.call_events, settle=2.0) == []


def test_the_guides_own_test_webhook_answers_twiml_when_signature_checks_are_off(
    kafka_bootstrap: str,
    topics: Topics,
    tmp_path: Path,
    silent_router: str,
    make_client: Callable[[Config], FlaskClient],
) -> None:
    """The integration guide's curl body, as written: no AccountSid, no signature."""
    config = make_config(kafka_bootstrap, topics, tmp_path, silent_router)
    client = make_client(replace(config, validate_signatures=False, account_sid="AC" + "1" * 32))
    reply = client.post(
        "/api/twilio/webhook",
        data="CallSid=test123&From=%2B1234567890&To=%2B1987654321&CallStatus=ringing",
        content_type="application/x-www-form-urlencoded",
    )
    assert reply.status_code == 200, reply.data
    assert reply.mimetype == "text/xml"
    assert b"<Response>" in reply.data
    found = read_topic(kafka_bootstrap, topics.call_events, expect=2)
    received = [m["value"] for m in found if m["value"]["type"] == "call.received"]
    assert received[0]["data"]["params"]["AccountSid"] == "AC" + "1" * 32


def test_hung_router_gets_fallback_twiml_and_the_call_is_recorded(
    kafka_bootstrap: str,
    topics: Topics,
    tmp_path: Path,
    silent_router: str,
    make_client: Callable[[Config], FlaskClient],
) -> None:
    # How long ingress waits for router is the config's ROUTER_TIMEOUT_SECONDS;
    # speed is measured in bench/, not asserted here.
    client = make_client(make_config(kafka_bootstrap, topics, tmp_path, silent_router))
    call = ForwardedCall(to="+14155550100", forward_to="+14155559999")
    reply = post(client, call.incoming())
    assert reply.status_code == 200
    assert reply.mimetype == "text/xml"
    assert b"<Say>" in reply.data and b"<Hangup" in reply.data
    found = read_topic(kafka_bootstrap, topics.call_events, expect=2)
    assert sorted(m["value"]["type"] for m in found) == ["call.fallback-served", "call.received"]


def test_events_wait_in_the_spool_while_kafka_is_unreachable_then_drain_in_order(
    kafka_bootstrap: str,
    topics: Topics,
    tmp_path: Path,
    silent_router: str,
    make_client: Callable[[Config], FlaskClient],
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_broker = f"127.0.0.1:{closed.getsockname()[1]}"
    config = make_config(dead_broker, topics, tmp_path, silent_router, publish_timeout=0.3)
    client = make_client(config)
    call = ForwardedCall(to="+14155550100", forward_to="+14155559999")
    hooks = call.unanswered()
    for hook in hooks:
        assert post(client, hook).status_code == 200
    spool = Spool(tmp_path)
    assert spool.depth() == len(hooks)
    producer = EventProducer(kafka_bootstrap)
    sent = spool.drain(producer, timeout=10)
    producer.close()
    assert sent == len(hooks)
    assert spool.depth() == 0
    found = read_topic(kafka_bootstrap, topics.call_events, expect=len(hooks))
    assert [m["value"]["data"]["params"] for m in found] == [h.params for h in hooks]


def test_unwritable_spool_with_kafka_down_answers_503_not_2xx(
    kafka_bootstrap: str,
    topics: Topics,
    tmp_path: Path,
    silent_router: str,
    make_client: Callable[[Config], FlaskClient],
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_broker = f"127.0.0.1:{closed.getsockname()[1]}"
    spool_dir = tmp_path / "spool"
    client = make_client(
        make_config(dead_broker, topics, spool_dir, silent_router, publish_timeout=0.3)
    )
    spool_dir.chmod(0o500)
    try:
        # root ignores permission bits, so make the folder unusable another way
        (spool_dir / "blocker").mkdir(exist_ok=True)
        spool_dir.chmod(0o700)
        for entry in spool_dir.iterdir():
            entry.rmdir()
        spool_dir.rmdir()
        spool_dir.write_text("not a folder")
        call = ForwardedCall(to="+14155550100", forward_to="+14155559999")
        reply = post(client, call.unanswered()[0])
        assert reply.status_code == 503
    finally:
        if spool_dir.is_file():
            spool_dir.unlink()


def test_metrics_count_webhooks_and_report_spool_depth(
    kafka_bootstrap: str,
    topics: Topics,
    tmp_path: Path,
    silent_router: str,
    make_client: Callable[[Config], FlaskClient],
) -> None:
    client = make_client(make_config(kafka_bootstrap, topics, tmp_path, silent_router))
    call = ForwardedCall(to="+14155550100", forward_to="+14155559999")
    for hook in call.unanswered():
        assert post(client, hook).status_code == 200
    text = client.get("/metrics").get_data(as_text=True)
    assert 'events_produced_total{service="ingress",type="call.dial-completed"}' in text
    assert "ingress_spool_depth" in text
    assert 'route="/api/twilio/status",service="ingress",status="200"' in text


def test_dead_letters_are_counted_by_consumer(kafka_bootstrap: str, topics: Topics) -> None:
    from confluent_kafka import Consumer, Producer

    from switchboard.kafka import dead_letter
    from switchboard.metrics import dead_letter_counter

    raw = Producer({"bootstrap.servers": kafka_bootstrap})
    raw.produce(topics.call_events, b"garbage")
    assert raw.flush(10) == 0
    raw.close()
    reader = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"g-{topics.prefix}",
            "auto.offset.reset": "earliest",
        }
    )
    reader.subscribe([topics.call_events])
    msg = None
    for _ in range(100):
        msg = reader.poll(0.2)
        if msg is not None and not msg.error():
            break
    reader.close()
    assert msg is not None
    before = dead_letter_counter().labels("test-consumer")._value.get()
    producer = EventProducer(kafka_bootstrap)
    dead_letter(producer, topics, msg, "not JSON", "test-consumer")
    producer.close()
    assert dead_letter_counter().labels("test-consumer")._value.get() == before + 1
    landed = read_topic(kafka_bootstrap, topics.dead_letters, expect=1)
    assert landed[0]["value"]["reason"] == "not JSON"
