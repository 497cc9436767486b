"""Twilio's REST JSON shapes for the simulated resources (pure: dicts from state).

Field names, formats (RFC 2822 dates, durations as strings, `uri` relative to
the API host) and list pages follow api.twilio.com's 2010-04-01 API closely
enough for twilio-python to read them. A list page holds exactly one records
key besides the paging keys: twilio-python finds the records that way.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from services.twilio_sim.dialplan import API_VERSION, rfc2822
from services.twilio_sim.geography import AREA_CODES, area_code_of, friendly_name
from services.twilio_sim.state import Call, PhoneNumber, Recording

API = f"/{API_VERSION}"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def account_uri(account_sid: str) -> str:
    return f"{API}/Accounts/{account_sid}"


def error_body(status: int, code: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def account_json(account_sid: str, created: str) -> dict[str, Any]:
    uri = account_uri(account_sid)
    return {
        "sid": account_sid,
        "owner_account_sid": account_sid,
        "friendly_name": "Simulated account",
        "status": "active",
        "type": "Full",
        "auth_token": None,
        "date_created": created,
        "date_updated": created,
        "uri": f"{uri}.json",
        "subresource_uris": {
            "calls": f"{uri}/Calls.json",
            "recordings": f"{uri}/Recordings.json",
            "incoming_phone_numbers": f"{uri}/IncomingPhoneNumbers.json",
            "available_phone_numbers": f"{uri}/AvailablePhoneNumbers.json",
        },
    }


def available_number_json(number: str, country: str) -> dict[str, Any]:
    area = area_code_of(number)
    place = AREA_CODES.get(area or "")
    return {
        "friendly_name": friendly_name(number),
        "phone_number": number,
        "lata": None,
        "rate_center": place.city if place else None,
        "latitude": None,
        "longitude": None,
        "locality": place.city.title() if place else None,
        "region": place.state if place else None,
        "postal_code": place.zip if place else None,
        "iso_country": country,
        "address_requirements": "none",
        "beta": False,
        "capabilities": {"voice": True, "SMS": True, "MMS": True, "fax": False},
    }


def number_json(number: PhoneNumber, account_sid: str) -> dict[str, Any]:
    uri = f"{account_uri(account_sid)}/IncomingPhoneNumbers/{number.sid}"
    return {
        "sid": number.sid,
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "phone_number": number.phone_number,
        "friendly_name": number.friendly_name,
        "origin": "twilio",
        "status": "in-use",
        "type": "local",
        "beta": False,
        "capabilities": {"voice": True, "sms": True, "mms": True, "fax": False},
        "address_requirements": "none",
        "address_sid": None,
        "identity_sid": None,
        "bundle_sid": None,
        "trunk_sid": None,
        "emergency_status": "Inactive",
        "emergency_address_sid": None,
        "emergency_address_status": "unregistered",
        "voice_url": number.voice_url or None,
        "voice_method": number.voice_method,
        "voice_fallback_url": number.voice_fallback_url or None,
        "voice_fallback_method": number.voice_fallback_method,
        "voice_caller_id_lookup": False,
        "voice_application_sid": None,
        "voice_receive_mode": "voice",
        "status_callback": number.status_callback or None,
        "status_callback_method": number.status_callback_method,
        "sms_url": None,
        "sms_method": "POST",
        "sms_fallback_url": None,
        "sms_fallback_method": "POST",
        "sms_application_sid": None,
        "date_created": rfc2822(number.created_at),
        "date_updated": rfc2822(number.updated_at),
        "uri": f"{uri}.json",
        "subresource_uris": {"assigned_add_ons": f"{uri}/AssignedAddOns.json"},
    }


def call_json(call: Call, account_sid: str) -> dict[str, Any]:
    uri = f"{account_uri(account_sid)}/Calls/{call.sid}"
    return {
        "sid": call.sid,
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "parent_call_sid": call.parent_call_sid,
        "phone_number_sid": call.phone_number_sid,
        "from": call.from_,
        "from_formatted": friendly_name(call.from_),
        "to": call.to,
        "to_formatted": friendly_name(call.to),
        "direction": call.direction,
        "status": call.status,
        "start_time": rfc2822(call.start_time) if call.start_time else None,
        "end_time": rfc2822(call.end_time) if call.end_time else None,
        "duration": str(call.duration) if call.duration is not None else None,
        "price": None,
        "price_unit": "USD",
        "answered_by": None,
        "forwarded_from": None,
        "caller_name": None,
        "group_sid": None,
        "queue_time": "0",
        "trunk_sid": None,
        "date_created": rfc2822(call.created_at),
        "date_updated": rfc2822(call.updated_at),
        "uri": f"{uri}.json",
        "subresource_uris": {"recordings": f"{uri}/Recordings.json"},
    }


def recording_json(recording: Recording, account_sid: str, public_url: str) -> dict[str, Any]:
    path = f"{account_uri(account_sid)}/Recordings/{recording.sid}"
    return {
        "sid": recording.sid,
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "call_sid": recording.call_sid,
        "conference_sid": None,
        "duration": str(recording.duration),
        "channels": recording.channels,
        "source": recording.source,
        "status": recording.status,
        "error_code": None,
        "price": None,
        "price_unit": "USD",
        "encryption_details": None,
        "start_time": rfc2822(recording.started_at),
        "date_created": rfc2822(recording.created_at),
        "date_updated": rfc2822(recording.created_at),
        "uri": f"{path}.json",
        "media_url": f"{public_url}{path}",
        "subresource_uris": {
            "add_on_results": f"{path}/AddOnResults.json",
            "transcriptions": f"{path}/Transcriptions.json",
        },
    }


def page_json(
    key: str,
    records: list[dict[str, Any]],
    path: str,
    query: dict[str, str],
    page: int,
    page_size: int,
) -> dict[str, Any]:
    """One page of a list, with Twilio's paging keys (`path` has no query string)."""
    start = page * page_size
    chunk = records[start : start + page_size]

    def page_uri(number: int) -> str:
        return f"{path}?{urlencode({**query, 'PageSize': page_size, 'Page': number})}"

    has_next = start + page_size < len(records)
    return {
        key: chunk,
        "uri": page_uri(page),
        "first_page_uri": page_uri(0),
        "next_page_uri": page_uri(page + 1) if has_next else None,
        "previous_page_uri": page_uri(page - 1) if page > 0 else None,
        "page": page,
        "page_size": page_size,
        "start": start,
        "end": start + max(len(chunk) - 1, 0),
    }
