"""Bad requests to Twilio's webhook endpoints: refused with a 4xx, and nothing reaches Kafka.

ingress runs in-process (Flask's test client) over a real Kafka topic with
signature checks on. Hypothesis draws forged and unsigned webhooks, signed
ones lacking a field Twilio always sends, Twilio's fields in the wrong media
type, bodies that are not UTF-8 or not form encoding, bodies over 64 KiB
(413) and wrong methods. None may get a 5xx or a 2xx, and afterwards the
topic and the spool must be empty.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from hypothesis import given

from services.ingress.app import create_app, runtime_of
from services.ingress.config import Config
from services.ingress.spool import Spool
from switchboard.kafka import Topics
from tests.fuzz.bad_input import BadRequest, bad_webhooks, oversized_webhooks
from tests.fuzz.conftest import FUZZ, FUZZ_LARGE, refused_as_expected, send
from tests.kafka_read import read_topic
from tests.support import free_port

TOKEN = "fuzz-twilio-auth-token"
BASE = "https://calls.example.com"


@pytest.fixture
def ingress(kafka_bootstrap: str, topics: Topics, tmp_path: Path) -> Iterator[FlaskClient]:
    config = Config(
        kafka_bootstrap=kafka_bootstrap,
        topics=topics,
        auth_token=TOKEN,
        validate_signatures=True,
        public_base=BASE,
        router_url=f"http://127.0.0.1:{free_port()}",  # never asked: nothing gets that far
        router_timeout=0.5,
        publish_timeout=2.0,
        spool_dir=str(tmp_path / "spool"),
        bind="127.0.0.1:0",
    )
    app = create_app(config)
    yield app.test_client()
    runtime_of(app).close()


def test_bad_webhooks_get_a_4xx_never_a_5xx_and_produce_no_event(
    ingress: FlaskClient, kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    @FUZZ
    @given(bad_webhooks(BASE, TOKEN))
    def refused(bad: BadRequest) -> None:
        problem = refused_as_expected(bad, send(ingress, bad))
        assert problem is None, f"{bad!r}: {problem}"

    refused()

    produced = read_topic(kafka_bootstrap, topics.call_events, settle=1.0)
    assert produced == [], f"{len(produced)} events from bad webhooks, first: {produced[0]}"
    assert Spool(tmp_path / "spool").depth() == 0


def test_signed_webhooks_over_64_kib_get_413_and_produce_no_event(
    ingress: FlaskClient, kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    @FUZZ_LARGE
    @given(oversized_webhooks(BASE, TOKEN))
    def refused(bad: BadRequest) -> None:
        problem = refused_as_expected(bad, send(ingress, bad))
        assert problem is None, f"{bad!r}: {problem}"

    refused()

    produced = read_topic(kafka_bootstrap, topics.call_events, settle=1.0)
    assert produced == [], f"{len(produced)} events from oversized webhooks"
    assert Spool(tmp_path / "spool").depth() == 0
