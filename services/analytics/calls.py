"""The call list and summary as the API speaks them: query parameters, cursor, shapes.

Parsing turns query strings into a `CallFilter` (or a 400 naming the bad
parameter); `CallRecord` and `Summary` are what leaves as JSON or CSV. The
cursor is opaque to clients: base64url of the last row's (startedAt ms,
callSid), the keyset of the newest-first order. A bare date or a date-time
without an offset is read in the request's time zone (the client's, or
`tz`), so `from=2024-05-01` is that day's local midnight.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.analytics.facts import STATUSES
from switchboard.http import ApiError, parse_json
from switchboard.privacy import E164

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
# How many rows a metric lists when `limit` is left out (the call list's is DEFAULT_LIMIT).
TOP_CALLERS_LIMIT = 10
GEOGRAPHY_LIMIT = 50
MISSED_CALLS_LIMIT = 100
DIRECTIONS = ("inbound", "outbound")
FORMATS = ("json", "csv")
# What a spreadsheet reads as the start of a formula (OWASP's CSV injection list).
CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# An issued cursor is a few dozen characters; anything far longer is not one.
MAX_CURSOR_CHARS = 512

CSV_COLUMNS = (
    "callSid",
    "clientId",
    "direction",
    "from",
    "to",
    "forwardedTo",
    "status",
    "answered",
    "durationSec",
    "startedAt",
    "recorded",
    "callerCity",
    "callerState",
    "callerCountry",
    "campaign",
    "recordingStored",
)


@dataclass(frozen=True)
class CallFilter:
    client_id: str | None = None
    direction: str | None = None
    status: str | None = None
    start: datetime | None = None  # inclusive, on startedAt
    end: datetime | None = None  # exclusive
    campaign: str | None = None  # "" selects calls without a campaign
    min_duration_sec: int | None = None  # talk time of at least this many seconds
    caller: str | None = None  # calls from (inbound) or to (outbound) this number


@dataclass(frozen=True)
class Cursor:
    started_ms: int
    call_sid: str

    def encode(self) -> str:
        raw = json.dumps([self.started_ms, self.call_sid], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """The cursor in `token`, or a 400 `invalid_cursor` for anything this API never issued.

        A token is client input: it may be no base64, or base64 of anything
        (deep JSON included, which `parse_json` refuses without recursing).
        """
        refused = ApiError(400, "invalid_cursor", "cursor is not one this API issued")
        if len(token) > MAX_CURSOR_CHARS or not token.isascii():
            raise refused
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            decoded = parse_json(raw, max_depth=1)
        except (binascii.Error, ValueError):
            raise refused from None
        if not isinstance(decoded, list) or len(decoded) != 2:
            raise refused
        started_ms, call_sid = decoded
        # bool is an int to Python; ClickHouse takes the time as an Int64.
        if type(started_ms) is not int or not 0 <= started_ms < 2**63:
            raise refused
        if not isinstance(call_sid, str):
            raise refused
        return cls(started_ms, call_sid)


@dataclass(frozen=True)
class CallQuery:
    filter: CallFilter
    limit: int | None  # None only for a CSV export without a limit
    cursor: Cursor | None
    format: str


@dataclass(frozen=True)
class CallRecord:
    callSid: str
    clientId: str | None
    direction: str
    fromNumber: str
    toNumber: str
    forwardedTo: str | None
    status: str
    answered: bool
    durationSec: int
    startedAt: datetime
    recorded: bool
    callerCity: str
    callerState: str
    callerCountry: str
    campaign: str = ""
    recordingStored: bool = False
    # the caller's voicemail, read for one call's detail only
    voicemailSid: str = ""
    voicemailDurationSec: int = 0
    # the missed-call text-back (reporting's sms.sent), read for one call's detail only
    textBackTo: str = ""
    textBackMessageSid: str = ""
    textBackSentAt: str = ""

    def voicemail_json(self) -> dict[str, Any] | None:
        """The call's voicemail for `/api/calls/<callSid>`, or None.

        Analytics does not own recordings: the link is the edge path where
        the recordings service lists the call's recordings with signed links.
        """
        if not self.voicemailSid:
            return None
        return {
            "recordingSid": self.voicemailSid,
            "durationSec": self.voicemailDurationSec,
            "recordingUrl": f"/api/twilio/recording/{self.callSid}",
        }

    def text_back_json(self) -> dict[str, Any] | None:
        """The text the caller got after missing this call, or None."""
        if not self.textBackMessageSid:
            return None
        return {
            "to": self.textBackTo,
            "messageSid": self.textBackMessageSid,
            "sentAt": self.textBackSentAt,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "callSid": self.callSid,
            "clientId": self.clientId,
            "direction": self.direction,
            "from": self.fromNumber,
            "to": self.toNumber,
            "forwardedTo": self.forwardedTo,
            "status": self.status,
            "answered": self.answered,
            "durationSec": self.durationSec,
            "startedAt": iso_utc(self.startedAt),
            "recorded": self.recorded,
            "callerCity": self.callerCity,
            "callerState": self.callerState,
            "callerCountry": self.callerCountry,
            "campaign": self.campaign or None,
            "recordingStored": self.recordingStored,
        }

    def to_csv_row(self) -> list[str]:
        body = self.to_json()
        cells = []
        for column in CSV_COLUMNS:
            value = body[column]
            if isinstance(value, bool):
                cells.append("true" if value else "false")
            else:
                cells.append(csv_cell("" if value is None else str(value)))
        return cells


def csv_cell(text: str) -> str:
    """`text` as a spreadsheet will show it, never run it: a leading ' before a formula start.

    Campaign names, caller cities and numbers come from clients and callers;
    a cell starting with =, +, -, @, tab or CR would be a formula in Excel or
    Sheets (=HYPERLINK(...) in the admin's sheet). As OWASP advises, every
    such cell is prefixed, phone numbers (+1415...) included.
    """
    return "'" + text if text.startswith(CSV_FORMULA_STARTS) else text


@dataclass(frozen=True)
class Summary:
    """Call counts and rates over the filtered calls.

    `missed` = no-answer + busy + failed + canceled + voicemail (a fallback
    call is `failed`, so it is missed); `voicemail` counts those of them
    where the caller left a message. `answerRate` = answered calls / calls with a
    decided outcome that could have been answered: completed + missed. It
    leaves out `unrouted` calls (no client owns the number, nobody to answer)
    and calls still `in-progress` (outcome unknown). 0.0 when there are none.
    `avgDurationSec` is the mean talk time of answered calls.
    """

    totalCalls: int
    inbound: int
    outbound: int
    completed: int
    missed: int
    totalDurationSec: int
    avgDurationSec: float
    answerRate: float
    answered: int = 0
    unrouted: int = 0
    voicemail: int = 0

    @classmethod
    def compute(
        cls,
        *,
        total_calls: int,
        inbound: int,
        outbound: int,
        completed: int,
        missed: int,
        total_duration_sec: int,
        answered: int,
        unrouted: int = 0,
        voicemail: int = 0,
    ) -> Summary:
        decided = completed + missed
        return cls(
            totalCalls=total_calls,
            inbound=inbound,
            outbound=outbound,
            completed=completed,
            missed=missed,
            totalDurationSec=total_duration_sec,
            avgDurationSec=round(total_duration_sec / answered, 1) if answered else 0.0,
            answerRate=round(answered / decided, 4) if decided else 0.0,
            answered=answered,
            unrouted=unrouted,
            voicemail=voicemail,
        )

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


EARLIEST_YEAR, LATEST_YEAR = 1970, 2999


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_instant(name: str, raw: str, end_of_day: bool = False, tz: str = "UTC") -> datetime:
    """An ISO 8601 date or date-time; without an offset it is in `tz`.

    A bare date as the `to` bound means the whole (local) day is included.
    """
    text = raw.strip()
    zone = ZoneInfo(tz)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            if end_of_day:
                day += timedelta(days=1)
            moment = datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=zone)
            moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ApiError(
            400,
            "invalid_parameter",
            f"{name} must be an ISO 8601 date or date-time (e.g. 2024-05-01T00:00:00Z), "
            f"got {raw!r}",
        ) from None
    # Calls are stored as DateTime64 from 1970 on; far-off bounds would also
    # overflow the date arithmetic of ranges and buckets.
    if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        raise ApiError(
            400,
            "invalid_parameter",
            f"{name} must be between {EARLIEST_YEAR} and {LATEST_YEAR}, got {raw!r}",
        )
    return moment


def _choice(args: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    value = args.get(name)
    if value is None or value == "":
        return None
    if value not in allowed:
        raise ApiError(
            400, "invalid_parameter", f"{name} must be one of {', '.join(allowed)}, got {value!r}"
        )
    return value


def parse_filter(
    args: Mapping[str, str], client_id: str | None = None, tz: str = "UTC"
) -> CallFilter:
    """The filter of a request; `client_id` is the scope the caller is allowed."""
    start = parse_instant("from", args["from"], tz=tz) if args.get("from") else None
    end = parse_instant("to", args["to"], end_of_day=True, tz=tz) if args.get("to") else None
    if start is not None and end is not None and start >= end:
        raise ApiError(400, "invalid_parameter", "from must be earlier than to")
    campaign = args.get("campaign")
    caller = args.get("caller") or None
    if caller is not None and not E164.match(caller):
        raise ApiError(400, "invalid_parameter", f"caller must be an E.164 number, got {caller!r}")
    return CallFilter(
        client_id=client_id,
        direction=_choice(args, "direction", DIRECTIONS),
        status=_choice(args, "status", STATUSES),
        start=start,
        end=end,
        campaign=campaign.strip() if campaign is not None else None,
        min_duration_sec=parse_count("minDuration", args.get("minDuration")),
        caller=caller,
    )


def parse_count(name: str, raw: str | None) -> int | None:
    """A whole number of seconds (or items) from 0, or None when absent."""
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        raise ApiError(
            400, "invalid_parameter", f"{name} must be a whole number from 0, got {raw!r}"
        )
    return int(raw)


def parse_limit(raw: str | None, default: int | None) -> int | None:
    if raw is None or raw == "":
        return default
    # ASCII and short: int() refuses "²" (which isdigit() takes) and 4,300+ digits.
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9 or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiError(
            400, "invalid_parameter", f"limit must be an integer from 1 to {MAX_LIMIT}, got {raw!r}"
        )
    return int(raw)


def parse_call_query(
    args: Mapping[str, str], client_id: str | None = None, tz: str = "UTC"
) -> CallQuery:
    fmt = _choice(args, "format", FORMATS) or "json"
    cursor = Cursor.decode(args["cursor"]) if args.get("cursor") else None
    # An export has no page size: it streams every matching call unless limited.
    limit = parse_limit(args.get("limit"), None if fmt == "csv" else DEFAULT_LIMIT)
    return CallQuery(
        filter=parse_filter(args, client_id, tz), limit=limit, cursor=cursor, format=fmt
    )
