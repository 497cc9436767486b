"""The REST subset, driven through twilio-python's own Client (SimulatorHttpClient)."""

from __future__ import annotations

import io
import wave

import pytest
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.twiml.voice_response import VoiceResponse

from services.twilio_sim.redirect import SimulatorHttpClient
from tests.twilio_sim.receiver import WebhookReceiver
from tests.twilio_sim.simulator import Simulator

CALLER = "+14155550123"


def recorded_call(sim: Simulator, receiver: WebhookReceiver, number: str, talk_seconds: int) -> str:
    """Play an answered, dual-channel recorded call; the RecordingSid."""
    response = VoiceResponse()
    dial = response.dial(
        action=f"{receiver.base_url}/dial-status",
        record="record-from-answer-dual",
        recording_status_callback=f"{receiver.base_url}/recording-status",
    )
    dial.number("+12125550199")
    receiver.reply("/voice", str(response))
    sim.own_number(number, f"{receiver.base_url}/voice")
    sid = sim.place_call(**{"from": CALLER, "to": number, "talkSeconds": talk_seconds})
    play = sim.wait_for_call(sid)
    [recording_sid] = play["recordingSids"]
    return str(recording_sid)


def test_redirecting_http_client_keeps_path_and_query() -> None:
    client = SimulatorHttpClient("http://127.0.0.1:8090")
    assert (
        client.rewrite("https://api.twilio.com/2010-04-01/Accounts/AC1/Calls.json?To=%2B1")
        == "http://127.0.0.1:8090/2010-04-01/Accounts/AC1/Calls.json?To=%2B1"
    )
    with pytest.raises(ValueError):
        SimulatorHttpClient("127.0.0.1:8090")


def test_available_numbers_are_offered_in_the_requested_area_code(simulator: Simulator) -> None:
    offered = simulator.client().available_phone_numbers("US").local.list(area_code=415, limit=5)
    assert len(offered) == 5
    assert len({n.phone_number for n in offered}) == 5
    for number in offered:
        assert number.phone_number.startswith("+1415555")
        assert number.friendly_name == f"(415) 555-{number.phone_number[-4:]}"
        assert (number.locality, number.region, number.iso_country) == ("San Francisco", "CA", "US")
        assert number.capabilities["voice"] is True


def test_bought_number_is_listed_updated_and_released(simulator: Simulator) -> None:
    client = simulator.client()
    [offer] = client.available_phone_numbers("US").local.list(area_code=206, limit=1)
    bought = client.incoming_phone_numbers.create(
        phone_number=offer.phone_number,
        voice_url="https://calls.example.com/api/twilio/webhook",
        voice_fallback_url="https://twimlets.com/forward?PhoneNumber=%2B12065550100",
        status_callback="https://calls.example.com/api/twilio/status",
        friendly_name="Smile Dental main line",
    )
    assert bought.sid.startswith("PN") and len(bought.sid) == 34
    assert bought.phone_number == offer.phone_number
    assert bought.account_sid == simulator.account_sid
    assert bought.voice_url == "https://calls.example.com/api/twilio/webhook"
    assert bought.voice_method == "POST"
    assert bought.status_callback == "https://calls.example.com/api/twilio/status"
    assert bought.friendly_name == "Smile Dental main line"
    assert bought.date_created is not None

    still_offered = client.available_phone_numbers("US").local.list(area_code=206, limit=20)
    assert offer.phone_number not in {n.phone_number for n in still_offered}
    [listed] = client.incoming_phone_numbers.list(phone_number=offer.phone_number)
    assert listed.sid == bought.sid

    updated = client.incoming_phone_numbers(bought.sid).update(
        voice_url="https://other.example.com/api/twilio/webhook"
    )
    assert updated.voice_url == "https://other.example.com/api/twilio/webhook"
    assert client.incoming_phone_numbers(bought.sid).fetch().voice_url == updated.voice_url

    assert client.incoming_phone_numbers(bought.sid).delete() is True
    with pytest.raises(TwilioRestException) as gone:
        client.incoming_phone_numbers(bought.sid).fetch()
    assert gone.value.status == 404
    assert gone.value.code == 20404


