"""Reading TwiML and planning what Twilio sends for it (pure: no I/O).

`parse` turns a TwiML document into verbs. `plan_dial` and `plan_record`
decide, from what the dialed phone or the caller does, which callbacks Twilio
would send for a <Dial> or a <Record>, with which form fields, at which
simulated time, and what recording results. The player sends the planned
callbacks and feeds the TwiML replies back into `parse`.

Supported: Say, Play, Pause, Gather (the caller never presses anything; on
a dialed leg the scripted answerer may), Dial with up to ten <Number>s rung
at once (or a number as text), <Number url> (TwiML on the answering leg,
before the bridge), Record (a voicemail), Redirect, Hangup, Reject.
Anything else is skipped with a warning, as are unknown statusCallbackEvent
names: the simulator tells what Twilio would not do.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime
from urllib.parse import urljoin

from services.twilio_sim.geography import Place, locate

API_VERSION = "2010-04-01"
OUTCOMES = ("completed", "no-answer", "busy", "failed")
RECORD_MODES = (
    "record-from-answer",
    "record-from-ringing",
    "record-from-answer-dual",
    "record-from-ringing-dual",
)
CHILD_EVENTS = ("initiated", "ringing", "answered", "completed")
RECORDING_EVENTS = ("in-progress", "completed", "absent")
DEFAULT_DIAL_TIMEOUT = 30
DEFAULT_TIME_LIMIT = 14400
MAX_LOOP = 10
MAX_NUMBERS = 10
WORDS_PER_SECOND = 2.5
PLAY_SECONDS = 5


class InvalidTwiml(ValueError):
    """A document Twilio would refuse (error 12100: document parse failure)."""


def rfc2822(moment: datetime) -> str:
    return format_datetime(moment)


# ---- verbs -----------------------------------------------------------------


@dataclass(frozen=True)
class Playback:
    """Something the caller hears for a while (Say, Play, Pause, an unanswered Gather)."""

    verb: str
    seconds: int
    text: str = ""


@dataclass(frozen=True)
class Target:
    number: str
    status_callback: str | None = None
    status_callback_method: str = "POST"
    status_callback_events: tuple[str, ...] = ()
    # TwiML the answering leg runs before the bridge (whisper, screening).
    url: str | None = None
    method: str = "POST"


@dataclass(frozen=True)
class Gather:
    """<Gather>: the prompt is heard, then input is awaited for `timeout` seconds."""

    prompt_seconds: int
    timeout: int
    action: str | None
    method: str = "POST"
    num_digits: int | None = None

    @property
    def seconds(self) -> int:
        """How long it runs when nothing is pressed (it then falls through)."""
        return self.prompt_seconds + self.timeout


@dataclass(frozen=True)
class Dial:
    target: Target
    action: str | None = None
    method: str = "POST"
    timeout: int = DEFAULT_DIAL_TIMEOUT
    record: str | None = None
    recording_status_callback: str | None = None
    recording_status_callback_method: str = "POST"
    recording_status_callback_events: tuple[str, ...] = ("completed",)
    caller_id: str | None = None
    answer_on_bridge: bool = False
    time_limit: int = DEFAULT_TIME_LIMIT
    # The other <Number>s of the same <Dial>, rung at the same time as `target`.
    more_targets: tuple[Target, ...] = ()

    @property
    def targets(self) -> tuple[Target, ...]:
        return (self.target, *self.more_targets)


@dataclass(frozen=True)
class Record:
    action: str | None = None
    method: str = "POST"
    max_length: int = 3600
    recording_status_callback: str | None = None
    recording_status_callback_method: str = "POST"
    recording_status_callback_events: tuple[str, ...] = ("completed",)


@dataclass(frozen=True)
class Redirect:
    url: str
    method: str = "POST"


@dataclass(frozen=True)
class Hangup:
    pass


@dataclass(frozen=True)
class Reject:
    reason: str = "rejected"


Verb = Playback | Gather | Dial | Record | Redirect | Hangup | Reject


@dataclass(frozen=True)
class Document:
    verbs: tuple[Verb, ...]
    warnings: tuple[str, ...] = ()


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _method(element: ET.Element, name: str) -> str:
    value = (element.get(name) or "POST").upper()
    if value not in ("GET", "POST"):
        raise InvalidTwiml(f"<{_local(element.tag)} {name}> must be GET or POST, got {value!r}")
    return value


def _int(element: ET.Element, name: str, default: int, low: int = 0) -> int:
    raw = element.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidTwiml(
            f"<{_local(element.tag)} {name}> must be an integer, got {raw!r}"
        ) from None
    if value < low:
        raise InvalidTwiml(f"<{_local(element.tag)} {name}> must be at least {low}")
    return value


def _url(element: ET.Element, name: str, base: str) -> str | None:
    raw = (element.get(name) or "").strip()
    if not raw:
        return None
    return urljoin(base, raw) if base else raw


def _events(
    element: ET.Element,
    name: str,
    allowed: tuple[str, ...],
    default: tuple[str, ...],
    warnings: list[str],
) -> tuple[str, ...]:
    raw = element.get(name)
    if raw is None:
        return default
    chosen: list[str] = []
    for token in raw.replace(",", " ").split():
        if token in allowed:
            chosen.append(token)
        else:
            warnings.append(f"<{_local(element.tag)} {name}>: unknown event {token!r} ignored")
    return tuple(chosen)


def _loop(element: ET.Element) -> int:
    loops = _int(element, "loop", 1)
    return min(loops, MAX_LOOP) if loops > 0 else 1


def _speech_seconds(text: str) -> int:
    return max(1, math.ceil(len(text.split()) / WORDS_PER_SECOND))


def _dial(element: ET.Element, base: str, warnings: list[str]) -> Dial:
    numbers = [child for child in element if _local(child.tag) == "Number"]
    others = [_local(child.tag) for child in element if _local(child.tag) != "Number"]
    if others:
        warnings.append(f"<Dial> nouns not simulated: {', '.join(others)}")
    if len(numbers) > MAX_NUMBERS:
        raise InvalidTwiml(f"<Dial> takes at most {MAX_NUMBERS} <Number>s")
    targets = [
        Target(
            number=(noun.text or "").strip(),
            status_callback=_url(noun, "statusCallback", base),
            status_callback_method=_method(noun, "statusCallbackMethod"),
            status_callback_events=_events(noun, "statusCallbackEvent", CHILD_EVENTS, (), warnings),
            url=_url(noun, "url", base),
            method=_method(noun, "method"),
        )
        for noun in numbers
    ] or [Target(number=(element.text or "").strip())]
    if not all(target.number for target in targets):
        raise InvalidTwiml("<Dial> has no number to dial")
    record = (element.get("record") or "").strip() or None
    if record in ("true", "do-not-record", "false"):
        record = "record-from-answer" if record == "true" else None
    if record is not None and record not in RECORD_MODES:
        raise InvalidTwiml(f"<Dial record> has an unknown value {record!r}")
    return Dial(
        target=targets[0],
        more_targets=tuple(targets[1:]),
        action=_url(element, "action", base),
        method=_method(element, "method"),
        timeout=_int(element, "timeout", DEFAULT_DIAL_TIMEOUT, low=1),
        record=record,
        recording_status_callback=_url(element, "recordingStatusCallback", base),
        recording_status_callback_method=_method(element, "recordingStatusCallbackMethod"),
        recording_status_callback_events=_events(
            element, "recordingStatusCallbackEvent", RECORDING_EVENTS, ("completed",), warnings
        ),
        caller_id=(element.get("callerId") or "").strip() or None,
        answer_on_bridge=(element.get("answerOnBridge") or "").lower() == "true",
        time_limit=_int(element, "timeLimit", DEFAULT_TIME_LIMIT, low=1),
    )


def _verb(element: ET.Element, base: str, warnings: list[str]) -> Verb | None:
    name = _local(element.tag)
    if name == "Say":
        text = " ".join("".join(element.itertext()).split())
        return Playback("Say", _speech_seconds(text) * _loop(element), text)
    if name == "Play":
        return Playback("Play", PLAY_SECONDS * _loop(element), (element.text or "").strip())
    if name == "Pause":
        return Playback("Pause", _int(element, "length", 1))
    if name == "Gather":
        heard = sum(
            _speech_seconds("".join(c.itertext())) for c in element if _local(c.tag) == "Say"
        )
        digits = element.get("numDigits")
        return Gather(
            prompt_seconds=heard,
            timeout=_int(element, "timeout", 5),
            action=_url(element, "action", base) or (base or None),
            method=_method(element, "method"),
            num_digits=_int(element, "numDigits", 1, low=1) if digits else None,
        )
    if name == "Dial":
        return _dial(element, base, warnings)
    if name == "Record":
        action = _url(element, "action", base) or (base or None)
        return Record(
            action=action,
            method=_method(element, "method"),
            max_length=_int(element, "maxLength", 3600, low=1),
            recording_status_callback=_url(element, "recordingStatusCallback", base),
            recording_status_callback_method=_method(element, "recordingStatusCallbackMethod"),
            recording_status_callback_events=_events(
                element, "recordingStatusCallbackEvent", RECORDING_EVENTS, ("completed",), warnings
            ),
        )
    if name == "Redirect":
        target = (element.text or "").strip()
        if not target:
            raise InvalidTwiml("<Redirect> has no URL")
        return Redirect(urljoin(base, target) if base else target, _method(element, "method"))
    if name == "Hangup":
        return Hangup()
    if name == "Reject":
        reason = element.get("reason") or "rejected"
        if reason not in ("rejected", "busy"):
            raise InvalidTwiml(f"<Reject reason> must be rejected or busy, got {reason!r}")
        return Reject(reason)
    warnings.append(f"<{name}> is not simulated and was skipped")
    return None


def parse(twiml: str, document_url: str = "") -> Document:
    """The verbs of a TwiML document; relative URLs resolve against `document_url`."""
    try:
        root = ET.fromstring(twiml.strip().encode())
    except ET.ParseError as err:
        raise InvalidTwiml(f"not well-formed XML: {err}") from None
    if _local(root.tag) != "Response":
        raise InvalidTwiml(f"root element must be <Response>, got <{_local(root.tag)}>")
    warnings: list[str] = []
    verbs = [verb for child in root if (verb := _verb(child, document_url, warnings)) is not None]
    return Document(tuple(verbs), tuple(warnings))


# ---- the call and its callbacks ----------------------------------------------


@dataclass(frozen=True)
class Leg:
    """The call whose TwiML runs: what every request about it carries."""

    account_sid: str
    call_sid: str
    from_: str
    to: str
    direction: str
    caller_place: Place
    extra: tuple[tuple[str, str], ...] = ()

    def params(self, call_status: str) -> dict[str, str]:
        """Twilio's standard request parameters for this call."""
        called = locate(self.to)
        fields = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": self.call_sid,
            "CallStatus": call_status,
            "Direction": self.direction,
            "From": self.from_,
            "To": self.to,
            "Caller": self.from_,
            "Called": self.to,
        }
        for prefix, place in (
            ("From", self.caller_place),
            ("Caller", self.caller_place),
            ("To", called),
            ("Called", called),
        ):
            fields.update(
                {
                    f"{prefix}City": place.city,
                    f"{prefix}State": place.state,
                    f"{prefix}Zip": place.zip,
                    f"{prefix}Country": place.country,
                }
            )
        fields.update(dict(self.extra))
        return fields


