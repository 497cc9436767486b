"""The Twilio REST API subset, at Twilio's paths, for twilio-python to talk to.

Form-encoded bodies in, Twilio's JSON out (resources.py), errors in Twilio's
shape ({"code", "message", "more_info", "status"}) with Twilio's error codes
where the simulator knows them. Authentication (HTTP basic with the account
SID and auth token) is checked for every path here by the app (app.py).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, jsonify, request

from services.twilio_sim import media
from services.twilio_sim.config import Config
from services.twilio_sim.dialplan import CHILD_EVENTS, rfc2822
from services.twilio_sim.geography import AREA_CODES, friendly_name, is_area_code, is_e164, offer
from services.twilio_sim.player import OutboundCall, start_outbound
from services.twilio_sim.resources import (
    API,
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    account_json,
    available_number_json,
    call_json,
    number_json,
    page_json,
    recording_json,
)
from services.twilio_sim.state import NumberTaken, SimState, utc_now

ACCOUNT = f"{API}/Accounts/<account_sid>"


class TwilioError(Exception):
    """An error answered in Twilio's JSON shape."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def not_found() -> TwilioError:
    return TwilioError(404, 20404, f"The requested resource {request.path} was not found")


def valid_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _url_field(name: str, required: bool = False) -> str | None:
    value = request.form.get(name)
    if value is None or value == "":
        if required:
            raise TwilioError(400, 21205, f"{name} parameter is required.")
        return value  # "" clears a field on update
    if not valid_url(value):
        raise TwilioError(400, 21502, f"{name} is not a valid URL: {value}")
    return value


def _method_field(name: str) -> str | None:
    value = request.form.get(name)
    if value is None or value == "":
        return None
    if value.upper() not in ("GET", "POST"):
        raise TwilioError(400, 21403, f"{name} must be GET or POST")
    return value.upper()


def _page_args() -> tuple[int, int]:
    try:
        size = int(request.args.get("PageSize", DEFAULT_PAGE_SIZE))
        page = int(request.args.get("Page", 0))
    except ValueError:
        raise TwilioError(400, 20001, "PageSize and Page must be integers") from None
    if not 1 <= size <= MAX_PAGE_SIZE or page < 0:
        raise TwilioError(400, 20001, f"PageSize must be 1 to {MAX_PAGE_SIZE}, Page >= 0")
    return page, size


def _filters(*names: str) -> dict[str, str]:
    return {name: request.args[name] for name in names if request.args.get(name)}


def _phone_pattern(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(pattern).replace(r"\*", r"\d") + "$")


# Form field -> PhoneNumber attribute, for create and update.
NUMBER_URLS = {
    "VoiceUrl": "voice_url",
    "VoiceFallbackUrl": "voice_fallback_url",
    "StatusCallback": "status_callback",
}
NUMBER_METHODS = {
    "VoiceMethod": "voice_method",
    "VoiceFallbackMethod": "voice_fallback_method",
    "StatusCallbackMethod": "status_callback_method",
}


def _number_settings() -> dict[str, str]:
    settings: dict[str, str] = {}
    for name, attribute in NUMBER_URLS.items():
        value = _url_field(name)
        if value is not None:
            settings[attribute] = value
    for name, attribute in NUMBER_METHODS.items():
        method = _method_field(name)
        if method is not None:
            settings[attribute] = method
    return settings


