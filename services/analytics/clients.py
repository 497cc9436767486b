"""What analytics knows of each client: its time zone, lead thresholds, conversion value.

Router owns client settings and publishes the current ones as
`client.settings-changed` on the compacted client-events topic (keyed by
clientId, newest occurredAt wins). Analytics keeps the fields it reports
with: `timezone` (days and hours are shown in it), `valuePerConversion` (the
default value of a recorded conversion) and `leadThresholds`
({"shortSec", "longSec", "qualifiedSec"}: the talk-time buckets of lead
quality and the talk time that makes a call a qualified lead), `retentionDays`
(the client's calls older than that are deleted) and, once the client is
deleted, `purgeAfter` (when all its data goes). A missing or unusable field
falls back to the service's configured default.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from switchboard.events import Event, InvalidEvent, read_time

SETTINGS_TYPE = "client.settings-changed"


@dataclass(frozen=True)
class LeadThresholds:
    """Talk-time buckets: under short, short to long, long and over; qualified from qualified."""

    short_sec: int = 30
    long_sec: int = 120
    qualified_sec: int = 30

    def buckets(self) -> list[tuple[str, int, int | None]]:
        """(label, minSec inclusive, maxSec exclusive or None) of each bucket."""
        short, long = self.short_sec, self.long_sec
        return [
            (f"under {duration_label(short)}", 0, short),
            (f"{duration_label(short)} - {duration_label(long)}", short, long),
            (f"{duration_label(long)} and over", long, None),
        ]


@dataclass(frozen=True)
class ClientSettings:
    clientId: str
    timezone: str | None = None
    valuePerConversion: float | None = None
    leadShortSec: int | None = None
    leadLongSec: int | None = None
    leadQualifiedSec: int | None = None
    name: str = ""
    deleted: bool = False
    version: int = 0  # occurredAt in ms
    retentionDays: int | None = None  # calls older than this are deleted
    purgeAfter: datetime | None = None  # a deleted client's data goes at this moment

    def thresholds(self, default: LeadThresholds) -> LeadThresholds:
        short = self.leadShortSec if self.leadShortSec is not None else default.short_sec
        long = self.leadLongSec if self.leadLongSec is not None else default.long_sec
        if long <= short:
            short, long = default.short_sec, default.long_sec
        qualified = (
            self.leadQualifiedSec if self.leadQualifiedSec is not None else default.qualified_sec
        )
        return LeadThresholds(short, long, qualified)


def duration_label(seconds: int) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


@lru_cache(maxsize=1)
def known_timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def valid_timezone(name: str) -> bool:
    if name not in known_timezones():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _seconds(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return int(value)


def _money(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return None
    return float(value)


def without_secrets(
    events: Sequence[Event], payloads: Mapping[str, bytes] | None
) -> tuple[list[Event], Mapping[str, bytes] | None]:
    """The events as analytics may keep them: no webhook signing secret.

    client.settings-changed carries the secret of a client's alert webhook for
    the reporting service; the raw events analytics stores are readable by
    Grafana's user, so the secret is dropped from the event and its payload
    (the event is then stored re-encoded).
    """
    kept: list[Event] = []
    raw = dict(payloads) if payloads is not None else None
    for event in events:
        webhook = _webhook_of(event)
        if webhook is None or "secret" not in webhook:
            kept.append(event)
            continue
        data = dict(event.data)
        notifications = dict(data["notifications"])
        missed = dict(notifications["missedCall"])
        missed["webhook"] = {k: v for k, v in webhook.items() if k != "secret"}
        notifications["missedCall"] = missed
        data["notifications"] = notifications
        kept.append(dataclasses.replace(event, data=data))
        if raw is not None:
            raw.pop(event.id, None)
    return kept, raw


def _webhook_of(event: Event) -> dict[str, Any] | None:
    if event.type != SETTINGS_TYPE:
        return None
    notifications = event.data.get("notifications")
    missed = notifications.get("missedCall") if isinstance(notifications, dict) else None
    webhook = missed.get("webhook") if isinstance(missed, dict) else None
    return webhook if isinstance(webhook, dict) else None


def settings_from_event(event: Event) -> ClientSettings | None:
    """The settings a client.settings-changed event carries; None for other types."""
    if event.type != SETTINGS_TYPE:
        return None
    data: dict[str, Any] = event.data
    timezone = data.get("timezone")
    thresholds = data.get("leadThresholds")
    if not isinstance(thresholds, dict):
        thresholds = {}
    return ClientSettings(
        clientId=str(data.get("clientId") or event.clientId or ""),
        timezone=timezone if isinstance(timezone, str) and valid_timezone(timezone) else None,
        valuePerConversion=_money(data.get("valuePerConversion")),
        leadShortSec=_seconds(thresholds.get("shortSec")),
        leadLongSec=_seconds(thresholds.get("longSec")),
        leadQualifiedSec=_seconds(thresholds.get("qualifiedSec")),
        name=str(data.get("name") or ""),
        deleted=bool(data.get("deleted")),
        version=int(event.occurred_at.timestamp() * 1000),
        retentionDays=_days(data.get("retentionDays")),
        purgeAfter=_moment(data.get("purgeAfter")),
    )


def _days(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return None
    return value


def _moment(value: Any) -> datetime | None:
    try:
        return read_time(value, "purgeAfter") if value is not None else None
    except InvalidEvent:
        return None