@dataclass(frozen=True)
class Callback:
    """One request Twilio makes, at a simulated moment."""

    kind: str
    url: str
    method: str
    params: dict[str, str]
    at: datetime


@dataclass(frozen=True)
class Answering:
    """What the dialed phone does: its outcome, how long it rings, how long they talk.

    `digits` is what the person who picks up presses at a <Gather> on their
    leg (a screening prompt); "" presses nothing, as a voicemail box does.
    """

    outcome: str
    ring_seconds: int
    talk_seconds: int
    digits: str = "1"


@dataclass(frozen=True)
class RecordingFacts:
    sid: str
    call_sid: str
    duration: int
    channels: int
    source: str
    started_at: datetime


@dataclass(frozen=True)
class DialPlan:
    dial_status: str
    child_sid: str
    child_status: str
    ring_seconds: int
    talk_seconds: int
    bridged: bool
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime
    child_callbacks: tuple[Callback, ...]
    action: Callback | None
    recording: RecordingFacts | None
    recording_callbacks: tuple[Callback, ...] = field(default=())


def call_duration_fields(seconds: int, answered: bool) -> dict[str, str]:
    """CallDuration in seconds and Duration in billed minutes (at least one if answered)."""
    minutes = max(1, math.ceil(seconds / 60)) if answered else 0
    return {"CallDuration": str(seconds), "Duration": str(minutes)}


