"""TwiML for a routing decision and each step of a number's call flow (pure, twilio.twiml).

A call to a number without a flow gets the recording disclaimer (when it is
recorded and has one), then a <Dial> of the number's forwardTo whose action,
recording and status callbacks all point at the public base URL, where
ingress receives them; an unassigned number gets a polite message and
<Hangup/>. A call to a number with a flow starts with `incoming_twiml`: in
hours it rings the flow's targets (all at once in one <Dial>, or the first
of them when they ring one after another), after hours it goes to voicemail
or to the after-hours number. Every ringing <Dial> reports to ingress's
dial-status callback with `flowStep` in its query, so that the call's
`call.dial-completed` event is kept as for any call, and `after_dial_twiml`
says what comes next from DialCallStatus and DialBridged: the next target,
or voicemail / forward when nobody took the call.

Whisper and screening run on the answering leg, before the bridge, through
<Number url=...>: `answer_twiml` says the whisper and, with screening, asks
for 1 with a one-digit <Gather>; `screen_twiml` answers the <Gather>. A leg
that ends in <Hangup/> there is not bridged (DialBridged=false), so a target
that does not press 1, or a voicemail box that picks up, counts as not
answered. Router and ingress (from its copy, while router is down) serve the
same documents; strings in, XML text out.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlencode

from twilio.twiml.voice_response import Dial, VoiceResponse

from switchboard.callflow import (
    MAX_SAY,
    MAX_TARGETS,
    UNSAFE_TEXT,
    Flow,
    RingTarget,
    RoutingDecision,
)

NOT_IN_SERVICE = "Sorry, the number you have called is not in service. Goodbye."
RECORD_MODE = "record-from-answer-dual"
# Twilio reads both as space-separated lists; a Python list would be written
# out as its repr.
NUMBER_EVENTS = "initiated ringing answered completed"
RECORDING_EVENTS = "completed"

# Ingress's callbacks, and the paths Twilio fetches while a flow runs (the
# answering leg, the screening digit, the end of a voicemail): all pure, so
# ingress serves them whether router is up or not.
DIAL_STATUS_PATH = "/api/twilio/dial-status"
RECORDING_STATUS_PATH = "/api/twilio/recording-status"
CALL_STATUS_PATH = "/api/twilio/status"
FLOW_ANSWER_PATH = "/api/twilio/flow/answer"
FLOW_SCREEN_PATH = "/api/twilio/flow/screen"
VOICEMAIL_DONE_PATH = "/api/twilio/flow/voicemail-done"
STEP_PARAM = "flowStep"
WHISPER_PARAM = "whisper"
SCREEN_PARAM = "screen"
# The step of the after-hours forward: nothing follows it.
FORWARD_STEP = "forward"
SCREEN_PROMPT = "Press 1 to accept this call."
SCREEN_ACCEPT = "1"
# Seconds the screening <Gather> waits for the digit.
SCREEN_TIMEOUT_SEC = 8
NO_CAMPAIGN = "no campaign"
# DialCallStatus values of a call someone took; anything else means nobody did.
ANSWERED = ("completed", "answered")


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
    dial = response.dial(
        action=base + DIAL_STATUS_PATH,
        method="POST",
        timeout=dial_timeout,
        **_recording(decision, base),
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


# As build_twiml: the same decision (flow and in/out of hours included) gets
# the same document, so each is built once.
@lru_cache(maxsize=8192)
def routed_twiml(decision: RoutingDecision, base_url: str, dial_timeout: int) -> str:
    """An incoming call's TwiML: its flow's first step, or as before flows for a number without."""
    if decision.flow is None or decision.disposition != "forwarded":
        return build_twiml(decision, base_url, dial_timeout)
    return incoming_twiml(decision, decision.flow, decision.in_hours, base_url, dial_timeout)


def incoming_twiml(
    decision: RoutingDecision, flow: Flow, in_hours: bool, base_url: str, dial_timeout: int
) -> str:
    """The first TwiML of a call to a number with a flow (`decision` is a forwarded one)."""
    response = VoiceResponse()
    if decision.record and decision.recording_disclaimer:
        response.say(decision.recording_disclaimer)
    if in_hours:
        _ring(response, decision, flow, 0, base_url, dial_timeout)
    else:
        _nobody_answers(response, decision, flow, base_url)
    return str(response)


def after_dial_twiml(
    decision: RoutingDecision,
    flow: Flow,
    step: int,
    dial_call_status: str,
    dial_bridged: str | None,
    base_url: str,
    dial_timeout: int,
) -> str:
    """What follows the ringing <Dial> of `step`: hang up if taken, else the next step.

    DialBridged=false means the answering leg ended before the bridge (screening
    not passed), which is not an answer whatever DialCallStatus says.
    """
    response = VoiceResponse()
    taken = dial_call_status in ANSWERED and dial_bridged != "false"
    targets = ring_targets(flow, decision, dial_timeout)
    sequential = flow.ring is not None and flow.ring.strategy == "sequential"
    if taken:
        response.hangup()
    elif sequential and step + 1 < len(targets):
        _ring(response, decision, flow, step + 1, base_url, dial_timeout)
    else:
        _nobody_answers(response, decision, flow, base_url)
    return str(response)


def answer_twiml(whisper: str | None, screening: bool, base_url: str) -> str:
    """The answering leg's TwiML: the whisper, then (with screening) press 1 or be hung up on."""
    response = VoiceResponse()
    if whisper:
        response.say(whisper)
    if screening:
        gather = response.gather(
            num_digits=1,
            timeout=SCREEN_TIMEOUT_SEC,
            action=base_url.rstrip("/") + FLOW_SCREEN_PATH,
            method="POST",
        )
        gather.say(SCREEN_PROMPT)
        # No digit at all: the <Gather> falls through to here and the leg is not bridged.
        response.hangup()
    return str(response)


