"""The routing decision for one incoming call, and the fact it leaves behind.

Pure: given the called number and its assignment (or none), `decide` says
whether the call is forwarded, where to and whether it is recorded, and
`routed_event` turns that into the `call.routed` event. No I/O here; the
in-memory table supplies the assignment and the app publishes the event.
The decision itself is the kernel's (switchboard/callflow.py), so ingress,
routing from its copy of the number events while router is down, decides
exactly as router does. A number with a call flow also gets the flow and
whether the call comes in business hours, judged at the moment given.
"""

from __future__ import annotations

from datetime import UTC, datetime

from services.router.directory import NumberAssignment
from switchboard import callflow
from switchboard.callflow import Disposition, RoutingDecision
from switchboard.events import Event

SOURCE = "router"

__all__ = ["SOURCE", "Disposition", "RoutingDecision", "decide", "routed_event"]


def decide(
    phone_number: str, assignment: NumberAssignment | None, now: datetime | None = None
) -> RoutingDecision:
    """The decision for a call to `phone_number` at `now` (None: the present moment)."""
    return callflow.decide(phone_number, assignment, now or datetime.now(UTC))


def routed_event(decision: RoutingDecision, call_sid: str, request_id: str | None) -> Event:
    """The `call.routed` event router publishes for a decision (id derived from the CallSid)."""
    return callflow.routed_event(decision, call_sid, request_id, SOURCE)