def _recording_callbacks(
    url: str | None,
    method: str,
    events: tuple[str, ...],
    leg: Leg,
    recording: RecordingFacts,
    recording_url: str,
    ended_at: datetime,
) -> tuple[Callback, ...]:
    if not url:
        return ()
    base = {
        "AccountSid": leg.account_sid,
        "CallSid": leg.call_sid,
        "RecordingSid": recording.sid,
        "RecordingUrl": recording_url,
        "RecordingChannels": str(recording.channels),
        "RecordingSource": recording.source,
        "RecordingStartTime": rfc2822(recording.started_at),
    }
    sent: list[Callback] = []
    if "in-progress" in events:
        sent.append(
            Callback(
                "recording-status",
                url,
                method,
                {**base, "RecordingStatus": "in-progress", "ErrorCode": "0"},
                recording.started_at,
            )
        )
    if "completed" in events:
        sent.append(
            Callback(
                "recording-status",
                url,
                method,
                {
                    **base,
                    "RecordingStatus": "completed",
                    "RecordingDuration": str(recording.duration),
                    "ErrorCode": "0",
                },
                ended_at + timedelta(seconds=1),
            )
        )
    return tuple(sent)


def child_leg(dial: Dial, leg: Leg, target: Target, child_sid: str) -> Leg:
    """The call Twilio places to one dialed number: what its requests carry."""
    caller_id = dial.caller_id or leg.from_
    caller_place = locate(caller_id) if dial.caller_id else leg.caller_place
    return Leg(
        leg.account_sid,
        child_sid,
        caller_id,
        target.number,
        "outbound-dial",
        caller_place,
        (("ParentCallSid", leg.call_sid),),
    )