def screen_twiml(digits: str | None) -> str:
    """The screening <Gather>'s answer: 1 ends the leg's TwiML (bridged), anything else hangs up."""
    response = VoiceResponse()
    if (digits or "").strip() != SCREEN_ACCEPT:
        response.hangup()
    return str(response)


def voicemail_done_twiml() -> str:
    """After <Record>: hang up (without an action, Twilio would fetch the call's TwiML again)."""
    response = VoiceResponse()
    response.hangup()
    return str(response)


def next_step_twiml(
    decision: RoutingDecision,
    step: int | None,
    dial_call_status: str,
    dial_bridged: str | None,
    base_url: str,
    dial_timeout: int,
) -> str:
    """What follows a flow's <Dial> at `step` (None: the after-hours forward, which ends it).

    A number whose flow is gone since the call began (or that is no longer
    assigned) hangs up after its <Dial>, as any call without a flow does.
    """
    if step is None or decision.flow is None or decision.disposition != "forwarded":
        return voicemail_done_twiml()
    return after_dial_twiml(
        decision, decision.flow, step, dial_call_status, dial_bridged, base_url, dial_timeout
    )


def dial_step(raw: str) -> int | None:
    """The ringing step a <Dial> action reports (None: the after-hours forward), or ValueError."""
    if raw == FORWARD_STEP:
        return None
    if not raw.isascii() or not raw.isdigit() or int(raw) >= MAX_TARGETS:
        raise ValueError(f"{STEP_PARAM} must be 0 to {MAX_TARGETS - 1}")
    return int(raw)


def leg_whisper(raw: str | None) -> str | None:
    """The whisper a <Number url> asks for, made safe to say (it came back through a URL)."""
    return UNSAFE_TEXT.sub("", raw or "").strip()[:MAX_SAY] or None