def rest_routes(config: Config, state: SimState) -> Blueprint:
    routes = Blueprint("twilio_rest", __name__)
    sid = config.account_sid
    started = utc_now()

    def number_or_404(number_sid: str) -> Any:
        number = state.number(number_sid)
        if number is None:
            raise not_found()
        return number

    def recording_or_404(recording_sid: str) -> Any:
        recording = state.recording(recording_sid)
        if recording is None:
            raise not_found()
        return recording

    @routes.get(f"{ACCOUNT}.json")
    def fetch_account(account_sid: str) -> Response:
        return jsonify(account_json(sid, rfc2822(started)))

    # ---- phone numbers
    @routes.get(f"{ACCOUNT}/AvailablePhoneNumbers/<country>/Local.json")
    def available_local(account_sid: str, country: str) -> Response:
        page, size = _page_args()
        area = request.args.get("AreaCode", "")
        if area and not is_area_code(area):
            raise TwilioError(400, 21452, f"AreaCode {area} is not a valid area code")
        found: list[str] = []
        if country.upper() == "US":
            areas = [area] if area else list(AREA_CODES)
            found = offer(areas, state.owned_phone_numbers(), size, request.args.get("Contains"))
        records = [available_number_json(n, country.upper()) for n in found]
        return jsonify(
            page_json(
                "available_phone_numbers",
                records,
                request.path,
                _filters("AreaCode", "Contains"),
                0,
                size,
            )
        )

    @routes.post(f"{ACCOUNT}/IncomingPhoneNumbers.json")
    def buy_number(account_sid: str) -> tuple[Response, int]:
        settings = _number_settings()
        phone = request.form.get("PhoneNumber", "").strip()
        area = request.form.get("AreaCode", "").strip()
        owned = state.owned_phone_numbers()
        if phone:
            if not is_e164(phone):
                raise TwilioError(400, 21421, f"PhoneNumber is invalid: {phone}")
        elif area:
            if not is_area_code(area):
                raise TwilioError(400, 21452, f"AreaCode {area} is not a valid area code")
            offered = offer([area], owned, 1)
            if not offered:
                raise TwilioError(400, 21452, f"No phone numbers found in area code {area}")
            phone = offered[0]
        else:
            raise TwilioError(400, 21421, "A PhoneNumber or an AreaCode is required")
        name = request.form.get("FriendlyName") or friendly_name(phone)
        try:
            number = state.add_number(phone, name, **settings)
        except NumberTaken:
            raise TwilioError(400, 21422, f"PhoneNumber {phone} is not available") from None
        return jsonify(number_json(number, sid)), 201

    @routes.get(f"{ACCOUNT}/IncomingPhoneNumbers.json")
    def list_numbers(account_sid: str) -> Response:
        page, size = _page_args()
        numbers = state.numbers()
        wanted = request.args.get("PhoneNumber")
        if wanted:
            pattern = _phone_pattern(wanted)
            numbers = [n for n in numbers if pattern.match(n.phone_number)]
        if request.args.get("FriendlyName"):
            numbers = [n for n in numbers if n.friendly_name == request.args["FriendlyName"]]
        records = [number_json(n, sid) for n in numbers]
        return jsonify(
            page_json(
                "incoming_phone_numbers",
                records,
                request.path,
                _filters("PhoneNumber", "FriendlyName"),
                page,
                size,
            )
        )

    @routes.get(f"{ACCOUNT}/IncomingPhoneNumbers/<number_sid>.json")
    def fetch_number(account_sid: str, number_sid: str) -> Response:
        return jsonify(number_json(number_or_404(number_sid), sid))

    @routes.post(f"{ACCOUNT}/IncomingPhoneNumbers/<number_sid>.json")
    def update_number(account_sid: str, number_sid: str) -> Response:
        number_or_404(number_sid)
        changes: dict[str, str] = dict(_number_settings())
        if request.form.get("FriendlyName"):
            changes["friendly_name"] = request.form["FriendlyName"]
        updated = state.update_number(number_sid, changes)
        if updated is None:
            raise not_found()
        return jsonify(number_json(updated, sid))

    @routes.delete(f"{ACCOUNT}/IncomingPhoneNumbers/<number_sid>.json")
    def release_number(account_sid: str, number_sid: str) -> tuple[str, int]:
        if not state.delete_number(number_sid):
            raise not_found()
        return "", 204

    # ---- calls
    @routes.post(f"{ACCOUNT}/Calls.json")
    def create_call(account_sid: str) -> tuple[Response, int]:
        to = request.form.get("To", "").strip()
        from_ = request.form.get("From", "").strip()
        if not to:
            raise TwilioError(400, 21201, "No 'To' number is specified")
        if not from_:
            raise TwilioError(400, 21603, "A 'From' phone number is required.")
        if not is_e164(to):
            raise TwilioError(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not is_e164(from_):
            raise TwilioError(400, 21212, f"Invalid 'From' Phone Number: {from_}")
        twiml = request.form.get("Twiml") or None
        url = _url_field("Url", required=twiml is None) or None
        events: list[str] = []
        for value in request.form.getlist("StatusCallbackEvent"):
            events.extend(value.replace(",", " ").split())
        unknown = [e for e in events if e not in CHILD_EVENTS]
        if unknown:
            raise TwilioError(400, 21626, f"Invalid StatusCallbackEvent: {', '.join(unknown)}")
        channels = request.form.get("RecordingChannels", "mono")
        if channels not in ("mono", "dual"):
            raise TwilioError(400, 21627, "RecordingChannels must be mono or dual")
        call = OutboundCall(
            from_=from_,
            to=to,
            url=url,
            method=_method_field("Method") or "POST",
            fallback_url=_url_field("FallbackUrl") or None,
            fallback_method=_method_field("FallbackMethod") or "POST",
            twiml=twiml,
            status_callback=_url_field("StatusCallback") or None,
            status_callback_method=_method_field("StatusCallbackMethod") or "POST",
            status_callback_events=tuple(events) or ("completed",),
            record=request.form.get("Record", "").lower() == "true",
            recording_channels=2 if channels == "dual" else 1,
            recording_status_callback=_url_field("RecordingStatusCallback") or None,
            recording_status_callback_method=(
                _method_field("RecordingStatusCallbackMethod") or "POST"
            ),
            started_at=state.clock.now(),
        )
        queued = start_outbound(config, state, call, request.form.to_dict(flat=True))
        return jsonify(call_json(queued, sid)), 201

    @routes.get(f"{ACCOUNT}/Calls.json")
    def list_calls(account_sid: str) -> Response:
        page, size = _page_args()
        calls = state.calls()
        wanted = _filters("To", "From", "Status", "ParentCallSid")
        fields = {
            "To": "to",
            "From": "from_",
            "Status": "status",
            "ParentCallSid": "parent_call_sid",
        }
        for name, value in wanted.items():
            calls = [c for c in calls if getattr(c, fields[name]) == value]
        calls.sort(key=lambda c: c.created_at, reverse=True)
        return jsonify(
            page_json("calls", [call_json(c, sid) for c in calls], request.path, wanted, page, size)
        )

    @routes.get(f"{ACCOUNT}/Calls/<call_sid>.json")
    def fetch_call(account_sid: str, call_sid: str) -> Response:
        call = state.call(call_sid)
        if call is None:
            raise not_found()
        return jsonify(call_json(call, sid))

    # ---- recordings
    @routes.get(f"{ACCOUNT}/Recordings.json")
    def list_recordings(account_sid: str) -> Response:
        page, size = _page_args()
        recordings = state.recordings()
        wanted = _filters("CallSid")
        if "CallSid" in wanted:
            recordings = [r for r in recordings if r.call_sid == wanted["CallSid"]]
        records = [recording_json(r, sid, config.public_url) for r in recordings]
        return jsonify(page_json("recordings", records, request.path, wanted, page, size))

    @routes.get(f"{ACCOUNT}/Recordings/<recording_sid>.json")
    def fetch_recording(account_sid: str, recording_sid: str) -> Response:
        recording = recording_or_404(recording_sid)
        return jsonify(recording_json(recording, sid, config.public_url))

    @routes.delete(f"{ACCOUNT}/Recordings/<recording_sid>.json")
    def delete_recording(account_sid: str, recording_sid: str) -> tuple[str, int]:
        if not state.delete_recording(recording_sid):
            raise not_found()
        return "", 204

    @routes.get(f"{ACCOUNT}/Recordings/<recording_sid>.wav")
    @routes.get(f"{ACCOUNT}/Recordings/<recording_sid>")
    def recording_wav(account_sid: str, recording_sid: str) -> Response:
        recording = recording_or_404(recording_sid)
        return Response(
            media.wav_bytes(recording.duration, recording.channels), mimetype="audio/x-wav"
        )

    @routes.get(f"{ACCOUNT}/Recordings/<recording_sid>.mp3")
    def recording_mp3(account_sid: str, recording_sid: str) -> Response:
        recording = recording_or_404(recording_sid)
        return Response(media.mp3_bytes(recording.duration), mimetype="audio/mpeg")

    return routes