def first_answer(dial: Dial, answerings: list[Answering]) -> int | None:
    """Which of the rung legs picks up first (ties go to the earlier <Number>), if any."""
    picking_up = [
        (answering.ring_seconds, index)
        for index, answering in enumerate(answerings)
        if answering.outcome == "completed" and answering.ring_seconds < dial.timeout
    ]
    return min(picking_up)[1] if picking_up else None


def dial_outcome(statuses: list[str]) -> int:
    """Which leg's result a <Dial> nobody answered reports: no-answer over busy over failed."""
    for wanted in ("no-answer", "busy"):
        if wanted in statuses:
            return statuses.index(wanted)
    return 0


def plan_dial(
    dial: Dial,
    leg: Leg,
    answering: Answering,
    start: datetime,
    child_sid: str,
    recording_sid: str,
    recording_url: str,
    *,
    target: Target | None = None,
    answer_seconds: int = 0,
    bridged: bool = True,
    canceled_at: datetime | None = None,
) -> DialPlan:
    """Every callback one dialed leg causes, in the order Twilio sends them.

    A phone that would answer only after the Dial's timeout is a no-answer:
    Twilio stops ringing it first. Talk time is capped by timeLimit. With
    several <Number>s each leg is planned on its own: `target` says which,
    `canceled_at` hangs up a leg still ringing when another answered first.
    `answer_seconds` is the time the answering leg spent in its <Number url>
    TwiML; `bridged=False` when that TwiML hung up before the bridge (the leg
    answered, so DialCallStatus says completed, but DialBridged is false).
    """
    if answering.outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {answering.outcome!r}")
    outcome = answering.outcome
    ring = max(0, answering.ring_seconds)
    if outcome == "completed" and ring >= dial.timeout:
        outcome = "no-answer"
    ringing_at = start + timedelta(seconds=1)
    answered_at: datetime | None = None
    talk = 0
    if canceled_at is not None and outcome in ("completed", "no-answer"):
        outcome = "canceled"
        ring = max(0, int((canceled_at - ringing_at).total_seconds()))
        ended_at = max(canceled_at, ringing_at)
    elif outcome == "completed":
        answered_at = ringing_at + timedelta(seconds=ring)
        talk = answer_seconds
        if bridged:
            talk += max(0, answering.talk_seconds)
        talk = min(talk, dial.time_limit)
        ended_at = answered_at + timedelta(seconds=talk)
    elif outcome == "no-answer":
        ring = dial.timeout
        ended_at = ringing_at + timedelta(seconds=ring)
    elif outcome == "busy":
        ring = 0
        ended_at = ringing_at
    else:
        ring = 0
        ended_at = start

    target = target or dial.target
    child = child_leg(dial, leg, target, child_sid)
    child_callbacks: list[Callback] = []
    if target.status_callback:
        steps: list[tuple[str, datetime, dict[str, str]]] = []
        events = target.status_callback_events
        if "initiated" in events:
            steps.append(("initiated", start, {}))
        if "ringing" in events and outcome in ("completed", "no-answer", "canceled"):
            steps.append(("ringing", ringing_at, {}))
        if "answered" in events and answered_at is not None:
            steps.append(("in-progress", answered_at, {}))
        steps.append((outcome, ended_at, call_duration_fields(talk, answered_at is not None)))
        for seq, (status, moment, extra) in enumerate(steps):
            child_callbacks.append(
                Callback(
                    "child-status",
                    target.status_callback,
                    target.status_callback_method,
                    {
                        **child.params(status),
                        **extra,
                        "Timestamp": rfc2822(moment),
                        "CallbackSource": "call-progress-events",
                        "SequenceNumber": str(seq),
                    },
                    moment,
                )
            )

    recording: RecordingFacts | None = None
    if dial.record and answered_at is not None and bridged:
        from_ringing = dial.record.startswith("record-from-ringing")
        # Recording from answer starts with the bridge, after the leg's own TwiML.
        started = ringing_at if from_ringing else answered_at + timedelta(seconds=answer_seconds)
        recording = RecordingFacts(
            sid=recording_sid,
            call_sid=leg.call_sid,
            duration=int((ended_at - started).total_seconds()),
            channels=2 if dial.record.endswith("-dual") else 1,
            source="DialVerb",
            started_at=started,
        )

    action: Callback | None = None
    if dial.action:
        fields = {
            **leg.params("in-progress"),
            "DialCallSid": child_sid,
            "DialCallStatus": outcome,
            "DialBridged": "true" if answered_at is not None and bridged else "false",
        }
        if answered_at is not None:
            fields["DialCallDuration"] = str(talk)
        action = Callback("dial-action", dial.action, dial.method, fields, ended_at)

    recording_callbacks: tuple[Callback, ...] = ()
    if recording is not None:
        recording_callbacks = _recording_callbacks(
            dial.recording_status_callback,
            dial.recording_status_callback_method,
            dial.recording_status_callback_events,
            leg,
            recording,
            recording_url,
            ended_at,
        )

    return DialPlan(
        dial_status=outcome,
        child_sid=child_sid,
        child_status=outcome,
        ring_seconds=ring,
        talk_seconds=talk,
        bridged=answered_at is not None and bridged,
        started_at=start,
        answered_at=answered_at,
        ended_at=ended_at,
        child_callbacks=tuple(child_callbacks),
        action=action,
        recording=recording,
        recording_callbacks=recording_callbacks,
    )


