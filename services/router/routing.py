"""The routing decision for one incoming call, and the fact it leaves behind.

Pure: given the called number and its assignment (or none), `decide` says
whether the call is forwarded, where to and whether it is recorded, and
`routed_event` turns that into the `call.routed` event. No I/O here; the
in-memory table supplies the assignment and the app publishes the event.
A number with a call flow also gets the flow and whether the call comes in
business hours, judged at the moment given (the caller's clock, so tests
can choose it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from services.router.directory import NumberAssignment
from services.router.flows import Flow
from switchboard.events import Event, delivery_id

Disposition = Literal["forwarded", "unassigned"]
SOURCE = "router"


@dataclass(frozen=True)
class RoutingDecision:
    phone_number: str
    disposition: Disposition
    client_id: str | None = None
    forward_to: str | None = None
    record: bool = False
    recording_disclaimer: str | None = None
    campaign: str | None = None
    # None: forwarded to forward_to as before flows existed.
    flow: Flow | None = None
    in_hours: bool = True

    def event_data(self) -> dict[str, Any]:
        return {
            "phoneNumber": self.phone_number,
            "disposition": self.disposition,
            "clientId": self.client_id,
            "forwardTo": self.forward_to,
            "recording": self.record,
            "campaign": self.campaign,
        }


def decide(
    phone_number: str, assignment: NumberAssignment | None, now: datetime | None = None
) -> RoutingDecision:
    """The decision for a call to `phone_number` at `now` (None: the present moment)."""
    if assignment is None:
        return RoutingDecision(phone_number=phone_number, disposition="unassigned")
    flow = assignment.flow
    in_hours = True
    if flow is not None:
        in_hours = flow.is_open(now or datetime.now(UTC), assignment.timezone)
    return RoutingDecision(
        phone_number=phone_number,
        disposition="forwarded",
        client_id=assignment.client_id,
        forward_to=assignment.forward_to,
        record=assignment.record,
        recording_disclaimer=assignment.recording_disclaimer,
        campaign=assignment.campaign,
        flow=flow,
        in_hours=in_hours,
    )


def routed_event(decision: RoutingDecision, call_sid: str, request_id: str | None) -> Event:
    """The `call.routed` event for a decision.

    Its id is derived from the CallSid, so when Twilio retries the voice
    webhook and the call is routed again, consumers see a duplicate.
    """
    return Event(
        type="call.routed",
        source=SOURCE,
        data=decision.event_data(),
        id=delivery_id("call.routed", {"CallSid": call_sid}),
        callSid=call_sid,
        clientId=decision.client_id,
        requestId=request_id or None,
    )