def test_buying_by_area_code_picks_a_free_number(simulator: Simulator) -> None:
    client = simulator.client()
    first = client.incoming_phone_numbers.create(area_code="617")
    second = client.incoming_phone_numbers.create(area_code="617")
    assert first.phone_number.startswith("+1617")
    assert second.phone_number.startswith("+1617")
    assert first.phone_number != second.phone_number


def test_buying_an_owned_or_invalid_number_is_rejected(simulator: Simulator) -> None:
    client = simulator.client()
    owned = client.incoming_phone_numbers.create(area_code="512")
    with pytest.raises(TwilioRestException) as taken:
        client.incoming_phone_numbers.create(phone_number=owned.phone_number)
    assert (taken.value.status, taken.value.code) == (400, 21422)
    with pytest.raises(TwilioRestException) as invalid:
        client.incoming_phone_numbers.create(phone_number="555-CALL-NOW")
    assert (invalid.value.status, invalid.value.code) == (400, 21421)


def test_number_list_pages_through_every_owned_number(simulator: Simulator) -> None:
    client = simulator.client()
    for _ in range(3):
        client.incoming_phone_numbers.create(area_code="404")
    listed = client.incoming_phone_numbers.list(page_size=2)
    atlanta = [n for n in listed if n.phone_number.startswith("+1404")]
    assert len(atlanta) == 3


def test_wrong_credentials_get_twilio_401(simulator: Simulator) -> None:
    intruder = simulator.client(auth_token="not-the-token")
    with pytest.raises(TwilioRestException) as denied:
        intruder.api.v2010.accounts(simulator.account_sid).fetch()
    assert (denied.value.status, denied.value.code) == (401, 20003)
    with pytest.raises(TwilioException):  # list pages raise the plain exception
        intruder.incoming_phone_numbers.list()

    url = f"{simulator.base_url}/2010-04-01/Accounts/{simulator.account_sid}/Calls.json"
    reply = requests.get(url, timeout=10)
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"].startswith("Basic")
    assert reply.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }


def test_account_is_fetchable_with_the_right_credentials(simulator: Simulator) -> None:
    account = simulator.client().api.v2010.accounts(simulator.account_sid).fetch()
    assert (account.sid, account.status) == (simulator.account_sid, "active")


def test_another_accounts_path_is_404(simulator: Simulator) -> None:
    other = "AC" + "1" * 32
    reply = requests.get(
        f"{simulator.base_url}/2010-04-01/Accounts/{other}/Calls.json",
        auth=(simulator.account_sid, simulator.auth_token),
        timeout=10,
    )
    assert reply.status_code == 404
    assert reply.json()["code"] == 20404


def test_recording_metadata_and_wav_media_are_served(
    simulator: Simulator, receiver: WebhookReceiver, tracking_number: str
) -> None:
    recording_sid = recorded_call(simulator, receiver, tracking_number, talk_seconds=42)
    recording = simulator.client().recordings(recording_sid).fetch()
    assert recording.sid == recording_sid
    assert recording.duration == "42"
    assert recording.channels == 2
    assert recording.status == "completed"
    assert recording.source == "DialVerb"
    assert recording.call_sid.startswith("CA")

    media_url = f"{simulator.base_url}{recording.uri.removesuffix('.json')}"
    auth = (simulator.account_sid, simulator.auth_token)
    wav = requests.get(media_url + ".wav", auth=auth, timeout=10)
    assert wav.status_code == 200
    assert wav.headers["Content-Type"].startswith("audio/")
    with wave.open(io.BytesIO(wav.content)) as audio:
        assert audio.getnchannels() == 2
        assert audio.getframerate() == 8000
        assert audio.getsampwidth() == 2
        assert audio.getnframes() == 5 * 8000  # audio is capped; metadata has the real length
    assert requests.get(media_url, auth=auth, timeout=10).content == wav.content

    mp3 = requests.get(media_url + ".mp3", auth=auth, timeout=10)
    assert mp3.status_code == 200
    assert mp3.headers["Content-Type"] == "audio/mpeg"
    assert mp3.content[:2] == b"\xff\xfb"


