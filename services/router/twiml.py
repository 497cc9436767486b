"""TwiML router answers itself: an outbound call's message, built with twilio's VoiceResponse.

An incoming call's TwiML (forward, not in service, each call-flow step) is
the kernel's (switchboard/callflow_twiml.py), shared with ingress, which
answers from its copy of the number events while router is down. Pure:
strings in, XML text out.
"""

from __future__ import annotations

from twilio.twiml.voice_response import VoiceResponse

from switchboard.callflow_twiml import (
    CALL_STATUS_PATH,
    DIAL_STATUS_PATH,
    NOT_IN_SERVICE,
    NUMBER_EVENTS,
    RECORD_MODE,
    RECORDING_EVENTS,
    RECORDING_STATUS_PATH,
    build_twiml,
    forward_twiml,
    not_in_service_twiml,
)

__all__ = [
    "CALL_STATUS_PATH",
    "DIAL_STATUS_PATH",
    "NOT_IN_SERVICE",
    "NUMBER_EVENTS",
    "RECORDING_EVENTS",
    "RECORDING_STATUS_PATH",
    "RECORD_MODE",
    "build_twiml",
    "forward_twiml",
    "message_twiml",
    "not_in_service_twiml",
]


def message_twiml(message: str, disclaimer: str | None) -> str:
    """An outbound call's TwiML: the recording disclaimer (if any), then the message."""
    response = VoiceResponse()
    if disclaimer:
        response.say(disclaimer)
    response.say(message)
    return str(response)