@dataclass(frozen=True)
class RecordPlan:
    """A <Record> voicemail: the caller speaks, then hangs up (or hits maxLength)."""

    recording: RecordingFacts | None
    action: Callback | None
    recording_callbacks: tuple[Callback, ...]
    ended_at: datetime
    caller_hung_up: bool


def plan_record(
    record: Record,
    leg: Leg,
    message_seconds: int,
    start: datetime,
    recording_sid: str,
    recording_url: str,
) -> RecordPlan:
    beep_over = start + timedelta(seconds=1)
    if message_seconds <= 0:
        # The caller hangs up at the beep: nothing recorded, no action request.
        return RecordPlan(None, None, (), beep_over, caller_hung_up=True)
    length = min(message_seconds, record.max_length)
    hung_up = message_seconds <= record.max_length
    ended = beep_over + timedelta(seconds=length)
    recording = RecordingFacts(recording_sid, leg.call_sid, length, 1, "RecordVerb", beep_over)
    action: Callback | None = None
    if record.action:
        fields = {
            **leg.params("completed" if hung_up else "in-progress"),
            "RecordingSid": recording_sid,
            "RecordingUrl": recording_url,
            "RecordingDuration": str(length),
        }
        if hung_up:
            fields["Digits"] = "hangup"
        action = Callback("record-action", record.action, record.method, fields, ended)
    callbacks = _recording_callbacks(
        record.recording_status_callback,
        record.recording_status_callback_method,
        record.recording_status_callback_events,
        leg,
        recording,
        recording_url,
        ended,
    )
    return RecordPlan(recording, action, callbacks, ended, hung_up)