def test_recording_media_needs_the_account_credentials(
    simulator: Simulator, receiver: WebhookReceiver, tracking_number: str
) -> None:
    recording_sid = recorded_call(simulator, receiver, tracking_number, talk_seconds=3)
    url = (
        f"{simulator.base_url}/2010-04-01/Accounts/{simulator.account_sid}"
        f"/Recordings/{recording_sid}.wav"
    )
    assert requests.get(url, timeout=10).status_code == 401
    short = requests.get(url, auth=(simulator.account_sid, simulator.auth_token), timeout=10)
    with wave.open(io.BytesIO(short.content)) as audio:
        assert audio.getnframes() == 3 * 8000


def test_deleted_recording_is_gone_with_its_media(
    simulator: Simulator, receiver: WebhookReceiver, tracking_number: str
) -> None:
    recording_sid = recorded_call(simulator, receiver, tracking_number, talk_seconds=8)
    client = simulator.client()
    assert client.recordings(recording_sid).delete() is True
    with pytest.raises(TwilioRestException) as gone:
        client.recordings(recording_sid).fetch()
    assert gone.value.status == 404
    media = requests.get(
        f"{simulator.base_url}/2010-04-01/Accounts/{simulator.account_sid}"
        f"/Recordings/{recording_sid}.wav",
        auth=(simulator.account_sid, simulator.auth_token),
        timeout=10,
    )
    assert media.status_code == 404
    with pytest.raises(TwilioRestException):
        client.recordings(recording_sid).delete()


def test_recordings_are_listed_by_call(
    simulator: Simulator, receiver: WebhookReceiver, tracking_number: str
) -> None:
    recording_sid = recorded_call(simulator, receiver, tracking_number, talk_seconds=4)
    client = simulator.client()
    call_sid = client.recordings(recording_sid).fetch().call_sid
    assert [r.sid for r in client.recordings.list(call_sid=call_sid)] == [recording_sid]


def test_outbound_call_fetches_twiml_and_reports_its_progress(
    simulator: Simulator, receiver: WebhookReceiver, tracking_number: str
) -> None:
    greeting = VoiceResponse()
    greeting.say("Hello from Smile Dental. Connecting you now.")
    greeting.dial("+12125550199")
    receiver.reply("/outbound", str(greeting))
    client = simulator.client()
    simulator.own_number(tracking_number, f"{receiver.base_url}/voice")
    call = client.calls.create(
        to="+14155559999",
        from_=tracking_number,
        url=f"{receiver.base_url}/outbound",
        status_callback=f"{receiver.base_url}/progress",
        status_callback_event=["initiated", "ringing", "answered", "completed"],
    )
    assert call.sid.startswith("CA")
    assert (call.status, call.direction) == ("queued", "outbound-api")

    simulator.wait_for_call(call.sid)
    got = receiver.received()
    assert all(r.signature_valid for r in got)
    progress = [r.params for r in got if r.path == "/progress"]
    assert [p["CallStatus"] for p in progress] == [
        "initiated",
        "ringing",
        "in-progress",
        "completed",
    ]
    assert [p["SequenceNumber"] for p in progress] == ["0", "1", "2", "3"]
    assert int(progress[-1]["CallDuration"]) > 20  # the dialed party talks 20 s
    [twiml_request] = receiver.received("/outbound")
    assert twiml_request.params["Direction"] == "outbound-api"
    assert twiml_request.params["CallStatus"] == "in-progress"
    assert twiml_request.params["To"] == "+14155559999"

    fetched = client.calls(call.sid).fetch()
    assert fetched.status == "completed"
    assert int(fetched.duration) == int(progress[-1]["CallDuration"])
    [child] = client.calls.list(parent_call_sid=call.sid)
    assert (child.direction, child.to, child.status) == (
        "outbound-dial",
        "+12125550199",
        "completed",
    )


def test_outbound_call_without_twiml_is_rejected(simulator: Simulator) -> None:
    with pytest.raises(TwilioRestException) as refused:
        simulator.client().calls.create(to="+14155559999", from_="+14155550100")
    assert (refused.value.status, refused.value.code) == (400, 21205)
