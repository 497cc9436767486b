"""The audio a simulated recording serves (pure: bytes from a duration).

WAV is what Twilio serves by default: 16-bit PCM at 8 kHz, one channel or two
for a dual-channel <Dial> recording. The simulator writes a soft tone (a
different pitch per channel, so the channels are told apart) with the stdlib
`wave` module. Audio is capped at MAX_AUDIO_SECONDS to keep responses light:
the recording's metadata carries the real duration, the media only a sample.

MP3 is a placeholder that decoders accept: a run of silent MPEG-1 Layer III
frames (mono, 32 kHz, 32 kbit/s, every side-information and main-data bit
zero), as long as the capped duration. It is not an encoding of the tone.
"""

from __future__ import annotations

import io
import math
import wave
from array import array

MAX_AUDIO_SECONDS = 5
SAMPLE_RATE = 8000
_PITCHES = (440.0, 660.0)
_AMPLITUDE = 3000

# MPEG-1 Layer III, no CRC; 32 kbit/s; 32 kHz; no padding; mono; original.
_MP3_HEADER = bytes((0xFF, 0xFB, 0x18, 0xC4))
_MP3_FRAME_BYTES = 144 * 32000 // 32000
_MP3_SAMPLES_PER_FRAME = 1152
_MP3_SAMPLE_RATE = 32000


def audio_seconds(duration: int) -> int:
    """Seconds of audio served for a recording of `duration` seconds."""
    return max(1, min(duration, MAX_AUDIO_SECONDS))


def wav_bytes(duration: int, channels: int) -> bytes:
    if channels not in (1, 2):
        raise ValueError(f"channels must be 1 or 2, got {channels}")
    frames = audio_seconds(duration) * SAMPLE_RATE
    samples = array("h")
    steps = [2 * math.pi * pitch / SAMPLE_RATE for pitch in _PITCHES[:channels]]
    for n in range(frames):
        for step in steps:
            samples.append(int(_AMPLITUDE * math.sin(step * n)))
    if samples.itemsize != 2:
        raise RuntimeError("platform short is not 16 bits")
    if array("h", [1]).tobytes() != b"\x01\x00":
        samples.byteswap()  # WAV is little-endian
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(samples.tobytes())
    return out.getvalue()


def mp3_bytes(duration: int) -> bytes:
    frame = _MP3_HEADER + bytes(_MP3_FRAME_BYTES - len(_MP3_HEADER))
    count = math.ceil(audio_seconds(duration) * _MP3_SAMPLE_RATE / _MP3_SAMPLES_PER_FRAME)
    return frame * count
