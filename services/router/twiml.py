"""TwiML for a routing decision, built only with twilio's VoiceResponse.

A forwarded call gets the recording disclaimer (when it is recorded and has
one), then a <Dial> whose action, recording and status callbacks all point at
the public base URL, where ingress receives them. An unassigned number gets a
polite message and <Hangup/>. An outbound call placed through make-call gets
its message, after the disclaimer when the client records. Pure: strings in,
XML text out.
"""

from __future__ import annotations

from functools import lru_cache

from twilio.twiml.voice_response import VoiceResponse

from services.router.routing import RoutingDecision

NOT_IN_SERVICE = "Sorry, the number you have called is not in service. Goodbye."
RECORD_MODE = "record-from-answer-dual"
# Twilio reads both as space-separated lists; a Python list would be written
# out as its repr.
NUMBER_EVENTS = "initiated ringing answered completed"
RECORDING_EVENTS = "completed"

DIAL_STATUS_PATH = "/api/twilio/dial-status"
RECORDING_STATUS_PATH = "/api/twilio/recording-status"
CALL_STATUS_PATH = "/api/twilio/status"


# Every call to a number gets the same document until its assignment changes
# (a new decision), so each is built once; the key is the whole decision.
@lru_cache(maxsize=8192)
def build_twiml(decision: RoutingDecision, base_url: str, dial_timeout: int) -> str:
    if decision.disposition == "forwarded":
        return forward_twiml(decision, base_url, dial_timeout)
    return not_in_service_twiml()


def forward_twiml(decision: RoutingDecision, base_url: str, dial_timeout: int) -> str:
    if decision.forward_to is None:
        raise ValueError("a forwarded call needs a forwardTo number")
    base = base_url.rstrip("/")
    response = VoiceResponse()
    if decision.record and decision.recording_disclaimer:
        response.say(decision.recording_disclaimer)
    recording: dict[str, str] = {}
    if decision.record:
        recording = {
            "record": RECORD_MODE,
            "recording_status_callback": base + RECORDING_STATUS_PATH,
            "recording_status_callback_event": RECORDING_EVENTS,
        }
    dial = response.dial(
        action=base + DIAL_STATUS_PATH,
        method="POST",
        timeout=dial_timeout,
        **recording,
    )
    dial.number(
        decision.forward_to,
        status_callback=base + CALL_STATUS_PATH,
        status_callback_event=NUMBER_EVENTS,
    )
    return str(response)


def not_in_service_twiml() -> str:
    response = VoiceResponse()
    response.say(NOT_IN_SERVICE)
    response.hangup()
    return str(response)


def message_twiml(message: str, disclaimer: str | None) -> str:
    """An outbound call's TwiML: the recording disclaimer (if any), then the message."""
    response = VoiceResponse()
    if disclaimer:
        response.say(disclaimer)
    response.say(message)
    return str(response)
