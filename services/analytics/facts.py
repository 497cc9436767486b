"""Deciding a call's outcome from its events: the pure fold, no I/O.

A call fact keeps two kinds of fields. Evidence (what each leg reported: the
dial result, the child leg's and the parent's final status, the routing
decision, fallback, recording, the RecordingSids stored and deleted) is merged
with order-free rules (max, min, or, set union), so applying an event twice,
or the events of one call in any order, gives the same evidence. The outcome
(`status`, `answered`, `durationSec`, `routed`, `recordingStored`) is then
derived from the evidence alone, with the dial result as the authority:
one forwarded call is two Twilio calls, and the parent's status and duration
(which include ringing) say nothing about whether the client picked up. An
outbound call (`call.placed`, made through router) has no <Dial>: its own
status is the outcome and its CallDuration the talk time. A call nobody
answered that ends in a voicemail (a completed <Record> recording, Twilio's
RecordingSource=RecordVerb, longer than 0 s) is `voicemail`: missed, with a
message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from switchboard.events import Event

COMPLETED = "completed"
IN_PROGRESS = "in-progress"
UNROUTED = "unrouted"
VOICEMAIL = "voicemail"
MISSED_STATUSES = ("no-answer", "busy", "failed", "canceled", VOICEMAIL)
FINAL_STATUSES = (COMPLETED, *MISSED_STATUSES)
STATUSES = (*FINAL_STATUSES, UNROUTED, IN_PROGRESS)

FOLDED_TYPES = frozenset(
    {
        "call.received",
        "call.placed",
        "call.routed",
        "call.fallback-served",
        "call.dial-completed",
        "call.status-reported",
        "recording.status-reported",
        "recording.stored",
        "recording.deleted",
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
    # evidence: the caller's voicemail (a completed RecordVerb recording)
    voicemailSid: str = ""
    voicemailDurationSec: int = 0
    # evidence: recordings service (recording.stored / recording.deleted),
    # sorted RecordingSids; a deleted one stays deleted whatever the order
    storedRecordings: tuple[str, ...] = ()
    deletedRecordings: tuple[str, ...] = ()
    # derived from the evidence by `_decide`
    status: str = IN_PROGRESS
    answered: bool = False
    durationSec: int = 0
    routed: bool = False
    recordingStored: bool = False

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> CallFact:
        """The fact of a complete dict of its fields (the dict becomes the fact's own).

        Skips the frozen dataclass's __init__, which sets thirty fields one by
        one through object.__setattr__: the consumer builds a fact per call
        of every batch, and that was a quarter of its fold.
        """
        fact = object.__new__(cls)
        object.__setattr__(fact, "__dict__", fields)
        return fact


Working = dict[str, Any]  # a CallFact's fields while events are applied to it


def fold(current: CallFact | None, event: Event) -> CallFact | None:
    """The call fact after `event`; `current` is None for a call not seen yet.

    Events without a CallSid, or of a type the fold does not know, leave the
    fact as it is (None stays None: such an event does not start a call).
    """
    return fold_all(current, [event])


def fold_all(current: CallFact | None, events: list[Event]) -> CallFact | None:
    """Fold several events of one call, in the given order.

    The rules work on one mutable copy of the fact and build the frozen
    fact once at the end: the consumer folds a whole batch per call, and a
    new dataclass per field change would cost more than everything else.
    """
    fact: Working | None = None
    for event in events:
        if event.callSid is None or event.type not in FOLDED_TYPES:
            continue
        if fact is None:
            if current is not None:
                fact = dict(current.__dict__)
            else:
                fact = dict(_EMPTY.__dict__, callSid=event.callSid, startedAt=event.occurred_at)
        _apply(fact, event)
    if fact is None:
        return current
    _decide(fact)
    return CallFact.from_fields(fact)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EMPTY = CallFact(callSid="", startedAt=_EPOCH)


def _apply(fact: Working, event: Event) -> None:
    if fact["callSid"] != event.callSid:
        raise ValueError(f"event for {event.callSid} folded into fact of {fact['callSid']}")
    occurred = event.occurred_at
    if occurred < fact["startedAt"]:
        fact["startedAt"] = occurred
    if event.clientId and not fact["clientId"]:
        fact["clientId"] = event.clientId
    kind = event.type
    if kind == "call.received":
        _fill(fact, _caller_fields(_params(event)))
    elif kind == "call.placed":
        _placed(fact, event.data)
    elif kind == "call.routed":
        _routed(fact, event.data)
    elif kind == "call.fallback-served":
        fact["fallback"] = True
    elif kind == "call.dial-completed":
        _dial_completed(fact, _params(event), occurred)
    elif kind == "call.status-reported":
        _status_reported(fact, _params(event), occurred)
    elif kind == "recording.status-reported":
        params = _params(event)
        if params.get("RecordingStatus") == "completed":
            if params.get("RecordingSource") == "RecordVerb":
                _voicemail(fact, params)
            else:
                fact["recorded"] = True
    elif kind == "recording.stored":
        _add_recording(fact, "storedRecordings", event.data)
    elif kind == "recording.deleted":
        _add_recording(fact, "deletedRecordings", event.data)


def _add_recording(fact: Working, field: str, data: dict[str, Any]) -> None:
    sid = str(data.get("recordingSid") or "")
    if sid and sid not in fact[field]:
        fact[field] = tuple(sorted((*fact[field], sid)))


def _voicemail(fact: Working, params: dict[str, str]) -> None:
    # One <Record> per call; should two arrive, the longer one (then the
    # greater RecordingSid) wins whatever the order.
    new = (_seconds(params.get("RecordingDuration")), params.get("RecordingSid", ""))
    old = (fact["voicemailDurationSec"], fact["voicemailSid"])
    fact["voicemailDurationSec"], fact["voicemailSid"] = max(new, old)


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


def _fill(fact: Working, values: dict[str, str]) -> None:
    """Set the fields that are still empty; the first report of a number wins."""
    for name, value in values.items():
        if value and not fact[name]:
            fact[name] = value


def _caller_fields(params: dict[str, str]) -> dict[str, str]:
    """Who the other party is and where Twilio places them.

    On an inbound call that is the caller (From*); on an outbound call the
    From* fields describe our own Twilio number, so the place is the called
    party's (To*).
    """
    direction = _direction(params.get("Direction", ""))
    side, alias = ("To", "Called") if direction == "outbound" else ("From", "Caller")
    return {
        "direction": direction,
        "fromNumber": params.get("From", ""),
        "toNumber": params.get("To", ""),
        "callerCity": params.get(f"{side}City") or params.get(f"{alias}City", ""),
        "callerState": params.get(f"{side}State") or params.get(f"{alias}State", ""),
        "callerCountry": params.get(f"{side}Country") or params.get(f"{alias}Country", ""),
    }


def _placed(fact: Working, data: dict[str, Any]) -> None:
    _fill(
        fact,
        {
            "direction": "outbound",
            "fromNumber": str(data.get("fromNumber") or ""),
            "toNumber": str(data.get("toNumber") or ""),
            "clientId": str(data.get("clientId") or ""),
            "campaign": str(data.get("campaign") or ""),
        },
    )
    fact["recordingEnabled"] = fact["recordingEnabled"] or bool(data.get("recording"))


def _routed(fact: Working, data: dict[str, Any]) -> None:
    disposition = str(data.get("disposition") or "")
    # A forwarding decision outranks "unassigned"; an equal one (a retried
    # webhook routed again) brings the same values.
    if _DISPOSITION_RANK.get(disposition, 0) < _DISPOSITION_RANK.get(fact["disposition"], 0):
        return
    fact["disposition"] = disposition
    fact["clientId"] = data.get("clientId") or fact["clientId"]
    fact["forwardedTo"] = data.get("forwardTo") or ""
    fact["campaign"] = data.get("campaign") or ""
    fact["recordingEnabled"] = bool(data.get("recording"))


def _later(first: datetime | None, second: datetime) -> datetime:
    return second if first is None else max(first, second)


def _dial_completed(fact: Working, params: dict[str, str], occurred: datetime) -> None:
    status = params.get("DialCallStatus", "")
    if status == "answered":
        status = COMPLETED
    new = (status, _seconds(params.get("DialCallDuration")), params.get("DialBridged", ""))
    old = (fact["dialStatus"], fact["dialDurationSec"], fact["dialBridged"])
    # Twilio sends one dial result per call; if two differ, keep the one that
    # ranks higher so the answer does not depend on arrival order.
    best = max(new, old, key=_dial_rank) if fact["dialStatus"] else new
    fact["dialStatus"], fact["dialDurationSec"], fact["dialBridged"] = best
    fact["endedAt"] = _later(fact["endedAt"], occurred)


def _dial_rank(result: tuple[str, int, str]) -> tuple[bool, int, str, str]:
    status, duration, bridged = result
    return (status == COMPLETED and bridged != "false", duration, status, bridged)


def _leg_rank(result: tuple[str, int]) -> tuple[bool, int, str]:
    status, duration = result
    return (status == COMPLETED, duration, status)


def _is_child_leg(params: dict[str, str]) -> bool:
    return bool(params.get("ParentCallSid")) or params.get("Direction") == "outbound-dial"


def _status_reported(fact: Working, params: dict[str, str], occurred: datetime) -> None:
    status = params.get("CallStatus", "")
    child = _is_child_leg(params)
    if not child:
        _fill(fact, _caller_fields(params))
    if status not in FINAL_STATUSES:
        return  # queued, ringing, in-progress: nothing final to keep
    new = (status, _seconds(params.get("CallDuration")) if status == COMPLETED else 0)
    leg = "child" if child else "parent"
    old = (fact[f"{leg}Status"], fact[f"{leg}DurationSec"])
    best = max(new, old, key=_leg_rank) if old[0] else new
    fact[f"{leg}Status"], fact[f"{leg}DurationSec"] = best
    fact["endedAt"] = _later(fact["endedAt"], occurred)


def _decide(fact: Working) -> None:
    fact["status"], fact["answered"], fact["durationSec"] = _outcome(fact)
    fact["routed"] = fact["disposition"] == "forwarded" and not fact["fallback"]
    fact["recordingStored"] = bool(set(fact["storedRecordings"]) - set(fact["deletedRecordings"]))


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

    A call not answered by any of these that has a voicemail longer than
    0 s is `voicemail` (a caller who hung up at the beep stays as it was).
    """
    return _outcome(fact.__dict__)


def _outcome(fact: Working) -> tuple[str, bool, int]:
    status, answered, duration = _leg_outcome(fact)
    if not answered and status != UNROUTED and fact["voicemailDurationSec"] > 0:
        return VOICEMAIL, False, 0
    return status, answered, duration


def _leg_outcome(fact: Working) -> tuple[str, bool, int]:
    dial = fact["dialStatus"]
    if dial in FINAL_STATUSES:
        if dial == COMPLETED:
            if fact["dialBridged"] == "false":
                return "no-answer", False, 0
            return COMPLETED, True, fact["dialDurationSec"]
        return dial, False, 0
    child = fact["childStatus"]
    if child:
        if child == COMPLETED:
            return COMPLETED, True, fact["childDurationSec"]
        return child, False, 0
    if fact["fallback"]:
        return "failed", False, 0
    if fact["disposition"] == "unassigned":
        return UNROUTED, False, 0
    parent = fact["parentStatus"]
    if parent:
        if fact["disposition"] == "forwarded":
            if parent == COMPLETED:
                return "canceled", False, 0
            return parent, False, 0
        if parent == COMPLETED:
            return COMPLETED, True, fact["parentDurationSec"]
        return parent, False, 0
    return IN_PROGRESS, False, 0
