"""Who hears of a client's missed call, and when (pure).

A client's settings arrive in router's `client.settings-changed` events
(`notifications.missedCall`: email addresses, SMS numbers, a webhook with its
signing secret, quiet hours in the client's zone). `ClientSettings.of_event`
keeps what reporting needs; `plan` turns one alert into one `Delivery` per
channel and recipient, each with the moment it may go: now, or the end of the
quiet hours the alert fell into. Alerts off (no notifications, or empty
ones) plans nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from services.reporting.alerts import DEFAULT_TIMEZONE, zone

EMAIL, SMS, WEBHOOK = "email", "sms", "webhook"
CHANNELS = (SMS, EMAIL, WEBHOOK)


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time

    @classmethod
    def of(cls, raw: Any) -> QuietHours | None:
        if not isinstance(raw, dict):
            return None
        try:
            return cls(time.fromisoformat(raw["start"]), time.fromisoformat(raw["end"]))
        except (KeyError, TypeError, ValueError):
            return None

    def held_until(self, moment: datetime, tz_name: str) -> datetime | None:
        """The end of the quiet hours `moment` falls in (aware), or None when outside them.

        The window is [start, end) in the client's wall-clock time; a start
        after the end spans midnight. The end is found on the local calendar,
        so a DST change inside the window moves it as the clock on the wall.
        """
        if self.start == self.end:
            return None
        tz = zone(tz_name)
        local = moment.astimezone(tz)
        now = local.time().replace(tzinfo=None)
        if self.start < self.end:
            inside = self.start <= now < self.end
            end_day = local.date()
        else:
            inside = now >= self.start or now < self.end
            end_day = local.date() + timedelta(days=1) if now >= self.start else local.date()
        if not inside:
            return None
        return datetime.combine(end_day, self.end, tzinfo=tz)


@dataclass(frozen=True)
class Webhook:
    url: str
    secret: str


@dataclass(frozen=True)
class ClientSettings:
    client_id: str
    name: str = ""
    timezone: str = DEFAULT_TIMEZONE
    deleted: bool = False
    emails: tuple[str, ...] = ()
    sms: tuple[str, ...] = ()
    webhook: Webhook | None = None
    quiet_hours: QuietHours | None = None
    occurred_at: str = ""

    @classmethod
    def of_event(cls, data: dict[str, Any], occurred_at: str) -> ClientSettings:
        """From a client.settings-changed event's data (unknown or missing fields: off)."""
        notifications = data.get("notifications")
        missed = notifications.get("missedCall") if isinstance(notifications, dict) else None
        missed = missed if isinstance(missed, dict) else {}
        hook = missed.get("webhook")
        webhook = None
        if isinstance(hook, dict) and hook.get("url") and hook.get("secret"):
            webhook = Webhook(str(hook["url"]), str(hook["secret"]))
        return cls(
            client_id=str(data["clientId"]),
            name=str(data.get("name") or ""),
            timezone=str(data.get("timezone") or DEFAULT_TIMEZONE),
            deleted=bool(data.get("deleted")),
            emails=tuple(str(a) for a in missed.get("email") or ()),
            sms=tuple(str(n) for n in missed.get("sms") or ()),
            webhook=webhook,
            quiet_hours=QuietHours.of(missed.get("quietHours")),
            occurred_at=occurred_at,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "clientId": self.client_id,
            "name": self.name,
            "timezone": self.timezone,
            "deleted": self.deleted,
            "emails": list(self.emails),
            "sms": list(self.sms),
            "webhook": (
                {"url": self.webhook.url, "secret": self.webhook.secret} if self.webhook else None
            ),
            "quietHours": (
                {
                    "start": self.quiet_hours.start.isoformat("minutes"),
                    "end": self.quiet_hours.end.isoformat("minutes"),
                }
                if self.quiet_hours
                else None
            ),
            "occurredAt": self.occurred_at,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ClientSettings:
        hook = raw.get("webhook")
        return cls(
            client_id=raw["clientId"],
            name=raw.get("name", ""),
            timezone=raw.get("timezone", DEFAULT_TIMEZONE),
            deleted=bool(raw.get("deleted")),
            emails=tuple(raw.get("emails", ())),
            sms=tuple(raw.get("sms", ())),
            webhook=Webhook(hook["url"], hook["secret"]) if hook else None,
            quiet_hours=QuietHours.of(raw.get("quietHours")),
            occurred_at=raw.get("occurredAt", ""),
        )

    @property
    def alerts_on(self) -> bool:
        return not self.deleted and bool(self.emails or self.sms or self.webhook)


@dataclass(frozen=True)
class Delivery:
    """One message to send: its idempotency key is (callSid, channel, recipient)."""

    channel: str
    recipient: str
    not_before: datetime
    secret: str | None = field(default=None, repr=False)


def plan(settings: ClientSettings | None, now: datetime) -> list[Delivery]:
    """Every delivery of one alert, held to the end of quiet hours when `now` is inside them."""
    if settings is None or not settings.alerts_on:
        return []
    held = settings.quiet_hours.held_until(now, settings.timezone) if settings.quiet_hours else None
    when = held or now
    planned = [Delivery(SMS, number, when) for number in dict.fromkeys(settings.sms)]
    planned += [Delivery(EMAIL, address, when) for address in dict.fromkeys(settings.emails)]
    if settings.webhook is not None:
        planned.append(Delivery(WEBHOOK, settings.webhook.url, when, settings.webhook.secret))
    return planned
