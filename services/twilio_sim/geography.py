"""Where a phone number is, and which numbers the simulator can offer (pure: no I/O).

Twilio derives the caller's and the called number's city, state, ZIP and
country from the numbers themselves; the simulator does the same from a small
table of North American area codes. Numbers it offers for purchase are in the
555-01XX block (reserved for fiction), then the rest of 555, so a demo never
shows somebody's real phone number.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Place:
    city: str
    state: str
    zip: str
    country: str


NOWHERE = Place("", "", "", "")

# Twilio reports the caller's city in capitals ("SAN FRANCISCO").
AREA_CODES: dict[str, Place] = {
    "415": Place("SAN FRANCISCO", "CA", "94103", "US"),
    "510": Place("OAKLAND", "CA", "94612", "US"),
    "213": Place("LOS ANGELES", "CA", "90012", "US"),
    "212": Place("NEW YORK", "NY", "10001", "US"),
    "312": Place("CHICAGO", "IL", "60601", "US"),
    "617": Place("BOSTON", "MA", "02108", "US"),
    "206": Place("SEATTLE", "WA", "98101", "US"),
    "512": Place("AUSTIN", "TX", "78701", "US"),
    "305": Place("MIAMI", "FL", "33131", "US"),
    "202": Place("WASHINGTON", "DC", "20001", "US"),
    "303": Place("DENVER", "CO", "80202", "US"),
    "404": Place("ATLANTA", "GA", "30303", "US"),
}

# Longest prefix first, so "+1" does not shadow anything longer.
_COUNTRY_PREFIXES = (
    ("+44", "GB"),
    ("+33", "FR"),
    ("+49", "DE"),
    ("+34", "ES"),
    ("+39", "IT"),
    ("+61", "AU"),
    ("+52", "MX"),
    ("+55", "BR"),
    ("+81", "JP"),
    ("+91", "IN"),
    ("+1", "US"),
)

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_NANP = re.compile(r"^\+1([2-9]\d{2})([2-9]\d{2})(\d{4})$")
_AREA_CODE = re.compile(r"^[2-9]\d{2}$")


def is_e164(number: str) -> bool:
    return bool(_E164.match(number))


def is_area_code(value: str) -> bool:
    return bool(_AREA_CODE.match(value))


def area_code_of(number: str) -> str | None:
    match = _NANP.match(number)
    return match.group(1) if match else None


def locate(number: str) -> Place:
    """The geography Twilio would report for `number` (empty fields when unknown)."""
    area = area_code_of(number)
    if area is not None:
        return AREA_CODES.get(area, Place("", "", "", "US"))
    for prefix, country in _COUNTRY_PREFIXES:
        if number.startswith(prefix) and is_e164(number):
            return Place("", "", "", country)
    return NOWHERE


def friendly_name(number: str) -> str:
    """ "+14155550100" -> "(415) 555-0100", as Twilio names US numbers."""
    match = _NANP.match(number)
    if not match:
        return number
    area, exchange, line = match.groups()
    return f"({area}) {exchange}-{line}"


def candidate_numbers(area_code: str) -> Iterator[str]:
    """Every number the simulator may offer in `area_code`, fictional block first."""
    for line in range(100, 200):
        yield f"+1{area_code}555{line:04d}"
    for line in range(200, 10000):
        if line != 1212:  # directory assistance
            yield f"+1{area_code}555{line:04d}"


def _matches(number: str, contains: str | None) -> bool:
    if not contains:
        return True
    pattern = re.escape(contains).replace(r"\*", r"\d")
    return re.search(pattern, number) is not None


def offer(
    area_codes: list[str], owned: set[str], count: int, contains: str | None = None
) -> list[str]:
    """Up to `count` numbers in the given area codes that nobody owns yet."""
    found: list[str] = []
    for area in area_codes:
        for number in candidate_numbers(area):
            if len(found) >= count:
                return found
            if number not in owned and _matches(number, contains):
                found.append(number)
    return found
