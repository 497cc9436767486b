"""Router's side of the Twilio REST API, through the official twilio library.

`TwilioGateway` wraps `twilio.rest.Client` for the few things router asks of
Twilio: list available numbers, buy one (pointing its webhooks at this
deployment), find a number the account holds and change where its calls go,
and place an outbound call. `TWILIO_API_BASE_URL` points the
library somewhere else than api.twilio.com (the project's simulator) through
`switchboard.twilio_http` (a `TwilioHttpClient` that rewrites scheme and host
and keeps Twilio's paths): the documented way to change where the library
sends its requests. Twilio's failures become `ApiError`s whose status says
whose fault it was (409 nothing to buy, 400 a number Twilio refuses to call,
502 Twilio said no or could not be reached).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException

from switchboard.http import ApiError
from switchboard.twilio_http import twilio_client

log = logging.getLogger(__name__)

COUNTRY = "US"
# Twilio error codes: no number left in the area, number taken meanwhile.
NOTHING_TO_BUY = {21452, 21422}
# Codes about the number to call: the caller's input, so a 400.
UNCALLABLE = {21210, 21211, 21214, 21215, 21216, 21217, 21612, 13224}
CALL_EVENTS = ["initiated", "ringing", "answered", "completed"]


@dataclass(frozen=True)
class AvailableNumber:
    phone_number: str
    locality: str | None
    region: str | None

    def to_json(self) -> dict[str, Any]:
        return {"phoneNumber": self.phone_number, "locality": self.locality, "region": self.region}


@dataclass(frozen=True)
class PurchasedNumber:
    phone_number: str
    sid: str
    locality: str | None
    region: str | None


class NumberNotAtTwilio(Exception):
    """The Twilio account does not hold this number (or no longer has this sid)."""


@dataclass(frozen=True)
class NumberWebhooks:
    """Where Twilio sends a number's calls: this deployment, and a fallback ("" for none)."""

    voice_url: str
    status_callback: str
    voice_fallback_url: str

    def to_json(self) -> dict[str, str]:
        return {
            "voiceUrl": self.voice_url,
            "statusCallback": self.status_callback,
            "voiceFallbackUrl": self.voice_fallback_url,
        }


@dataclass(frozen=True)
class OutboundCall:
    from_number: str
    to_number: str
    twiml_url: str
    status_callback: str
    record: bool
    recording_status_callback: str


