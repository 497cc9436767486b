"""Where router may send calls: the toll-fraud rules for numbers it dials (pure).

Every number router makes Twilio dial (a client's or a number's `forwardTo`,
an outbound call's `toNumber`) is one a leaked key or a careless client could
point at a premium-rate line and bill the account for. `DialPolicy.check`
allows only numbers that `phonenumbers` places in an allowed country and
refuses costly kinds anywhere: premium rate, shared cost, universal access
numbers, the NANP's 900/976 and the global satellite and premium codes
(+881, +882, +883, +979). A number phonenumbers cannot place in a country is
refused too: an unknown number is not one to spend money on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberType

from switchboard.http import ApiError

DEFAULT_COUNTRY = "US"
DEFAULT_DAILY_OUTBOUND_CAP = 200
# Refused whatever the metadata says: pay-per-call and satellite prefixes
# whose metadata may lag behind the numbers Twilio would actually dial.
COSTLY_PREFIXES = ("+1900", "+1976", "+881", "+882", "+883", "+979")
COSTLY_TYPES = {
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    PhoneNumberType.SHARED_COST: "a shared-cost number",
    PhoneNumberType.UAN: "a universal access number",
}


def parse_countries(raw: str) -> frozenset[str]:
    """ISO 3166 alpha-2 codes from "US,CA"; ValueError naming any phonenumbers does not know."""
    codes = {part.strip().upper() for part in raw.split(",") if part.strip()}
    if not codes:
        raise ValueError("no country given")
    unknown = sorted(codes - phonenumbers.SUPPORTED_REGIONS)
    if unknown:
        raise ValueError(f"not a country code phonenumbers knows: {', '.join(unknown)}")
    return frozenset(codes)


def account_country(phone_number: str | None) -> str:
    """The country of the account's own number (TWILIO_PHONE_NUMBER), else US."""
    if not phone_number:
        return DEFAULT_COUNTRY
    try:
        parsed = phonenumbers.parse(phone_number)
    except phonenumbers.NumberParseException:
        return DEFAULT_COUNTRY
    region = phonenumbers.region_code_for_number(parsed) or (
        phonenumbers.region_code_for_country_code(parsed.country_code or 0)
    )
    return region if region in phonenumbers.SUPPORTED_REGIONS else DEFAULT_COUNTRY


@dataclass(frozen=True)
class DialPolicy:
    allowed_countries: frozenset[str] = frozenset({DEFAULT_COUNTRY})

    @classmethod
    def of(cls, countries: Iterable[str]) -> DialPolicy:
        return cls(frozenset(countries))

    def refusal(self, number: str) -> str | None:
        """Why `number` (E.164) may not be dialed, or None when it may."""
        if number.startswith(COSTLY_PREFIXES):
            return "is a premium-rate or satellite number"
        try:
            parsed = phonenumbers.parse(number)
        except phonenumbers.NumberParseException:
            return "is not a dialable phone number"
        costly = COSTLY_TYPES.get(phonenumbers.number_type(parsed))
        if costly is not None:
            return f"is {costly}"
        region = phonenumbers.region_code_for_number(parsed)
        if region is None or region not in phonenumbers.SUPPORTED_REGIONS:
            return "is not a number of any country calls may go to"
        if region not in self.allowed_countries:
            allowed = ", ".join(sorted(self.allowed_countries))
            return f"is in {region}, and calls may only go to {allowed}"
        return None

    def check(self, field: str, number: str | None) -> None:
        """ApiError 400 naming `field` when `number` may not be dialed."""
        if number is None:
            return
        reason = self.refusal(number)
        if reason is not None:
            raise ApiError(400, "number_not_allowed", f"{field} {number} {reason}")
