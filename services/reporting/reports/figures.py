"""A report's figures, asked of the analytics API: the same queries, so the same numbers.

Reporting never reads ClickHouse itself: analytics owns it, and a second
copy of its queries would drift from the API's. Each figure is the answer
of one `/api/analytics/*` endpoint for the client, the period's UTC bounds
and the client's time zone, asked with the admin token and kept as it came.
So `GET /api/reports/<id>` shows exactly what `/api/analytics/*` answers for
that client and range.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests

from services.reporting.reports.periods import Period

# figure name in the report -> (analytics path, extra query parameters)
ENDPOINTS: dict[str, tuple[str, dict[str, str]]] = {
    "summary": ("/api/analytics/summary", {}),
    "callsPerDay": ("/api/analytics/timeseries", {"interval": "day"}),
    "durations": ("/api/analytics/durations", {}),
    "peakHours": ("/api/analytics/peak-hours", {}),
    "campaigns": ("/api/analytics/campaigns", {}),
    "missedCalls": ("/api/analytics/missed-calls", {"limit": "1000"}),
}


class FiguresUnavailable(RuntimeError):
    """Analytics did not answer a figure (down, slow or an error); the build is retried."""


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def query(client_id: str, period: Period, tz: str) -> dict[str, str]:
    """The query every figure is asked with: the client, the period's UTC bounds, its zone."""
    return {
        "clientId": client_id,
        "from": iso_utc(period.start(tz)),
        "to": iso_utc(period.end(tz)),
        "tz": tz,
    }


@dataclass(frozen=True)
class Figures:
    """The analytics answers of one report, by figure name, and what the report adds to them."""

    clientId: str
    period: str
    first: str
    last: str
    timezone: str
    query: dict[str, str]
    answers: dict[str, Any]

    def awaiting_follow_up(self) -> list[dict[str, Any]]:
        """Missed calls of the period whose caller has had no answered call since."""
        calls = self.answers["missedCalls"]["calls"]
        return [call for call in calls if not call.get("followedUp")]

    def to_json(self) -> dict[str, Any]:
        return {
            "clientId": self.clientId,
            "period": self.period,
            "from": self.first,
            "to": self.last,
            "timezone": self.timezone,
            "analyticsQuery": self.query,
            **self.answers,
            "awaitingFollowUp": self.awaiting_follow_up(),
        }

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> Figures:
        return cls(
            clientId=stored["clientId"],
            period=stored["period"],
            first=stored["from"],
            last=stored["to"],
            timezone=stored["timezone"],
            query=stored["analyticsQuery"],
            answers={name: stored[name] for name in ENDPOINTS},
        )


Fetch = Callable[[str, dict[str, str]], dict[str, Any]]


class AnalyticsFigures:
    """Asks analytics for a report's figures over HTTP with the admin token."""

    def __init__(self, base_url: str, admin_token: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {admin_token}"

    def get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            reply = self._session.get(self.base_url + path, params=params, timeout=self.timeout)
        except requests.RequestException as err:
            raise FiguresUnavailable(f"analytics {path}: {err}") from None
        if reply.status_code != 200:
            raise FiguresUnavailable(f"analytics {path}: {reply.status_code} {reply.text[:200]}")
        body: dict[str, Any] = reply.json()
        return body

    def figures(self, client_id: str, period: Period, tz: str) -> Figures:
        asked = query(client_id, period, tz)
        answers = {
            name: self.get(path, {**asked, **extra}) for name, (path, extra) in ENDPOINTS.items()
        }
        return Figures(
            client_id,
            period.kind,
            period.first.isoformat(),
            period.last.isoformat(),
            tz,
            asked,
            answers,
        )

    def close(self) -> None:
        self._session.close()
