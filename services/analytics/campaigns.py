"""Campaign attribution, cost and ROI (pure).

A call belongs to the campaign of its number (the routing decision's tag,
or the number's assignment when that is missing). A campaign's cost is
what its numbers cost over the range: each number's monthly price for the
part of the range it was assigned to the campaign, plus the usage of its
calls (inbound or outbound minutes, the forwarded leg of an answered
inbound call, recording minutes), each leg rounded up to whole minutes as
Twilio bills. ROI = conversion value / cost (None when nothing was spent).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.analytics.numbers import NumberAssignment

SECONDS_PER_MONTH = 365.25 / 12 * 86400


@dataclass(frozen=True)
class CampaignCalls:
    """What the store counts per (client, campaign) over the range."""

    clientId: str
    campaign: str
    calls: int = 0
    answered: int = 0
    qualifiedLeads: int = 0
    usageCost: float = 0.0
    conversions: int = 0
    value: float = 0.0


@dataclass
class Campaign:
    clientId: str
    campaign: str
    calls: int = 0
    answered: int = 0
    qualifiedLeads: int = 0
    conversions: int = 0
    value: float = 0.0
    usageCost: float = 0.0
    numberCost: float = 0.0
    numbers: set[str] = field(default_factory=set)

    @property
    def cost(self) -> float:
        return self.usageCost + self.numberCost

    @property
    def roi(self) -> float | None:
        return round(self.value / self.cost, 4) if self.cost > 0 else None

    def to_json(self) -> dict[str, Any]:
        return {
            "clientId": self.clientId,
            "campaign": self.campaign or None,
            "calls": self.calls,
            "answered": self.answered,
            "qualifiedLeads": self.qualifiedLeads,
            "conversions": self.conversions,
            "value": round(self.value, 2),
            "numbers": len(self.numbers),
            "numberCost": round(self.numberCost, 4),
            "usageCost": round(self.usageCost, 4),
            "cost": round(self.cost, 4),
            "roi": self.roi,
        }


def assigned_seconds(assignment: NumberAssignment, start: datetime | None, end: datetime) -> float:
    """Seconds of [start, end) during which the assignment held."""
    begin = assignment.assignedAt if start is None else max(start, assignment.assignedAt)
    stop = end if assignment.releasedAt is None else min(end, assignment.releasedAt)
    return max(0.0, (stop - begin).total_seconds())


def campaigns(
    counted: Iterable[CampaignCalls],
    assignments: Sequence[NumberAssignment],
    number_monthly: float,
    start: datetime | None,
    end: datetime,
) -> list[Campaign]:
    """Calls and their value per campaign, with the numbers' cost over [start, end).

    A campaign whose numbers cost something in the range is listed even
    without calls. Sorted by calls, then value, then name.
    """
    found: dict[tuple[str, str], Campaign] = {}
    for row in counted:
        entry = found.setdefault((row.clientId, row.campaign), Campaign(row.clientId, row.campaign))
        entry.calls += row.calls
        entry.answered += row.answered
        entry.qualifiedLeads += row.qualifiedLeads
        entry.usageCost += row.usageCost
        entry.conversions += row.conversions
        entry.value += row.value
    for assignment in assignments:
        seconds = assigned_seconds(assignment, start, end)
        if seconds <= 0:
            continue
        key = (assignment.clientId, assignment.campaign)
        entry = found.setdefault(key, Campaign(*key))
        entry.numberCost += number_monthly * seconds / SECONDS_PER_MONTH
        entry.numbers.add(assignment.phoneNumber)
    return sorted(found.values(), key=lambda c: (-c.calls, -c.value, c.clientId, c.campaign))
