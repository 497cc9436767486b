"""Deciding a call's outcome from its events: the pure fold, no I/O.

A call fact keeps two kinds of fields. Evidence (what each leg reported: the
dial result, the child leg's and the parent's final status, the routing
decision, fallback, recording) is merged with order-free rules (max, min, or),
so applying an event twice, or the events of one call in any order, gives the
same evidence. The outcome (`status`, `answered`, `durationSec`, `routed`) is
then derived from the evidence alone, with the dial result as the authority:
one forwarded call is two Twilio calls, and the parent's status and duration
(which include ringing) say nothing about whether the client picked up.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from switchboard.events import Event

COMPLETED = "completed"
IN_PROGRESS = "in-progress"
UNROUTED = "unrouted"
MISSED_STATUSES = ("no-answer", "busy", "failed", "canceled")
FINAL_STATUSES = (COMPLETED, *MISSED_STATUSES)
STATUSES = (*FINAL_STATUSES, UNROUTED, IN_PROGRESS)

FOLDED_TYPES = frozenset(
    {
        "call.received",
        "call.routed",
        "call.fallback-served",
        "call.dial-completed",
        "call.status-reported",
        "recording.status-reported",
    }
)

_DISPOSITION_RANK = {"": 0, "unassigned": 1, "forwarded": 2}


@dataclass(frozen=True)
class CallFact:
    """One call as analytics sees it: evidence first, then the derived outcome."""

    callSid: str
    startedAt: datetime
    clientId: str = ""
    direction: str = ""
    fromNumber: str = ""
    toNumber: str = ""
    callerCity: str = ""
    callerState: str = ""
    callerCountry: str = ""
    # evidence: routing (call.routed / call.fallback-served)
    disposition: str = ""
    forwardedTo: str = ""
    campaign: str = ""
    recordingEnabled: bool = False
    fallback: bool = False
    # evidence: the legs' final outcomes
    dialStatus: str = ""
    dialDurationSec: int = 0
    dialBridged: str = ""
    childStatus: str = ""
    childDurationSec: int = 0
    parentStatus: str = ""
    parentDurationSec: int = 0
    recorded: bool = False
    endedAt: datetime | None = None
    # derived from the evidence by `_decide`
    status: str = IN_PROGRESS
    answered: bool = False
    durationSec: int = 0
    routed: bool = False


def fold(current: CallFact | None, event: Event) -> CallFact | None:
    """The call fact after `event`; `current` is None for a call not seen yet.

    Events without a CallSid, or of a type the fold does not know, leave the
    fact as it is (None stays None: such an event does not start a call).
    """
    if event.callSid is None or event.type not in FOLDED_TYPES:
        return current
    if current is not None and current.callSid != event.callSid:
        raise ValueError(f"event for {event.callSid} folded into fact of {current.callSid}")
    occurred = event.occurred_at
    fact = current or CallFact(callSid=event.callSid, startedAt=occurred)
    fact = replace(fact, startedAt=min(fact.startedAt, occurred))
    if event.clientId and not fact.clientId:
        fact = replace(fact, clientId=event.clientId)

    if event.type == "call.received":
        fact = _received(fact, _params(event))
    elif event.type == "call.routed":
        fact = _routed(fact, event.data)
    elif event.type == "call.fallback-served":
        fact = replace(fact, fallback=True)
    elif event.type == "call.dial-completed":
        fact = _dial_completed(fact, _params(event), occurred)
    elif event.type == "call.status-reported":
        fact = _status_reported(fact, _params(event), occurred)
    elif event.type == "recording.status-reported":
        if _params(event).get("RecordingStatus") == "completed":
            fact = replace(fact, recorded=True)
    return _decide(fact)


def _params(event: Event) -> dict[str, str]:
    params: Any = event.data.get("params", {})
    return params if isinstance(params, dict) else {}


def _direction(raw: str) -> str:
    if raw == "inbound":
        return "inbound"
    if raw.startswith("outbound"):
        return "outbound"
    return ""


def _seconds(raw: str | None) -> int:
    try:
        return max(0, int(raw or 0))
    except ValueError:
        return 0


def _fill(fact: CallFact, **values: str) -> CallFact:
    """Set the fields that are still empty; the first report of a number wins."""
    missing: dict[str, Any] = {
        name: value for name, value in values.items() if value and not getattr(fact, name)
    }
    return replace(fact, **missing) if missing else fact


def _caller_fields(params: dict[str, str]) -> dict[str, str]:
    return {
        "direction": _direction(params.get("Direction", "")),
        "fromNumber": params.get("From", ""),
        "toNumber": params.get("To", ""),
        "callerCity": params.get("FromCity") or params.get("CallerCity", ""),
        "callerState": params.get("FromState") or params.get("CallerState", ""),
        "callerCountry": params.get("FromCountry") or params.get("CallerCountry", ""),
    }


def _received(fact: CallFact, params: dict[str, str]) -> CallFact:
    return _fill(fact, **_caller_fields(params))


def _routed(fact: CallFact, data: dict[str, Any]) -> CallFact:
    disposition = str(data.get("disposition") or "")
    # A forwarding decision outranks "unassigned"; an equal one (a retried
    # webhook routed again) brings the same values.
    if _DISPOSITION_RANK.get(disposition, 0) < _DISPOSITION_RANK.get(fact.disposition, 0):
        return fact
    return replace(
        fact,
        disposition=disposition,
        clientId=data.get("clientId") or fact.clientId,
        forwardedTo=data.get("forwardTo") or "",
        campaign=data.get("campaign") or "",
        recordingEnabled=bool(data.get("recording")),
    )


def _later(first: datetime | None, second: datetime) -> datetime:
    return second if first is None else max(first, second)


def _dial_completed(fact: CallFact, params: dict[str, str], occurred: datetime) -> CallFact:
    status = params.get("DialCallStatus", "")
    if status == "answered":
        status = COMPLETED
    new = (status, _seconds(params.get("DialCallDuration")), params.get("DialBridged", ""))
    old = (fact.dialStatus, fact.dialDurationSec, fact.dialBridged)
    # Twilio sends one dial result per call; if two differ, keep the one that
    # ranks higher so the answer does not depend on arrival order.
    best = max(new, old, key=_dial_rank) if fact.dialStatus else new
    return replace(
        fact,
        dialStatus=best[0],
        dialDurationSec=best[1],
        dialBridged=best[2],
        endedAt=_later(fact.endedAt, occurred),
    )


def _dial_rank(result: tuple[str, int, str]) -> tuple[bool, int, str, str]:
    status, duration, bridged = result
    return (status == COMPLETED and bridged != "false", duration, status, bridged)


def _leg_rank(result: tuple[str, int]) -> tuple[bool, int, str]:
    status, duration = result
    return (status == COMPLETED, duration, status)


def _is_child_leg(params: dict[str, str]) -> bool:
    return bool(params.get("ParentCallSid")) or params.get("Direction") == "outbound-dial"


def _status_reported(fact: CallFact, params: dict[str, str], occurred: datetime) -> CallFact:
    status = params.get("CallStatus", "")
    child = _is_child_leg(params)
    if not child:
        fact = _fill(fact, **_caller_fields(params))
    if status not in FINAL_STATUSES:
        return fact  # queued, ringing, in-progress: nothing final to keep
    new = (status, _seconds(params.get("CallDuration")) if status == COMPLETED else 0)
    if child:
        old = (fact.childStatus, fact.childDurationSec)
        best = max(new, old, key=_leg_rank) if fact.childStatus else new
        fact = replace(fact, childStatus=best[0], childDurationSec=best[1])
    else:
        old = (fact.parentStatus, fact.parentDurationSec)
        best = max(new, old, key=_leg_rank) if fact.parentStatus else new
        fact = replace(fact, parentStatus=best[0], parentDurationSec=best[1])
    return replace(fact, endedAt=_later(fact.endedAt, occurred))


def _decide(fact: CallFact) -> CallFact:
    status, answered, duration = decide_outcome(fact)
    routed = fact.disposition == "forwarded" and not fact.fallback
    return replace(fact, status=status, answered=answered, durationSec=duration, routed=routed)


def decide_outcome(fact: CallFact) -> tuple[str, bool, int]:
    """(status, answered, durationSec) from the evidence, strongest first.

    1. The <Dial> result: completed means answered unless DialBridged=false
       (a whisper/screening leg completed but the caller was never connected).
    2. The child leg's final status, while no dial result has arrived.
    3. Fallback TwiML was served: the call was not forwarded -> failed.
    4. Router found no client for the number -> unrouted.
    5. The parent's final status. For a call that was not forwarded (an
       outbound call, or one never routed) it is the outcome itself. For a
       forwarded call it only says the caller left before any dial outcome:
       a non-completed status is kept, `completed` becomes `canceled` (the
       caller hung up, e.g. during the disclaimer, before the client's phone
       could answer), and the parent's duration is never used. A dial result
       arriving later overrides this.
    6. Otherwise the call is still in progress.
    """
    if fact.dialStatus in FINAL_STATUSES:
        if fact.dialStatus == COMPLETED:
            if fact.dialBridged == "false":
                return "no-answer", False, 0
            return COMPLETED, True, fact.dialDurationSec
        return fact.dialStatus, False, 0
    if fact.childStatus:
        if fact.childStatus == COMPLETED:
            return COMPLETED, True, fact.childDurationSec
        return fact.childStatus, False, 0
    if fact.fallback:
        return "failed", False, 0
    if fact.disposition == "unassigned":
        return UNROUTED, False, 0
    if fact.parentStatus:
        if fact.disposition == "forwarded":
            if fact.parentStatus == COMPLETED:
                return "canceled", False, 0
            return fact.parentStatus, False, 0
        if fact.parentStatus == COMPLETED:
            return COMPLETED, True, fact.parentDurationSec
        return fact.parentStatus, False, 0
    return IN_PROGRESS, False, 0


def fold_all(current: CallFact | None, events: list[Event]) -> CallFact | None:
    """Fold several events of one call, in the given order."""
    fact = current
    for event in events:
        fact = fold(fact, event)
    return fact
