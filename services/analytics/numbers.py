"""Which client and campaign owned a Twilio number when a call used it (pure).

Router publishes `number.assigned` / `number.released` on the compacted
number-events topic. Analytics keeps each assignment (number, from, until)
and uses it to attribute a call whose routing decision is missing (router was
down and ingress served the fallback) or carried no campaign. The routing
decision stays the authority: attribution only fills what is empty, and a
call router declared `unassigned` is never given a client.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from services.analytics.facts import CallFact
from switchboard.events import Event, read_time

NUMBER_TYPES = frozenset({"number.assigned", "number.released"})


@dataclass(frozen=True)
class NumberAssignment:
    """One period in which `clientId` held `phoneNumber` (open while releasedAt is None)."""

    phoneNumber: str
    assignedAt: datetime
    clientId: str
    campaign: str = ""
    releasedAt: datetime | None = None
    version: int = 0  # occurredAt of the event, in ms: the newest report wins

    def covers(self, moment: datetime) -> bool:
        return self.assignedAt <= moment and (self.releasedAt is None or moment < self.releasedAt)


def assignment_from_event(event: Event) -> NumberAssignment | None:
    """The assignment a number event reports; None for other event types."""
    if event.type not in NUMBER_TYPES:
        return None
    data: dict[str, Any] = event.data
    occurred = event.occurred_at
    released = event.type == "number.released"
    assigned_raw = data.get("assignedAt")
    released_at = read_time(data["releasedAt"], f"{event.type}: releasedAt") if released else None
    # A release without assignedAt closes the open period; the consumer finds
    # it by number, so mark it with the earliest possible start.
    assigned_at = read_time(assigned_raw, f"{event.type}: assignedAt") if assigned_raw else None
    if assigned_at is None:
        assigned_at = datetime.fromtimestamp(0, occurred.tzinfo)
    return NumberAssignment(
        phoneNumber=str(data["phoneNumber"]),
        assignedAt=assigned_at,
        clientId=str(data.get("clientId") or event.clientId or ""),
        campaign=str(data.get("campaign") or ""),
        releasedAt=released_at,
        version=int(occurred.timestamp() * 1000),
    )


def tracked_number(fact: CallFact) -> str:
    """The Twilio number of the call: the one dialled (inbound) or dialled from (outbound)."""
    return fact.fromNumber if fact.direction == "outbound" else fact.toNumber


def assignment_at(
    assignments: Iterable[NumberAssignment], number: str, moment: datetime
) -> NumberAssignment | None:
    """The assignment of `number` in force at `moment` (the latest start wins)."""
    found = [a for a in assignments if a.phoneNumber == number and a.covers(moment)]
    return max(found, key=lambda a: (a.assignedAt, a.version)) if found else None


def needs_attribution(fact: CallFact) -> bool:
    return fact.disposition != "unassigned" and (not fact.clientId or not fact.campaign)


def attribute(fact: CallFact, assignment: NumberAssignment | None) -> CallFact:
    """Fill the call's missing client and campaign from the number's assignment.

    Only when the assignment's client is the call's (or the call has none):
    a campaign of another client's period never lands on this call.
    """
    if assignment is None or not needs_attribution(fact):
        return fact
    if fact.clientId and fact.clientId != assignment.clientId:
        return fact
    client_id = fact.clientId or assignment.clientId
    campaign = fact.campaign or assignment.campaign
    if (client_id, campaign) == (fact.clientId, fact.campaign):
        return fact
    return replace(fact, clientId=client_id, campaign=campaign)
