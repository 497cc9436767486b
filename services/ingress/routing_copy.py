"""Ingress's last-known copy of every number's routing, and the answers it gives (pure).

Router owns numbers and answers every call while it is up. So that callers
to a known number are still forwarded, with their call flow, when router is
down or late, ingress keeps a copy of what router publishes on the compacted
number-events topic: the newest `number.assigned` of a number (client,
forwardTo, recording and disclaimer, campaign, the client's time zone, the
flow) or its `number.released`. The copy is fed in topic order
(consumer.py); an event older than what the copy holds for its number (a
republished one) changes nothing, so a released number stays released from
its release event on.

`answer_call` and `answer_after_dial` say what router would have said, with
the kernel's decision and TwiML: a known number is routed by its copy, a
released one hears "not in service", and one ingress has never seen gets
no answer here (the caller hears the apology).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from switchboard.callflow import Flow, UnreadableFlow, decide, routed_event
from switchboard.callflow_twiml import dial_step, next_step_twiml, routed_twiml
from switchboard.events import Event

log = logging.getLogger(__name__)

SOURCE = "ingress"
DEFAULT_TIMEZONE = "UTC"


@dataclass(frozen=True)
class CopiedNumber:
    """An assigned number as its newest `number.assigned` describes it (a `callflow.Routing`)."""

    phone_number: str
    client_id: str
    forward_to: str
    record: bool
    recording_disclaimer: str | None
    campaign: str | None
    timezone: str
    flow: Flow | None
    occurred_at: datetime


@dataclass(frozen=True)
class ReleasedNumber:
    phone_number: str
    occurred_at: datetime


Entry = CopiedNumber | ReleasedNumber


def entry_of(event: Event) -> Entry | None:
    """What a number event says of its number now; None for any other event."""
    data = event.data
    if event.type == "number.released":
        return ReleasedNumber(data["phoneNumber"], event.occurred_at)
    if event.type != "number.assigned":
        return None
    flow: Flow | None = None
    if data.get("flow"):
        try:
            flow = Flow.read(data["flow"])
        except UnreadableFlow as err:
            # As router does with a stored flow that no longer reads: route as before flows.
            log.error("call flow of %s ignored in the routing copy: %s", data["phoneNumber"], err)
    return CopiedNumber(
        phone_number=data["phoneNumber"],
        client_id=data["clientId"],
        forward_to=data["forwardTo"],
        record=bool(data.get("recording", False)),
        recording_disclaimer=data.get("recordingDisclaimer"),
        campaign=data.get("campaign"),
        timezone=data.get("timezone") or DEFAULT_TIMEZONE,
        flow=None if flow is None or flow.is_empty else flow,
        occurred_at=event.occurred_at,
    )


class RoutingCopy:
    """Phone number -> its newest entry; fed by one thread, read by every request thread."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._caught_up = threading.Event()

    def apply(self, event: Event) -> bool:
        """Take a number event in; whether it changed the copy (an older one does not)."""
        entry = entry_of(event)
        if entry is None:
            return False
        held = self._entries.get(entry.phone_number)
        if held is not None and held.occurred_at > entry.occurred_at:
            return False
        self._entries[entry.phone_number] = entry
        return True

    def lookup(self, phone_number: str) -> Entry | None:
        return self._entries.get(phone_number)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def caught_up(self) -> bool:
        """Whether the copy holds everything the topic held when ingress started."""
        return self._caught_up.is_set()

    def mark_caught_up(self) -> None:
        self._caught_up.set()

    def wait_caught_up(self, timeout: float) -> bool:
        return self._caught_up.wait(timeout)


@dataclass(frozen=True)
class CallContext:
    """Where the answer's TwiML points and when it is judged (business hours)."""

    base_url: str
    dial_timeout: int
    now: datetime


@dataclass(frozen=True)
class CopyAnswer:
    twiml: str
    # The `call.routed` fact of the call, as router would have published it.
    routed: Event | None = None


def answer_call(
    copy: RoutingCopy, params: Mapping[str, str], context: CallContext, request_id: str | None
) -> CopyAnswer | None:
    """An incoming call's TwiML from the copy; None for a number ingress has never seen."""
    called = params.get("To", "")
    entry = copy.lookup(called)
    if entry is None:
        return None
    routing = entry if isinstance(entry, CopiedNumber) else None
    decision = decide(called, routing, context.now)
    twiml = routed_twiml(decision, context.base_url, context.dial_timeout)
    return CopyAnswer(twiml, routed_event(decision, params["CallSid"], request_id, SOURCE))


def answer_after_dial(
    copy: RoutingCopy, params: Mapping[str, str], step: str, context: CallContext
) -> CopyAnswer | None:
    """What follows a flow's <Dial> from the copy; None when the copy cannot say."""
    called = params.get("To", "")
    entry = copy.lookup(called)
    if entry is None:
        return None
    try:
        at = dial_step(step)
    except ValueError:
        return None
    routing = entry if isinstance(entry, CopiedNumber) else None
    decision = decide(called, routing, context.now)
    status, bridged = params.get("DialCallStatus", ""), params.get("DialBridged")
    return CopyAnswer(
        next_step_twiml(decision, at, status, bridged, context.base_url, context.dial_timeout)
    )
