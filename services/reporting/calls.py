"""One call's state as reporting follows it, and whether it ended missed (pure).

The state is a JSON object (it lives in a faust Table) built from the call's
events by `fold`. Only `call.received` and `call.routed` start a state: the
recording events that trail a finished call update a state that exists and
never leave one behind. The rules keep what analytics decides
(services/analytics/facts.py, whose outcome this mirrors): the <Dial> result
is the authority, a child leg's final status stands in while it is missing,
fallback TwiML means failed, a forwarded call whose parent completed before
any dial result was canceled, and an unanswered call with a voicemail longer
than 0 s is `voicemail`.

`decide` says what to do once the caller's leg has ended: nothing (answered,
unrouted, outbound), alert now, or alert at a given time unless something
changes first (a voicemail that may still come, a stored voicemail's link).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from switchboard.events import Event, parse_timestamp

COMPLETED = "completed"
VOICEMAIL = "voicemail"
MISSED = ("no-answer", "busy", "failed", "canceled")
FINAL = (COMPLETED, *MISSED)
STARTING_TYPES = frozenset({"call.received", "call.routed"})
FOLLOWED_TYPES = frozenset(
    {
        "call.received",
        "call.routed",
        "call.fallback-served",
        "call.dial-completed",
        "call.status-reported",
        "call.placed",
        "recording.status-reported",
        "recording.stored",
    }
)

State = dict[str, Any]


def fold(state: State | None, event: Event) -> State | None:
    """The call's state after `event`; None while no starting event was seen."""
    if event.callSid is None or event.type not in FOLLOWED_TYPES:
        return state
    if state is None:
        if event.type not in STARTING_TYPES:
            return None
        state = {"callSid": event.callSid, "startedAt": event.occurredAt}
    else:
        state = dict(state)
    if event.occurred_at < parse_timestamp(state["startedAt"]):
        state["startedAt"] = event.occurredAt
    if event.clientId and not state.get("clientId"):
        state["clientId"] = event.clientId
    params = event.data.get("params")
    params = params if isinstance(params, dict) else {}
    kind = event.type
    if kind == "call.received":
        _fill(state, {"caller": params.get("From", ""), "called": params.get("To", "")})
        if str(params.get("Direction", "inbound")).startswith("outbound"):
            state["outbound"] = True
    elif kind == "call.placed":
        state["outbound"] = True
    elif kind == "call.routed":
        _routed(state, event.data)
    elif kind == "call.fallback-served":
        state["fallback"] = True
    elif kind == "call.dial-completed":
        status = params.get("DialCallStatus", "")
        status = COMPLETED if status == "answered" else status
        bridged = params.get("DialBridged", "")
        answered = status == COMPLETED and bridged != "false"
        # One dial result per call; should two differ, an answered one wins.
        if not state.get("dialStatus") or answered:
            state["dialStatus"], state["dialBridged"] = status, bridged
    elif kind == "call.status-reported":
        _status(state, params)
    elif kind == "recording.status-reported":
        if params.get("RecordingStatus") == COMPLETED and params.get("RecordingSource") == (
            "RecordVerb"
        ):
            seconds = _seconds(params.get("RecordingDuration"))
            new = (seconds, params.get("RecordingSid", ""))
            old = (state.get("voicemailSec", 0), state.get("voicemailSid", ""))
            state["voicemailSec"], state["voicemailSid"] = max(new, old)
    elif kind == "recording.stored":
        sid = str(event.data.get("recordingSid") or "")
        stored = state.get("stored", [])
        if sid and sid not in stored:
            state["stored"] = sorted([*stored, sid])
    return state


def _fill(state: State, values: dict[str, str]) -> None:
    for name, value in values.items():
        if value and not state.get(name):
            state[name] = value


def _routed(state: State, data: dict[str, Any]) -> None:
    disposition = str(data.get("disposition") or "")
    if state.get("disposition") == "forwarded" and disposition != "forwarded":
        return
    state["disposition"] = disposition
    state["clientId"] = data.get("clientId") or state.get("clientId")
    state["campaign"] = data.get("campaign")
    if "flow" in data:  # the flow the call was routed with (absent in older events)
        state["flow"] = data["flow"]
    _fill(state, {"called": str(data.get("phoneNumber") or "")})


