"""The simulator's own control API (/sim/...): play calls, own numbers, read call logs.

This is how tests and demos act as the outside world: a caller dialing one of
the account's numbers (POST /sim/calls), numbers the business already owns
(POST /sim/numbers; GET /sim/numbers/<number> says whether the account holds
one, e.g. after the simulator restarted with an empty account), and what the
simulator sent and got back for each call (GET /sim/calls/<CallSid>,
optionally waiting for the call to finish). Errors use the project's JSON
error shape. No authentication: bind it locally.

A call request (POST /sim/calls) says who calls which number ("from", "to")
and what the dialed phone does: "outcome" (completed, no-answer, busy,
failed), "ringSeconds", "talkSeconds", "pressDigits" (what the person who
picks up presses at a screening <Gather>; default "1"), and
"voicemailSeconds" (the message the caller leaves at a <Record>; 0 or
absent hangs up at the beep). "answerers" scripts each number of a <Dial>
apart: {"+14155550100": {"after": 5, "pressDigits": "1", "talkSeconds": 30},
"+12125550100": "no-answer" | "busy" | "failed" | "voicemail-box"}; a
voicemail box picks up after VOICEMAIL_BOX_SECONDS and presses nothing.
Numbers not named there do what the call's own fields say. The first
number to pick up wins, the others are canceled.

The simulated clock: POST /sim/clock {"now": "2026-12-07T10:00:00-08:00"}
moves "now" there (it keeps ticking from that moment), {"now": null} goes
back to real time, GET /sim/clock reads it. A call placed afterwards starts
at that time: its start_time and its callbacks' Timestamp follow from it.
Texts (Messages.json, replies, GET /sim/messages) live in messaging.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request

from services.twilio_sim.config import Config
from services.twilio_sim.dialplan import OUTCOMES, Answering
from services.twilio_sim.geography import Place, friendly_name, is_e164, locate
from services.twilio_sim.player import InboundCall, start_inbound
from services.twilio_sim.resources import number_json
from services.twilio_sim.rest import valid_url
from services.twilio_sim.state import Play, SimState
from switchboard.http import ApiError, json_object

MAX_WAIT_SECONDS = 30.0
DEFAULT_RING_SECONDS = 5
DEFAULT_TALK_SECONDS = 30
# A voicemail box picks up after this many seconds of ringing, and presses nothing.
VOICEMAIL_BOX_SECONDS = 12
MAX_ANSWERERS = 10
# An answerer scripted by name alone.
SCRIPTED = ("no-answer", "busy", "failed", "voicemail-box")
ANSWERER_FIELDS = frozenset({"after", "pressDigits", "talkSeconds"})
LIMITS = {"talkSeconds": 14400, "ringSeconds": 600, "voicemailSeconds": 3600, "after": 600}


def _seconds(body: dict[str, Any], name: str, default: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, "invalid_field", f"{name} must be an integer number of seconds")
    if not 0 <= value <= LIMITS[name]:
        raise ApiError(400, "invalid_field", f"{name} must be between 0 and {LIMITS[name]}")
    return value


def _text(body: dict[str, Any], name: str, default: str = "") -> str:
    value = body.get(name, default)
    if not isinstance(value, str) or len(value) > 64:
        raise ApiError(400, "invalid_field", f"{name} must be a string of at most 64 characters")
    return value.strip()


def _digits(body: dict[str, Any], name: str, default: str) -> str:
    value = body.get(name, default)
    if not isinstance(value, str) or len(value) > 16 or any(c not in "0123456789*#" for c in value):
        raise ApiError(400, "invalid_field", f"{name} must be up to 16 keypad digits (0-9, *, #)")
    return value


def answerers_from(body: dict[str, Any], talk: int, ring: int) -> dict[str, Answering]:
    """`answerers`: what each dialed number does, by number (a name or an object)."""
    raw = body.get("answerers", {})
    if not isinstance(raw, dict) or len(raw) > MAX_ANSWERERS:
        raise ApiError(
            400, "invalid_field", f"answerers must be an object of at most {MAX_ANSWERERS} numbers"
        )
    answerers: dict[str, Answering] = {}
    for number, script in raw.items():
        if not is_e164(number):
            raise ApiError(400, "invalid_field", f"answerers: {number!r} is not an E.164 number")
        if script == "voicemail-box":
            answerers[number] = Answering("completed", VOICEMAIL_BOX_SECONDS, talk, digits="")
        elif script in SCRIPTED:
            answerers[number] = Answering(script, ring, 0)
        elif isinstance(script, dict):
            unknown = sorted(set(script) - ANSWERER_FIELDS)
            if unknown:
                raise ApiError(
                    400,
                    "invalid_field",
                    f"answerers[{number}]: unknown field(s) {', '.join(unknown)}",
                )
            answerers[number] = Answering(
                "completed",
                _seconds(script, "after", ring),
                _seconds(script, "talkSeconds", talk),
                digits=_digits(script, "pressDigits", "1"),
            )
        else:
            raise ApiError(
                400,
                "invalid_field",
                f"answerers[{number}] must be one of {', '.join(SCRIPTED)} or "
                '{"after", "pressDigits", "talkSeconds"}',
            )
    return answerers


def inbound_call_from(body: dict[str, Any], now: datetime) -> InboundCall:
    """The control request as a call to play, or a 400 saying what is wrong."""
    caller, to = _text(body, "from"), _text(body, "to")
    if not caller or not to:
        raise ApiError(400, "missing_field", "from and to are required")
    outcome = body.get("outcome", "completed")
    if outcome not in OUTCOMES:
        raise ApiError(400, "invalid_field", f"outcome must be one of {', '.join(OUTCOMES)}")
    talk = _seconds(body, "talkSeconds", DEFAULT_TALK_SECONDS if outcome == "completed" else 0)
    started = now
    if "startedAt" in body:
        raw = body["startedAt"]
        try:
            started = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
        except ValueError:
            raise ApiError(400, "invalid_field", "startedAt must be an ISO-8601 time") from None
        if started.tzinfo is None:
            raise ApiError(400, "invalid_field", "startedAt needs a time zone (e.g. Z)")
        started = started.astimezone(UTC).replace(microsecond=0)
    derived = locate(caller)
    place = Place(
        city=_text(body, "fromCity", derived.city),
        state=_text(body, "fromState", derived.state),
        zip=_text(body, "fromZip", derived.zip),
        country=_text(body, "fromCountry", derived.country),
    )
    ring = _seconds(body, "ringSeconds", DEFAULT_RING_SECONDS)
    return InboundCall(
        from_=caller,
        to=to,
        answering=Answering(outcome, ring, talk, digits=_digits(body, "pressDigits", "1")),
        message_seconds=_seconds(body, "voicemailSeconds", 0),
        caller_place=place,
        started_at=started,
        answerers=answerers_from(
            body, talk if outcome == "completed" else DEFAULT_TALK_SECONDS, ring
        ),
    )


def play_json(play: Play) -> dict[str, Any]:
    def iso(moment: datetime | None) -> str | None:
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None

    return {
        "callSid": play.call_sid,
        "direction": play.direction,
        "state": play.state,
        "request": play.request,
        "startedAt": iso(play.started_at),
        "finishedAt": iso(play.finished_at),
        "simulatedStart": iso(play.simulated_start),
        "result": play.result,
        "error": play.error,
        "dials": play.dials,
        "recordingSids": play.recording_sids,
        "alerts": play.alerts,
        "warnings": play.warnings,
        "twiml": play.twiml,
        "callbacks": play.callbacks,
    }


def clock_json(state: SimState) -> Response:
    now = state.clock.now().astimezone(UTC).isoformat().replace("+00:00", "Z")
    return jsonify({"now": now, "set": state.clock.is_set})


def control_routes(config: Config, state: SimState) -> Blueprint:
    routes = Blueprint("twilio_sim_control", __name__)

    @routes.post("/sim/numbers")
    def own_number() -> tuple[Response, int]:
        body = json_object(required=("phoneNumber", "voiceUrl"))
        phone = body["phoneNumber"]
        if not isinstance(phone, str) or not is_e164(phone):
            raise ApiError(400, "invalid_field", "phoneNumber must be an E.164 number")
        settings: dict[str, str] = {}
        for field, attribute in (
            ("voiceUrl", "voice_url"),
            ("voiceFallbackUrl", "voice_fallback_url"),
            ("statusCallback", "status_callback"),
        ):
            value = body.get(field)
            if value in (None, ""):
                continue
            if not isinstance(value, str) or not valid_url(value):
                raise ApiError(400, "invalid_field", f"{field} must be an http(s) URL")
            settings[attribute] = value
        number, created = state.upsert_number(phone, friendly_name(phone), **settings)
        return jsonify(number_json(number, config.account_sid)), 201 if created else 200

    @routes.get("/sim/numbers/<phone_number>")
    def owned_number(phone_number: str) -> Response:
        number = state.number_by_phone(phone_number)
        if number is None:
            raise ApiError(
                404, "unknown_number", f"the simulated account does not own {phone_number}"
            )
        return jsonify(number_json(number, config.account_sid))

    @routes.post("/sim/calls")
    def place_call() -> tuple[Response, int]:
        body = json_object()
        call = inbound_call_from(body, state.clock.now())
        number = state.number_by_phone(call.to)
        if number is None:
            raise ApiError(404, "unknown_number", f"the simulated account does not own {call.to}")
        call_sid = start_inbound(config, state, number, call, body)
        return jsonify({"callSid": call_sid, "url": f"/sim/calls/{call_sid}"}), 202

    @routes.post("/sim/clock")
    def set_clock() -> Response:
        body = json_object()
        if "now" not in body:
            raise ApiError(400, "missing_field", "now is required (a time, or null for real time)")
        raw = body["now"]
        moment: datetime | None = None
        if raw is not None:
            try:
                moment = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
            except ValueError:
                raise ApiError(
                    400, "invalid_field", "now must be an ISO-8601 time or null"
                ) from None
            if moment.tzinfo is None:
                raise ApiError(400, "invalid_field", "now needs a time zone (e.g. -08:00 or Z)")
        state.clock.set(moment)
        return clock_json(state)

    @routes.get("/sim/clock")
    def read_clock() -> Response:
        return clock_json(state)

    @routes.get("/sim/calls")
    def list_plays() -> Response:
        return jsonify(
            {
                "calls": [
                    {
                        "callSid": p.call_sid,
                        "direction": p.direction,
                        "state": p.state,
                        "request": p.request,
                        "result": p.result,
                        "error": p.error,
                    }
                    for p in state.plays()
                ]
            }
        )

    @routes.get("/sim/calls/<call_sid>")
    def get_play(call_sid: str) -> Response:
        try:
            wait = min(float(request.args.get("wait", "0")), MAX_WAIT_SECONDS)
        except ValueError:
            raise ApiError(400, "invalid_field", "wait must be a number of seconds") from None
        play = state.play(call_sid, wait=max(wait, 0.0))
        if play is None:
            raise ApiError(404, "not_found", f"no simulated call {call_sid}")
        return jsonify(play_json(play))

    return routes
