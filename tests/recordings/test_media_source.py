"""Where the worker fetches media from: only the configured Twilio base, credentials only there.

A recording-status event is what ingress builds from a webhook, so anyone who
can forge a webhook (signature checks off) or write to Kafka chooses its
RecordingUrl. These tests forge one on a real listener and check that nothing
reaches it, that the recording is failed with the reason and audited, and that
a redirect away from the configured base loses the Authorization header.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from services.ingress.webhooks import WEBHOOKS, to_event
from services.recordings.app import build_runtime
from services.recordings.config import Config
from services.recordings.consumer import RecordingsWorker
from services.recordings.twilio_rest import TwilioRecordings
from switchboard.events import Event
from tests.kafka_read import read_topic
from tests.recordings.conftest import ACCOUNT_SID, Sim
from tests.recordings.recording_events import Publisher
from tests.recordings.stand_ins import Listener
from tests.recordings.test_worker import wait_for_status

SID = "RE" + "0123456789abcdef" * 2
PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{SID}"
OTHER_ACCOUNT = "AC" + "9" * 32


def webhook_event(params: dict[str, str]) -> Event:
    """The event ingress publishes for this recording status callback."""
    return to_event(
        WEBHOOKS["recording-status"], params, "https://edge.test/api/twilio/recording-status", None
    )


@pytest.mark.parametrize("base", ["api.twilio.com", "simulator"])
def test_a_forged_recording_url_gets_no_request_and_the_recording_fails_audited(
    base: str,
    sim: Sim,
    config: Config,
    publish: Publisher,
    kafka_bootstrap: str,
) -> None:
    params = sim.recorded_call(channels=2)
    sid = params["RecordingSid"]
    with Listener(body=sim.media(sid)) as elsewhere:
        forged = {**params, "RecordingUrl": elsewhere.url + sim.recording_path(sid)}
        configured = replace(
            config, twilio_api_base_url=None if base == "api.twilio.com" else sim.url
        )
        runtime = build_runtime(configured)
        worker = RecordingsWorker(configured, runtime.store, runtime.archiver, runtime.producer)
        try:
            publish.call_event(webhook_event(forged))
            worker.start()
            failed = wait_for_status(runtime, sid, "failed")
            entries = runtime.store.audit_log(target=sid)
        finally:
            worker.stop()
            runtime.close()
    assert elsewhere.seen == []
    assert failed.failure_reason is not None
    assert "RecordingUrl" in failed.failure_reason and elsewhere.url in failed.failure_reason
    [refused] = [e for e in entries if e.action == "recording.refused"]
    assert refused.detail["recordingUrl"] == forged["RecordingUrl"]
    assert "RecordingUrl" in refused.detail["reason"]
    [letter] = read_topic(kafka_bootstrap, configured.topics.dead_letters, expect=1)
    assert "RecordingUrl" in letter["value"]["reason"]


def test_a_redirect_away_from_the_configured_base_does_not_carry_the_credentials(
    sim: Sim,
    config: Config,
    publish: Publisher,
) -> None:
    params = sim.recorded_call(channels=2)
    sid = params["RecordingSid"]
    body = sim.media(sid)
    with Listener(body=body) as storage_host, Listener(redirect_to=storage_host.url) as twilio:
        # The configured base names itself in RecordingUrl, as the simulator does.
        params = {**params, "RecordingUrl": twilio.url + sim.recording_path(sid)}
        configured = replace(config, twilio_api_base_url=twilio.url)
        runtime = build_runtime(configured)
        worker = RecordingsWorker(configured, runtime.store, runtime.archiver, runtime.producer)
        try:
            publish.call_event(webhook_event(params))
            worker.start()
            stored = wait_for_status(runtime, sid, "stored")
        finally:
            worker.stop()
            runtime.close()
    assert stored.sha256 == hashlib.sha256(body).hexdigest()
    [(_, asked, to_twilio)] = twilio.seen
    assert asked.startswith(sim.recording_path(sid) + ".wav")
    assert to_twilio["Authorization"].startswith("Basic ")
    [(_, _, to_storage)] = storage_host.seen
    assert "Authorization" not in to_storage


def twilio(base: str | None = None) -> TwilioRecordings:
    return TwilioRecordings(ACCOUNT_SID, "token", base)


def test_a_recording_url_under_our_account_on_twilio_or_the_configured_base_is_accepted() -> None:
    assert twilio().refusal(SID, ACCOUNT_SID, "https://api.twilio.com" + PATH) is None
    assert twilio().refusal(SID, None, "https://API.twilio.com:443" + PATH + ".wav") is None
    assert twilio().refusal(SID, ACCOUNT_SID, None) is None
    sim = twilio("http://127.0.0.1:9999")
    assert sim.refusal(SID, ACCOUNT_SID, "http://127.0.0.1:9999" + PATH) is None


@pytest.mark.parametrize(
    ("sid", "account", "url"),
    [
        (SID, ACCOUNT_SID, "https://evil.test" + PATH),
        (SID, ACCOUNT_SID, "http://api.twilio.com" + PATH),
        (SID, ACCOUNT_SID, "https://api.twilio.com@10.0.0.1" + PATH),
        (SID, ACCOUNT_SID, "https://api.twilio.com" + PATH.replace(ACCOUNT_SID, OTHER_ACCOUNT)),
        (SID, ACCOUNT_SID, "https://api.twilio.com" + PATH.replace(SID, "RE" + "1" * 32)),
        (SID, OTHER_ACCOUNT, None),
        ("RE../../../Calls", ACCOUNT_SID, None),
    ],
)
def test_a_recording_event_naming_another_host_account_or_recording_is_refused(
    sid: str, account: str, url: str | None
) -> None:
    assert twilio().refusal(sid, account, url) is not None


def test_media_is_fetched_from_the_configured_base_whatever_the_event_said() -> None:
    url = twilio().media_url(SID, "wav", 2)
    assert url == f"https://api.twilio.com{PATH}.wav?RequestedChannels=2"
