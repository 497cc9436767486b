"""Recording media and number geography (pure)."""

from __future__ import annotations

import io
import wave

import pytest

from services.twilio_sim import geography, media
from services.twilio_sim.config import DEV_ACCOUNT_SID, Config
from switchboard.settings import ConfigError


@pytest.mark.parametrize("channels", [1, 2])
def test_wav_is_pcm_at_8khz_with_the_recordings_channels(channels: int) -> None:
    with wave.open(io.BytesIO(media.wav_bytes(3, channels))) as audio:
        assert audio.getnchannels() == channels
        assert audio.getframerate() == 8000
        assert audio.getsampwidth() == 2
        assert audio.getnframes() == 3 * 8000
        assert any(audio.readframes(100))  # a tone, not silence


def test_audio_is_capped_but_never_empty() -> None:
    assert media.audio_seconds(3600) == media.MAX_AUDIO_SECONDS
    assert media.audio_seconds(0) == 1


def test_mp3_is_a_run_of_whole_mpeg_frames() -> None:
    data = media.mp3_bytes(2)
    assert len(data) % 144 == 0
    assert all(data[i : i + 4] == b"\xff\xfb\x18\xc4" for i in range(0, len(data), 144))


def test_geography_and_names_of_numbers() -> None:
    assert geography.locate("+14155550123").city == "SAN FRANCISCO"
    assert geography.locate("+19995550123").country == "US"
    assert geography.locate("+442071838750").country == "GB"
    assert geography.locate("anonymous") == geography.NOWHERE
    assert geography.friendly_name("+14155550100") == "(415) 555-0100"
    assert geography.offer(["415"], {"+14155550100"}, 2) == ["+14155550101", "+14155550102"]
    assert geography.offer(["415"], set(), 1, contains="555019*") == ["+14155550190"]


def test_config_defaults_to_dev_credentials_and_rejects_bad_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in (
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_SIM_BIND",
        "TWILIO_SIM_PUBLIC_URL",
        "TWILIO_SIM_CALLBACK_DELAY_SECONDS",
    ):
        monkeypatch.delenv(name, raising=False)
    config = Config.from_env()
    assert config.account_sid == DEV_ACCOUNT_SID
    assert config.public_url == "http://127.0.0.1:8090"
    monkeypatch.setenv("TWILIO_SIM_BIND", "0.0.0.0:9000")
    assert Config.from_env().public_url == "http://127.0.0.1:9000"
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "ACnope")
    with pytest.raises(ConfigError, match="TWILIO_ACCOUNT_SID"):
        Config.from_env()