def ring_targets(
    flow: Flow, decision: RoutingDecision, dial_timeout: int
) -> tuple[RingTarget, ...]:
    """The flow's targets, or the number's own forwardTo when the flow rings nobody else."""
    if flow.ring is not None:
        return flow.ring.targets
    if decision.forward_to is None:
        raise ValueError("a forwarded call needs a forwardTo number")
    return (RingTarget(decision.forward_to, dial_timeout),)


def whisper_text(whisper: str, campaign: str | None) -> str:
    return whisper.replace("{campaign}", campaign or NO_CAMPAIGN)


def answer_url(flow: Flow, campaign: str | None, base_url: str) -> str | None:
    """Where the answering leg fetches its TwiML, or None when the flow has nothing to run there.

    The URL carries what the leg is to hear, so the route serving it looks
    nothing up and tells whoever asks nothing they did not send.
    """
    if not flow.whisper and not flow.screening:
        return None
    wanted = {}
    if flow.whisper:
        wanted[WHISPER_PARAM] = whisper_text(flow.whisper, campaign)
    if flow.screening:
        wanted[SCREEN_PARAM] = "1"
    return f"{base_url.rstrip('/')}{FLOW_ANSWER_PATH}?{urlencode(wanted)}"


def _ring(
    response: VoiceResponse,
    decision: RoutingDecision,
    flow: Flow,
    step: int,
    base_url: str,
    dial_timeout: int,
) -> None:
    targets = ring_targets(flow, decision, dial_timeout)
    sequential = flow.ring is not None and flow.ring.strategy == "sequential"
    # One <Dial> with every <Number> rings them all at once: the first to
    # answer wins. Sequential ringing is one <Dial> per step.
    ringing = (targets[step],) if sequential else targets
    timeout = max(target.timeout_sec for target in ringing)
    dial = _dial(response, decision, base_url, str(step), timeout)
    leg = answer_url(flow, decision.campaign, base_url)
    for target in ringing:
        _number(dial, target.number, base_url, leg)


def _nobody_answers(
    response: VoiceResponse, decision: RoutingDecision, flow: Flow, base_url: str
) -> None:
    """After hours, or when no target took the call: forward, or take a voicemail."""
    base = base_url.rstrip("/")
    if flow.after_hours == "forward" and flow.after_hours_number is not None:
        dial = _dial(response, decision, base_url, FORWARD_STEP, None)
        _number(dial, flow.after_hours_number, base_url, None)
        return
    response.say(flow.voicemail.greeting)
    response.record(
        max_length=flow.voicemail.max_length_sec,
        play_beep=True,
        action=base + VOICEMAIL_DONE_PATH,
        method="POST",
        recording_status_callback=base + RECORDING_STATUS_PATH,
        recording_status_callback_event=RECORDING_EVENTS,
    )
    response.hangup()


def _dial(
    response: VoiceResponse,
    decision: RoutingDecision,
    base_url: str,
    step: str,
    timeout: int | None,
) -> Dial:
    base = base_url.rstrip("/")
    timing = {} if timeout is None else {"timeout": timeout}
    return response.dial(
        action=f"{base}{DIAL_STATUS_PATH}?{urlencode({STEP_PARAM: step})}",
        method="POST",
        **timing,
        **_recording(decision, base),
    )


def _number(dial: Dial, number: str, base_url: str, answer_url: str | None) -> None:
    extra = {} if answer_url is None else {"url": answer_url, "method": "POST"}
    dial.number(
        number,
        status_callback=base_url.rstrip("/") + CALL_STATUS_PATH,
        status_callback_event=NUMBER_EVENTS,
        **extra,
    )


def _recording(decision: RoutingDecision, base: str) -> dict[str, str]:
    """A <Dial>'s recording attributes: both legs from the answer, reported to ingress."""
    if not decision.record:
        return {}
    return {
        "record": RECORD_MODE,
        "recording_status_callback": base + RECORDING_STATUS_PATH,
        "recording_status_callback_event": RECORDING_EVENTS,
    }
