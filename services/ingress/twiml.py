"""The TwiML ingress answers itself: the fallback and the callback replies.

Routing TwiML comes from router; ingress only needs a safe apology when
router cannot answer in time, and the short replies to callbacks.
"""

from __future__ import annotations

from twilio.twiml.voice_response import VoiceResponse

FALLBACK_MESSAGE = (
    "We are sorry, we cannot connect your call right now. Please try again in a few minutes."
)


def fallback() -> str:
    response = VoiceResponse()
    response.say(FALLBACK_MESSAGE)
    response.hangup()
    return str(response)


def after_dial() -> str:
    response = VoiceResponse()
    response.hangup()
    return str(response)


def empty() -> str:
    return str(VoiceResponse())