def _status(state: State, params: dict[str, str]) -> None:
    child = bool(params.get("ParentCallSid")) or params.get("Direction") == "outbound-dial"
    status = params.get("CallStatus", "")
    if not child:
        _fill(state, {"caller": params.get("From", ""), "called": params.get("To", "")})
    if status not in FINAL:
        return
    leg = "childStatus" if child else "parentStatus"
    if not state.get(leg) or status == COMPLETED:
        state[leg] = status


def _seconds(raw: str | None) -> int:
    try:
        return max(0, int(raw or 0))
    except ValueError:
        return 0


def outcome(state: State) -> str:
    """completed, a missed status, voicemail, unrouted, or in-progress."""
    status = _leg_outcome(state)
    if status in MISSED and state.get("voicemailSec", 0) > 0:
        return VOICEMAIL
    return status


def _leg_outcome(state: State) -> str:
    dial = state.get("dialStatus", "")
    if dial in FINAL:
        if dial == COMPLETED and state.get("dialBridged") == "false":
            return "no-answer"
        return str(dial)
    child = state.get("childStatus", "")
    if child:
        return str(child)
    if state.get("fallback"):
        return "failed"
    if state.get("disposition") == "unassigned":
        return "unrouted"
    parent = state.get("parentStatus", "")
    if parent:
        if state.get("disposition") == "forwarded" and parent == COMPLETED:
            return "canceled"
        return str(parent)
    return "in-progress"


@dataclass(frozen=True)
class Waits:
    """How long a missed call waits for a voicemail, and a voicemail for its link."""

    voicemail: timedelta
    link: timedelta


@dataclass(frozen=True)
class Verdict:
    """`open`: the call goes on; `drop`: it ended and needs no alert;
    `alert`: it ended missed, alert at `due` (now, or later unless something changes)."""

    action: str
    outcome: str = ""
    due: datetime | None = None
    voicemail_stored: bool = False


OPEN = Verdict("open")
DROP = Verdict("drop")


def decide(state: State, now: datetime, waits: Waits, voicemail_possible: bool) -> Verdict:
    """What to do with the call now. `voicemail_possible`: its number's flow takes voicemail."""
    if state.get("outbound"):
        return DROP
    if not state.get("parentStatus"):
        return OPEN
    result = outcome(state)
    if result not in (*MISSED, VOICEMAIL) or not state.get("clientId"):
        return DROP
    if result == VOICEMAIL:
        stored = state.get("voicemailSid", "") in state.get("stored", [])
        return Verdict("alert", result, now if stored else now + waits.link, stored)
    if voicemail_possible and not state.get("voicemailSid"):
        return Verdict("alert", result, now + waits.voicemail)
    return Verdict("alert", result, now)


def flow_of(state: State, number: dict[str, Any] | None) -> dict[str, Any] | None:
    """The call's flow: the one it was routed with, else its number's latest (number.assigned)."""
    flow = state["flow"] if "flow" in state else (number or {}).get("flow")
    return flow if isinstance(flow, dict) else None


def voicemail_possible(flow: dict[str, Any] | None) -> bool:
    """Whether a call routed with `flow` sends an unanswered caller to voicemail."""
    if flow is None:
        return False
    return not (flow.get("afterHours") == "forward" and flow.get("afterHoursNumber"))


def stale(state: State, now: datetime, max_age: timedelta) -> bool:
    """Whether a call's state is older than any call lasts: its end will not come any more.

    A state is kept only while its call goes on (or its alert waits a little);
    one whose final status callback was lost would keep the caller's number for
    ever, so it is dropped once it started more than `max_age` ago.
    """
    return parse_timestamp(state["startedAt"]) < now - max_age


def with_caller(state: State, caller: str) -> State:
    """The state naming its caller as `caller` (an erased caller's token)."""
    return {**state, "caller": caller}