class TwilioGateway:
    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        api_base_url: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._client = twilio_client(account_sid, auth_token, api_base_url, timeout)

    def available_numbers(self, area_code: str | None, limit: int) -> list[AvailableNumber]:
        with twilio_errors("list available numbers"):
            found = self._client.available_phone_numbers(COUNTRY).local.list(
                area_code=int(area_code) if area_code else None, limit=limit
            )
        return [AvailableNumber(n.phone_number, n.locality, n.region) for n in found]

    def purchase(self, area_code: str | None, webhooks: NumberWebhooks) -> PurchasedNumber:
        """Buy a local number (in `area_code` when given) that calls this deployment.

        Tries the next offer when one is bought by somebody else in between.
        """
        offers = self.available_numbers(area_code, limit=3)
        for offer in offers:
            try:
                with twilio_errors("buy a number"):
                    bought = self._client.incoming_phone_numbers.create(
                        phone_number=offer.phone_number,
                        voice_url=webhooks.voice_url,
                        voice_method="POST",
                        voice_fallback_url=webhooks.voice_fallback_url,
                        voice_fallback_method="POST",
                        status_callback=webhooks.status_callback,
                        status_callback_method="POST",
                    )
            except ApiError as err:
                if err.code == "no_numbers_available":
                    continue
                raise
            return PurchasedNumber(bought.phone_number, bought.sid, offer.locality, offer.region)
        where = f" in area code {area_code}" if area_code else ""
        raise ApiError(409, "no_numbers_available", f"Twilio has no number to sell{where}")

    def find_number(self, phone_number: str) -> str | None:
        """The sid of `phone_number` in the account, or None if the account lacks it."""
        with twilio_errors("look a number up"):
            found = self._client.incoming_phone_numbers.list(phone_number=phone_number, limit=20)
        # Twilio matches partial numbers too: only the number itself will do.
        for number in found:
            if number.phone_number == phone_number:
                sid: str = number.sid
                return sid
        return None

    def configure_number(self, sid: str, webhooks: NumberWebhooks) -> None:
        """Point the number's calls, status callbacks and fallback as `webhooks` says.

        NumberNotAtTwilio when the account has no number with this sid.
        """
        try:
            with twilio_errors("configure a number"):
                self._client.incoming_phone_numbers(sid).update(
                    voice_url=webhooks.voice_url,
                    voice_method="POST",
                    voice_fallback_url=webhooks.voice_fallback_url,
                    voice_fallback_method="POST",
                    status_callback=webhooks.status_callback,
                    status_callback_method="POST",
                )
        except ApiError as err:
            if err.code == "twilio_not_found":
                raise NumberNotAtTwilio(sid) from None
            raise

    def release(self, sid: str) -> None:
        with twilio_errors("release a number"):
            self._client.incoming_phone_numbers(sid).delete()

    def place_call(self, call: OutboundCall) -> str:
        recording: dict[str, Any] = {}
        if call.record:
            recording = {
                "record": True,
                "recording_channels": "dual",
                "recording_status_callback": call.recording_status_callback,
                "recording_status_callback_method": "POST",
                "recording_status_callback_event": ["completed"],
            }
        with twilio_errors("place a call"):
            placed = self._client.calls.create(
                to=call.to_number,
                from_=call.from_number,
                url=call.twiml_url,
                method="GET",
                status_callback=call.status_callback,
                status_callback_method="POST",
                status_callback_event=CALL_EVENTS,
                **recording,
            )
        sid: str = placed.sid
        return sid


@contextmanager
def twilio_errors(doing: str) -> Iterator[None]:
    """Twilio's and the network's failures as ApiErrors with the right status."""
    try:
        yield
    except TwilioRestException as err:
        log.warning("Twilio refused to %s: %s %s %s", doing, err.status, err.code, err.msg)
        if err.code in NOTHING_TO_BUY:
            raise ApiError(409, "no_numbers_available", f"Twilio: {err.msg}") from None
        if err.code in UNCALLABLE:
            raise ApiError(400, "number_not_callable", f"Twilio: {err.msg}") from None
        if err.status == 404:
            # Only asking for a resource by its sid gets here (never a listing).
            raise ApiError(502, "twilio_not_found", f"Twilio: {err.msg}") from None
        if err.status == 429:
            raise ApiError(503, "twilio_busy", "Twilio is rate-limiting us; retry later") from None
        raise ApiError(
            502, "twilio_error", f"Twilio refused to {doing}: {err.msg} ({err.code})"
        ) from None
    except TwilioException as err:
        # Listing a page that Twilio refused raises a bare TwilioException
        # carrying the HTTP response; anything else is a transport failure.
        response = err.args[1] if len(err.args) > 1 else None
        status = getattr(response, "status_code", None)
        if status is None:
            log.warning("Twilio unreachable while trying to %s: %s", doing, err)
            raise unreachable(doing) from None
        log.warning("Twilio refused to %s: HTTP %s", doing, status)
        if status == 429:
            raise ApiError(503, "twilio_busy", "Twilio is rate-limiting us; retry later") from None
        raise ApiError(502, "twilio_error", f"Twilio refused to {doing}: HTTP {status}") from None
    except requests.RequestException as err:
        log.warning("Twilio unreachable while trying to %s: %s", doing, err)
        raise unreachable(doing) from None


def unreachable(doing: str) -> ApiError:
    return ApiError(502, "twilio_unreachable", f"Twilio could not be reached to {doing}")
