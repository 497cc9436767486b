"""The agent that follows every call and publishes `alert.missed-call` when one ends missed.

Each call event is decoded, folded into the call's state in the `calls`
table (services/reporting/calls.py) and the state decided. A missed call's
alert is written to `reporting.alerts` first, due now or, while a voicemail
or its link may still come, a little later; an alert due now is published
at once, a later one by the dispatcher (services/reporting/delivery.py) when
its time comes, unless the voicemail brings it forward. The alert's id comes
from the CallSid, so a replay after a crash republishes the same alert, a
duplicate every consumer drops. A message that is not a valid event goes to
the dead-letter topic with the reason.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import datetime
from typing import Any

import orjson
from faust.types import EventT, StreamT

from services.reporting import call_states
from services.reporting import calls as call_rules
from services.reporting.alerts import MissedCall, TextBackSetting, Voicemail, missed_call_alert
from services.reporting.app import (
    alert_events,
    app,
    call_events,
    client_events,
    clients,
    dead_letters,
    numbers,
    runtime,
)
from services.reporting.app import calls as call_table
from services.reporting.calls import State, Verdict
from services.reporting.health import until_done
from services.reporting.runtime import Runtime
from switchboard import events
from switchboard.events import Event, InvalidEvent, parse_timestamp

log = logging.getLogger(__name__)
ERASED_TYPE = "caller.erased"
CONSUMER = "reporting"


@app.agent(client_events, name="alerts-erasures")
async def erase_callers(stream: StreamT) -> None:
    """caller.erased: the kept alerts and the open calls name the caller by their token.

    The `calls` table is changed by the worker owning each state's partition, so
    the token (never the number) goes to every partition of call-commands
    (services/reporting/call_states.py); the number-less version of the event
    is enough for that.
    """
    async for message in stream.events():
        try:
            event = events.decode(message.value)
        except InvalidEvent:
            continue  # dead-lettered by the agents that keep client settings
        if event.type != ERASED_TYPE or not event.data.get("token"):
            continue
        token = str(event.data["token"])
        number = event.data.get("number")
        if number:
            await until_done("erasing callers", functools.partial(erase, str(number), token))
        command = {"command": call_states.ERASE, "token": token}
        await until_done(
            "erasing callers", functools.partial(call_states.send_to_every_partition, command)
        )


async def erase(number: str, token: str) -> None:
    await asyncio.to_thread(runtime().store.erase_caller, number, token)


@app.agent(call_events)
async def follow_calls(stream: StreamT) -> None:
    async for message in stream.events():
        await on_call_event(message)


async def on_call_event(message: EventT) -> None:
    rt = runtime()
    try:
        event = events.decode(message.value)
    except InvalidEvent as err:
        await dead_letter(message, str(err))
        return
    if event.callSid is not None and event.type in call_rules.FOLLOWED_TYPES:
        partition = message.message.partition
        await until_done("following calls", lambda: follow(rt, event, partition))
    if rt.metrics is not None:
        rt.metrics.consumed(event.type)


async def follow(rt: Runtime, event: Event, partition: int) -> None:
    sid = str(event.callSid)
    known = call_table.get(sid)
    state = call_rules.fold(known, event)
    if state is None or state == known:
        return
    number = numbers.get(state.get("called", ""))
    if not state.get("clientId") and number:
        state["clientId"] = number.get("clientId")
    now = rt.clock.now()
    flow = call_rules.flow_of(state, number)
    verdict = call_rules.decide(state, now, rt.waits, call_rules.voicemail_possible(flow))
    if verdict.action == "alert":
        await hold_and_publish(rt, state, verdict, now)
    waiting = verdict.action == "alert" and verdict.due is not None and verdict.due > now
    if verdict.action == "open" or waiting:
        # The partition the state lives in, for call_states' per-partition commands.
        state["partition"] = partition
        call_table[sid] = state
    elif known is not None:
        del call_table[sid]


async def hold_and_publish(rt: Runtime, state: State, verdict: Verdict, now: datetime) -> None:
    assert verdict.due is not None
    alert = await asyncio.to_thread(build_alert, rt, state, verdict, now)
    body = alert.to_dict()
    sid, client_id = str(alert.callSid), str(alert.clientId)
    waiting = await asyncio.to_thread(rt.store.hold_alert, sid, client_id, body, verdict.due)
    if waiting and verdict.due <= now:
        await publish(rt, alert)


async def publish(rt: Runtime, alert: Event) -> None:
    """Publish the alert, wait for the broker, and mark it published."""
    events.validate(alert.to_dict())
    sent = await alert_events.send(key=str(alert.callSid).encode(), value=alert.to_json())
    await sent
    await asyncio.to_thread(rt.store.alert_published, str(alert.callSid), rt.clock.now())
    if rt.metrics is not None:
        rt.metrics.produced(alert.type)


def build_alert(rt: Runtime, state: State, verdict: Verdict, now: datetime) -> Event:
    client_id = str(state["clientId"])
    settings: dict[str, Any] = clients.get(client_id) or {}
    voicemail = None
    if verdict.outcome == call_rules.VOICEMAIL:
        recording_sid = str(state.get("voicemailSid", ""))
        link = rt.links.fetch(state["callSid"], recording_sid) if verdict.voicemail_stored else None
        voicemail = Voicemail(
            recording_sid,
            int(state.get("voicemailSec", 0)),
            link.url if link else None,
            link.expires_at if link else None,
        )
    call = MissedCall(
        call_sid=state["callSid"],
        client_id=client_id,
        called_number=str(state.get("called", "")),
        caller_number=str(state.get("caller", "")),
        outcome=verdict.outcome,
        called_at=parse_timestamp(state["startedAt"]),
        client_name=str(settings.get("name", "")),
        timezone=str(settings.get("timezone") or "UTC"),
        campaign=state.get("campaign"),
        voicemail=voicemail,
        text_back=TextBackSetting.from_flow(
            call_rules.flow_of(state, numbers.get(str(state.get("called", ""))))
        ),
    )
    return missed_call_alert(call, now)


async def dead_letter(message: EventT, reason: str) -> None:
    raw = message.value if isinstance(message.value, bytes) else b""
    key = message.key if isinstance(message.key, bytes) else b""
    envelope = {
        "reason": reason,
        "consumer": CONSUMER,
        "topic": message.message.topic,
        "partition": message.message.partition,
        "offset": message.message.offset,
        "key": key.decode("utf-8", "replace"),
        "value": raw.decode("utf-8", "replace"),
        "deadAt": events.utc_now_iso(),
    }
    sent = await dead_letters.send(key=key or None, value=orjson.dumps(envelope))
    await sent
    rt = runtime()
    if rt.metrics is not None:
        rt.metrics.dead_lettered()
    log.warning("dead-lettered a message on %s: %s", message.message.topic, reason)
