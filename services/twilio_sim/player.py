"""Playing one call: Twilio's side of the conversation with the project, over HTTP.

A played call runs in a background thread. It requests TwiML (the number's
Voice URL, its fallback, <Dial>/<Record> actions, <Redirect>s, and on a
dialed leg that picked up its <Number url> and <Gather> actions), runs the verbs
with dialplan.py, and sends every planned callback as a real form-encoded
request signed with X-Twilio-Signature, exactly as Twilio would. When the
Voice URL fails (no answer, an error status, TwiML it cannot read), the
number's Voice Fallback URL is requested instead, as Twilio does. TwiML at a
Twilio-hosted twimlet (twimlets.com) is never requested: the simulator
answers it itself (twimlets.py), so no request leaves this machine. Time is
simulated: timestamps and durations say the phone rang and people talked,
but requests go back to back (TWILIO_SIM_CALLBACK_DELAY_SECONDS spaces them).
Everything sent and received goes into the call's log in state.py.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import requests
from twilio.request_validator import RequestValidator

from services.twilio_sim.config import Config
from services.twilio_sim.dialplan import (
    Answering,
    Callback,
    Dial,
    DialPlan,
    Document,
    Gather,
    Hangup,
    InvalidTwiml,
    Leg,
    Playback,
    Record,
    RecordingFacts,
    Redirect,
    Reject,
    Target,
    call_duration_fields,
    child_leg,
    dial_outcome,
    first_answer,
    parse,
    plan_dial,
    plan_record,
    rfc2822,
)
from services.twilio_sim.geography import Place, locate
from services.twilio_sim.resources import account_uri
from services.twilio_sim.state import Call, PhoneNumber, Play, Recording, SimState, new_sid
from services.twilio_sim.twimlets import UnknownTwimlet, is_twimlet, twimlet_twiml

log = logging.getLogger(__name__)

MAX_DOCUMENTS = 20
RESPONSE_LOG_CHARS = 4000
OUTBOUND_RING_SECONDS = 4
# What a phone dialed from an outbound-api call's TwiML does (no control input there).
OUTBOUND_ANSWERING = Answering("completed", ring_seconds=4, talk_seconds=20)
TWIML_KINDS = (
    "voice",
    "voice-fallback",
    "dial-action",
    "record-action",
    "redirect",
    "number-url",
    "gather-action",
)


@dataclass(frozen=True)
class Reply:
    status: int | None
    body: str
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def connection_overrides(url: str, default_timeout: float) -> tuple[str, tuple[float, float], int]:
    """Split off a connection-override fragment (#ct=..&rt=..&rc=..): never sent to the server."""
    base, _, fragment = url.partition("#")
    options = dict(parse_qsl(fragment))

    def seconds(name: str) -> float:
        try:
            return max(0.1, int(options[name]) / 1000)
        except (KeyError, ValueError):
            return default_timeout

    try:
        retries = max(0, min(int(options.get("rc", "0")), 5))
    except ValueError:
        retries = 0
    return base, (seconds("ct"), seconds("rt")), retries


class Sender:
    """Signs and sends Twilio's requests for one call, and logs each of them."""

    def __init__(self, config: Config, state: SimState, call_sid: str) -> None:
        self.validator = RequestValidator(config.auth_token)
        self.state = state
        self.call_sid = call_sid
        self.timeout = config.webhook_timeout
        self.delay = config.callback_delay
        self.session = requests.Session()

    def close(self) -> None:
        self.session.close()

    def send(self, callback: Callback) -> Reply:
        url, timeout, retries = connection_overrides(callback.url, self.timeout)
        params = dict(callback.params)
        if callback.method == "GET":
            target = url + ("&" if "?" in url else "?") + urlencode(params)
            signature = self.validator.compute_signature(target, {})
            body: dict[str, str] | None = None
        else:
            target = url
            signature = self.validator.compute_signature(target, params)
            body = params
        headers = {
            "X-Twilio-Signature": signature,
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "User-Agent": "TwilioProxy/1.1",
            "Accept": "*/*",
        }
        if self.delay:
            time.sleep(self.delay)
        sent_at = datetime.now(UTC)
        started = time.perf_counter()
        reply = Reply(None, "", "not sent")
        if is_twimlet(url):
            # Twilio's own hosts only ever serve TwiML (answer_twimlet): nothing goes there.
            retries = -1
            reply = Reply(None, "", "not sent: twimlets.com only serves TwiML")
        for attempt in range(retries + 1):
            try:
                response = self.session.request(
                    callback.method,
                    target,
                    data=body,
                    headers=headers,
                    timeout=timeout,
                    allow_redirects=False,
                )
                reply = Reply(response.status_code, response.text, None)
                break
            except requests.ConnectionError as err:
                reply = Reply(None, "", f"connection failed: {type(err).__name__}")
            except requests.Timeout:
                reply = Reply(None, "", f"no response within {timeout[1]:g} s")
                break
            except requests.RequestException as err:
                reply = Reply(None, "", f"request failed: {err}")
                break
            if attempt < retries:
                time.sleep(0.1)
        self._log(callback, target, params, reply, sent_at, time.perf_counter() - started)
        return reply

    def answer_twimlet(self, callback: Callback) -> Reply:
        """What Twilio's hosted twimlet at `callback.url` answers, made here: nothing is sent."""
        url = callback.url.partition("#")[0]
        try:
            reply = Reply(200, twimlet_twiml(url), None)
        except UnknownTwimlet as err:
            reply = Reply(None, "", f"not simulated: {err}")
        self._log(callback, url, dict(callback.params), reply, datetime.now(UTC), 0.0, local=True)
        return reply

    def _log(
        self,
        callback: Callback,
        target: str,
        params: dict[str, str],
        reply: Reply,
        sent_at: datetime,
        elapsed: float,
        local: bool = False,
    ) -> None:
        entry: dict[str, Any] = {
            "kind": callback.kind,
            "url": target,
            "method": callback.method,
            "params": params,
            "status": reply.status,
            "error": reply.error,
            "elapsedMs": round(elapsed * 1000, 1),
            "sentAt": _iso(sent_at),
            "simulatedAt": _iso(callback.at),
        }
        if local:
            entry["servedBy"] = "simulator (Twilio-hosted twimlet)"
        if callback.kind in TWIML_KINDS:
            entry["response"] = reply.body[:RESPONSE_LOG_CHARS]
        self.state.log(self.call_sid, "callbacks", entry)
        if reply.ok:
            log.debug(
                "%s %s -> %s", callback.kind, target, reply.status, extra={"callSid": self.call_sid}
            )
        else:
            log.info(
                "%s %s failed: %s",
                callback.kind,
                target,
                reply.error or reply.status,
                extra={"callSid": self.call_sid},
            )


class CallRun:
    """Runs TwiML for one call leg on a simulated clock."""

    def __init__(
        self,
        config: Config,
        state: SimState,
        sender: Sender,
        leg: Leg,
        answering: Answering,
        message_seconds: int,
        clock: datetime,
        answerers: dict[str, Answering] | None = None,
    ) -> None:
        self.config = config
        self.state = state
        self.sender = sender
        self.leg = leg
        self.answering = answering
        self.answerers = answerers or {}
        self.message_seconds = message_seconds
        self.clock = clock
        self.answered_at: datetime | None = None
        self.final_status = "completed"
        self.documents = 0
        self.last_alert = 0

    # ---- helpers
    def alert(self, code: int, message: str, url: str = "") -> None:
        self.last_alert = code
        self.state.log(self.leg.call_sid, "alerts", {"code": code, "message": message, "url": url})

    def recording_url(self, sid: str) -> str:
        return f"{self.config.public_url}{account_uri(self.leg.account_sid)}/Recordings/{sid}"

    def store_recording(self, facts: RecordingFacts) -> None:
        self.state.put_recording(
            Recording(
                sid=facts.sid,
                call_sid=facts.call_sid,
                duration=facts.duration,
                channels=facts.channels,
                source=facts.source,
                started_at=facts.started_at,
                created_at=facts.started_at,
            )
        )
        self.state.log(self.leg.call_sid, "recording_sids", facts.sid)

    def fetch(self, kind: str, url: str, method: str, params: dict[str, str]) -> Document | None:
        """Request TwiML; None (with a Twilio-style alert) when it cannot be used."""
        self.documents += 1
        if self.documents > MAX_DOCUMENTS:
            self.alert(11200, f"more than {MAX_DOCUMENTS} TwiML documents: call ended", url)
            return None
        callback = Callback(kind, url, method, params, self.clock)
        if is_twimlet(url):
            reply = self.sender.answer_twimlet(callback)
        else:
            reply = self.sender.send(callback)
        if not reply.ok:
            code = 11205 if reply.status is None else 11200
            self.alert(code, f"HTTP retrieval failure: {reply.error or reply.status}", url)
            return None
        return self.read(reply.body, url)

    def read(self, twiml: str, url: str) -> Document | None:
        self.state.log(self.leg.call_sid, "twiml", {"url": url, "body": twiml})
        try:
            document = parse(twiml, url.partition("#")[0])
        except InvalidTwiml as err:
            self.alert(12100, f"Document parse failure: {err}", url)
            return None
        for warning in document.warnings:
            self.state.log(self.leg.call_sid, "warnings", warning)
        return document

    # ---- verbs
    def execute(self, document: Document) -> None:
        verbs = list(document.verbs)
        while verbs:
            verb = verbs.pop(0)
            opens_line = not isinstance(verb, Reject) and not (
                isinstance(verb, Dial) and verb.answer_on_bridge
            )
            if self.answered_at is None and opens_line:
                self.answered_at = self.clock
            if isinstance(verb, Playback | Gather):
                # The caller never presses anything: a <Gather> times out and falls through.
                self.clock += timedelta(seconds=verb.seconds)
            elif isinstance(verb, Hangup):
                return
            elif isinstance(verb, Reject):
                if self.answered_at is None:
                    self.final_status = "busy" if verb.reason == "busy" else "no-answer"
                return
            elif isinstance(verb, Redirect):
                following = self.fetch(
                    "redirect", verb.url, verb.method, self.leg.params("in-progress")
                )
                if following is None:
                    return
                verbs = list(following.verbs)
            elif isinstance(verb, Dial):
                following, has_action = self.dial(verb)
                if has_action:
                    if following is None:
                        return
                    verbs = list(following.verbs)
            elif isinstance(verb, Record):
                following, hung_up = self.record(verb)
                if hung_up or following is None:
                    return
                verbs = list(following.verbs)

    def dial(self, verb: Dial) -> tuple[Document | None, bool]:
        """Ring every <Number> at once: the first to pick up wins, the others are canceled.

        The answering leg's <Number url> TwiML is requested before the legs'
        status callbacks are sent, because what it does (how long, bridged or
        not) decides them; their Timestamps still tell the order Twilio's would.
        """
        targets = verb.targets
        answerings = [self.answerers.get(t.number, self.answering) for t in targets]
        child_sids = [new_sid("CA") for _ in targets]
        recording_sid = new_sid("RE")
        start = self.clock
        winner = first_answer(verb, answerings)
        answered_at: datetime | None = None
        answer_seconds, bridged = 0, True
        for target, child_sid in zip(targets, child_sids, strict=True):
            self.state.put_call(
                Call(
                    sid=child_sid,
                    from_=verb.caller_id or self.leg.from_,
                    to=target.number,
                    direction="outbound-dial",
                    status="queued",
                    created_at=start,
                    updated_at=start,
                    parent_call_sid=self.leg.call_sid,
                )
            )
        if winner is not None:
            answered_at = start + timedelta(seconds=1 + answerings[winner].ring_seconds)
            target = targets[winner]
            if target.url:
                child = child_leg(verb, self.leg, target, child_sids[winner])
                answer_seconds, bridged = self.answer_leg(
                    target, child, answerings[winner], answered_at
                )
        plans = [
            plan_dial(
                verb,
                self.leg,
                answering,
                start,
                child_sid,
                recording_sid,
                self.recording_url(recording_sid),
                target=target,
                answer_seconds=answer_seconds if index == winner else 0,
                bridged=bridged if index == winner else True,
                canceled_at=answered_at if index != winner else None,
            )
            for index, (target, answering, child_sid) in enumerate(
                zip(targets, answerings, child_sids, strict=True)
            )
        ]
        # Twilio reports each leg as it happens: in simulated-time order across legs.
        timeline = sorted(
            ((callback, plan.child_sid) for plan in plans for callback in plan.child_callbacks),
            key=lambda item: item[0].at,
        )
        for callback, child_sid in timeline:
            self.state.update_call(child_sid, status=callback.params["CallStatus"])
            self.sender.send(callback)
        for plan, target in zip(plans, targets, strict=True):
            self.state.update_call(
                plan.child_sid,
                status=plan.child_status,
                start_time=plan.answered_at,
                end_time=plan.ended_at,
                duration=plan.talk_seconds,
            )
            self.state.log(
                self.leg.call_sid,
                "dials",
                {
                    "number": target.number,
                    "childCallSid": plan.child_sid,
                    "dialCallStatus": plan.dial_status,
                    "ringSeconds": plan.ring_seconds,
                    "talkSeconds": plan.talk_seconds,
                    "bridged": plan.bridged,
                    "recordingSid": plan.recording.sid if plan.recording else None,
                },
            )
        reported: DialPlan = (
            plans[winner]
            if winner is not None
            else plans[dial_outcome([p.dial_status for p in plans])]
        )
        if reported.recording is not None:
            self.store_recording(reported.recording)
        self.clock = max(plan.ended_at for plan in plans)
        if self.answered_at is None:  # answerOnBridge: the caller's line opens with the bridge
            self.answered_at = reported.answered_at or self.clock
        following: Document | None = None
        if reported.action is not None:
            following = self.fetch(
                reported.action.kind,
                reported.action.url,
                reported.action.method,
                reported.action.params,
            )
        for callback in reported.recording_callbacks:
            self.sender.send(callback)
        return following, reported.action is not None

    def answer_leg(
        self, target: Target, child: Leg, answering: Answering, answered_at: datetime
    ) -> tuple[int, bool]:
        """Run <Number url>'s TwiML on the leg that picked up, before the bridge.

        Returns the seconds it took and whether it reached the bridge: TwiML that
        ends (a whisper said, a screening digit accepted) bridges the parties;
        <Hangup/>, <Reject/> or TwiML that cannot be fetched ends the leg unbridged.
        The answerer's scripted digits answer the first <Gather>; with none (a
        voicemail box) the <Gather> times out and its TwiML falls through.
        """
        saved = self.clock
        self.clock = answered_at
        digits = answering.digits
        try:
            assert target.url is not None
            params = child.params("in-progress")
            document = self.fetch("number-url", target.url, target.method, params)
            if document is None:
                return self._leg_seconds(answered_at), False
            verbs = list(document.verbs)
            while verbs:
                verb = verbs.pop(0)
                if isinstance(verb, Playback):
                    self.clock += timedelta(seconds=verb.seconds)
                elif isinstance(verb, Gather):
                    self.clock += timedelta(seconds=verb.prompt_seconds)
                    if not digits or verb.action is None:
                        self.clock += timedelta(seconds=verb.timeout)
                        continue
                    pressed = digits[: verb.num_digits] if verb.num_digits else digits
                    digits = ""  # the script is one answer to one prompt
                    self.clock += timedelta(seconds=1)
                    following = self.fetch(
                        "gather-action", verb.action, verb.method, {**params, "Digits": pressed}
                    )
                    if following is None:
                        return self._leg_seconds(answered_at), False
                    verbs = list(following.verbs)
                elif isinstance(verb, Hangup | Reject):
                    return self._leg_seconds(answered_at), False
                elif isinstance(verb, Redirect):
                    following = self.fetch("redirect", verb.url, verb.method, params)
                    if following is None:
                        return self._leg_seconds(answered_at), False
                    verbs = list(following.verbs)
                else:
                    self.state.log(
                        self.leg.call_sid,
                        "warnings",
                        f"<{type(verb).__name__}> on a dialed leg is not simulated and was skipped",
                    )
            return self._leg_seconds(answered_at), True
        finally:
            self.clock = saved

    def _leg_seconds(self, since: datetime) -> int:
        return int((self.clock - since).total_seconds())

    def record(self, verb: Record) -> tuple[Document | None, bool]:
        recording_sid = new_sid("RE")
        plan = plan_record(
            verb,
            self.leg,
            self.message_seconds,
            self.clock,
            recording_sid,
            self.recording_url(recording_sid),
        )
        self.message_seconds = 0  # one message per call
        self.clock = plan.ended_at
        if plan.recording is not None:
            self.store_recording(plan.recording)
        following: Document | None = None
        if plan.action is not None:
            following = self.fetch(
                plan.action.kind, plan.action.url, plan.action.method, plan.action.params
            )
        for callback in plan.recording_callbacks:
            self.sender.send(callback)
        return following, plan.caller_hung_up

    # ---- the end
    def finish(self) -> tuple[str, int]:
        """The call's final status and CallDuration."""
        if self.answered_at is None:
            return self.final_status, 0
        return self.final_status, int((self.clock - self.answered_at).total_seconds())


@dataclass(frozen=True)
class InboundCall:
    """A control request: somebody calls a number the simulator owns."""

    from_: str
    to: str
    answering: Answering
    message_seconds: int
    caller_place: Place
    started_at: datetime
    # What each dialed number does, when it differs from `answering`.
    answerers: dict[str, Answering] = field(default_factory=dict)


def _status_callback(
    leg: Leg,
    url: str,
    method: str,
    status: str,
    duration: int,
    answered: bool,
    at: datetime,
    sequence: int,
) -> Callback:
    fields = {
        **leg.params(status),
        "Timestamp": rfc2822(at),
        "CallbackSource": "call-progress-events",
        "SequenceNumber": str(sequence),
    }
    if status not in ("initiated", "ringing", "in-progress"):
        fields.update(call_duration_fields(duration, answered))
    return Callback("call-status", url, method, fields, at)


def _play_inbound(
    config: Config, state: SimState, call_sid: str, number: PhoneNumber, call: InboundCall
) -> None:
    extra: list[tuple[str, str]] = [("CallToken", secrets.token_urlsafe(24))]
    if call.from_.startswith("+1"):
        extra.append(("StirVerstat", "TN-Validation-Passed-A"))
    leg = Leg(
        config.account_sid,
        call_sid,
        call.from_,
        call.to,
        "inbound",
        call.caller_place,
        tuple(extra),
    )
    sender = Sender(config, state, call_sid)
    run = CallRun(
        config,
        state,
        sender,
        leg,
        call.answering,
        call.message_seconds,
        call.started_at,
        call.answerers,
    )
    try:
        document: Document | None = None
        params = leg.params("ringing")
        if number.voice_url:
            document = run.fetch("voice", number.voice_url, number.voice_method, params)
        else:
            run.alert(11200, "the number has no Voice URL")
        if document is None and number.voice_fallback_url:
            fallback = {
                **params,
                "ErrorCode": str(run.last_alert or 11200),
                "ErrorUrl": number.voice_url,
            }
            document = run.fetch(
                "voice-fallback", number.voice_fallback_url, number.voice_fallback_method, fallback
            )
        run.clock += timedelta(seconds=1)  # Twilio fetched the TwiML and starts running it
        if document is None:
            # Twilio answers and says "An application error has occurred. Goodbye."
            run.answered_at = run.clock
            run.clock += timedelta(seconds=4)
        else:
            run.execute(document)
        status, duration = run.finish()
        answered = run.answered_at is not None and status == "completed"
        state.update_call(
            call_sid,
            status=status,
            start_time=run.answered_at,
            end_time=run.clock,
            duration=duration,
        )
        if number.status_callback:
            sender.send(
                _status_callback(
                    leg,
                    number.status_callback,
                    number.status_callback_method,
                    status,
                    duration,
                    answered,
                    run.clock,
                    0,
                )
            )
        state.finish_play(
            call_sid,
            {
                "callStatus": status,
                "callDuration": duration,
                "answeredAt": _iso(run.answered_at) if run.answered_at else None,
                "endedAt": _iso(run.clock),
            },
            None,
        )
    except Exception as err:  # a crashed play must still end, with the reason in its log
        log.exception("playing call failed", extra={"callSid": call_sid})
        state.update_call(call_sid, status="failed")
        state.finish_play(call_sid, {}, f"{type(err).__name__}: {err}")
    finally:
        sender.close()


def start_inbound(
    config: Config, state: SimState, number: PhoneNumber, call: InboundCall, request: dict[str, Any]
) -> str:
    """Record the call and play it in the background; returns its CallSid."""
    call_sid = new_sid("CA")
    now = datetime.now(UTC)
    state.put_call(
        Call(
            sid=call_sid,
            from_=call.from_,
            to=call.to,
            direction="inbound",
            status="ringing",
            created_at=call.started_at,
            updated_at=call.started_at,
            phone_number_sid=number.sid,
        )
    )
    state.start_play(
        Play(
            call_sid=call_sid,
            direction="inbound",
            request=request,
            started_at=now,
            simulated_start=call.started_at,
        )
    )
    threading.Thread(
        target=_play_inbound,
        args=(config, state, call_sid, number, call),
        name=f"call-{call_sid}",
        daemon=True,
    ).start()
    return call_sid


@dataclass(frozen=True)
class OutboundCall:
    """A Calls.json request: the project asks Twilio to call somebody."""

    from_: str
    to: str
    url: str | None
    method: str
    fallback_url: str | None
    fallback_method: str
    twiml: str | None
    status_callback: str | None
    status_callback_method: str
    status_callback_events: tuple[str, ...]
    record: bool
    recording_channels: int
    recording_status_callback: str | None
    recording_status_callback_method: str
    started_at: datetime


def _play_outbound(config: Config, state: SimState, call_sid: str, call: OutboundCall) -> None:
    leg = Leg(config.account_sid, call_sid, call.from_, call.to, "outbound-api", locate(call.from_))
    sender = Sender(config, state, call_sid)
    run = CallRun(config, state, sender, leg, OUTBOUND_ANSWERING, 0, call.started_at)
    events = call.status_callback_events
    sequence = 0

    def progress(status: str, at: datetime, event: str, duration: int = 0) -> None:
        nonlocal sequence
        state.update_call(call_sid, status=status)
        if call.status_callback and event in events:
            sender.send(
                _status_callback(
                    leg,
                    call.status_callback,
                    call.status_callback_method,
                    status,
                    duration,
                    status == "completed",
                    at,
                    sequence,
                )
            )
            sequence += 1

    try:
        progress("initiated", run.clock, "initiated")
        progress("ringing", run.clock + timedelta(seconds=1), "ringing")
        run.clock += timedelta(seconds=1 + OUTBOUND_RING_SECONDS)
        run.answered_at = run.clock
        progress("in-progress", run.clock, "answered")
        if call.twiml is not None:
            document = run.read(call.twiml, "")
        else:
            assert call.url is not None
            document = run.fetch("voice", call.url, call.method, leg.params("in-progress"))
            if document is None and call.fallback_url:
                document = run.fetch(
                    "voice-fallback",
                    call.fallback_url,
                    call.fallback_method,
                    {**leg.params("in-progress"), "ErrorCode": "11200", "ErrorUrl": call.url},
                )
        if document is not None:
            run.execute(document)
        status, duration = run.finish()
        state.update_call(
            call_sid, start_time=run.answered_at, end_time=run.clock, duration=duration
        )
        if call.record and run.answered_at is not None:
            recording_sid = new_sid("RE")
            facts = RecordingFacts(
                recording_sid,
                call_sid,
                duration,
                call.recording_channels,
                "OutboundAPI",
                run.answered_at,
            )
            run.store_recording(facts)
            if call.recording_status_callback:
                sender.send(
                    Callback(
                        "recording-status",
                        call.recording_status_callback,
                        call.recording_status_callback_method,
                        {
                            "AccountSid": leg.account_sid,
                            "CallSid": call_sid,
                            "RecordingSid": recording_sid,
                            "RecordingUrl": run.recording_url(recording_sid),
                            "RecordingStatus": "completed",
                            "RecordingDuration": str(duration),
                            "RecordingChannels": str(call.recording_channels),
                            "RecordingSource": "OutboundAPI",
                            "RecordingStartTime": rfc2822(run.answered_at),
                            "ErrorCode": "0",
                        },
                        run.clock + timedelta(seconds=1),
                    )
                )
        progress(status, run.clock, "completed", duration)
        state.finish_play(
            call_sid,
            {
                "callStatus": status,
                "callDuration": duration,
                "answeredAt": _iso(run.answered_at) if run.answered_at else None,
                "endedAt": _iso(run.clock),
            },
            None,
        )
    except Exception as err:  # a crashed play must still end, with the reason in its log
        log.exception("playing outbound call failed", extra={"callSid": call_sid})
        state.update_call(call_sid, status="failed")
        state.finish_play(call_sid, {}, f"{type(err).__name__}: {err}")
    finally:
        sender.close()


def start_outbound(
    config: Config, state: SimState, call: OutboundCall, request: dict[str, Any]
) -> Call:
    """Queue the call, play it in the background; returns the queued call resource."""
    call_sid = new_sid("CA")
    queued = Call(
        sid=call_sid,
        from_=call.from_,
        to=call.to,
        direction="outbound-api",
        status="queued",
        created_at=call.started_at,
        updated_at=call.started_at,
    )
    state.put_call(queued)
    state.start_play(
        Play(
            call_sid=call_sid,
            direction="outbound-api",
            request=request,
            started_at=datetime.now(UTC),
            simulated_start=call.started_at,
        )
    )
    threading.Thread(
        target=_play_outbound,
        args=(config, state, call_sid, call),
        name=f"call-{call_sid}",
        daemon=True,
    ).start()
    return queued
