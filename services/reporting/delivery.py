"""Delivering alerts: client settings and numbers kept in tables, deliveries planned and sent.

Three agents keep what delivery needs: `follow_clients` folds router's
`client.settings-changed` into the `clients` table (newest occurredAt wins),
`follow_numbers` keeps each number's owner and flow from `number.assigned` /
`number.released`, and `deliver_alerts` turns each `alert.missed-call` into
its deliveries (one per channel and recipient, held to the end of quiet
hours) inserted once into `reporting.deliveries`.

The dispatcher task then sends what is due, each row claimed by one
process, and records the result: delivered, retried after an exponential
back-off with jitter (5xx, no answer, a temporary SMTP refusal) until
REPORTING_GIVE_UP_SECONDS after the first try, or dead (given up, listed at
`GET /api/reporting/deliveries?status=dead`). It also publishes the alerts
that were waiting for a voicemail once they come due.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import orjson
from faust.types import EventT, StreamT

from services.reporting import messages, notifications
from services.reporting.alerts import ALERT_TYPE, missed_call_of
from services.reporting.app import (
    alert_events,
    app,
    client_events,
    clients,
    number_events,
    numbers,
    runtime,
)
from services.reporting.channels import Delivered, GiveUp, Result, Retry
from services.reporting.health import until_done
from services.reporting.missed import dead_letter, publish
from services.reporting.notifications import ClientSettings
from services.reporting.runtime import Runtime
from services.reporting.store import DeliveryRow
from switchboard import events
from switchboard.events import Event, InvalidEvent
from switchboard.metrics import counter

log = logging.getLogger(__name__)

_wake: asyncio.Event | None = None


def wake() -> asyncio.Event:
    global _wake
    if _wake is None:
        _wake = asyncio.Event()
    return _wake


async def _decoded(message: EventT) -> Event | None:
    try:
        return events.decode(message.value)
    except InvalidEvent as err:
        await dead_letter(message, str(err))
        return None


@app.agent(client_events)
async def follow_clients(stream: StreamT) -> None:
    async for message in stream.events():
        event = await _decoded(message)
        if event is None:
            continue
        if event.type == "client.settings-changed":
            settings = ClientSettings.of_event(event.data, event.occurredAt)
            current = clients.get(settings.client_id)
            if current is None or current.get("occurredAt", "") <= event.occurredAt:
                clients[settings.client_id] = settings.to_json()
        _consumed(event)


@app.agent(number_events)
async def follow_numbers(stream: StreamT) -> None:
    async for message in stream.events():
        event = await _decoded(message)
        if event is None:
            continue
        phone = str(event.data.get("phoneNumber", ""))
        current = numbers.get(phone)
        newer = current is None or current.get("occurredAt", "") <= event.occurredAt
        if phone and newer and event.type == "number.assigned":
            numbers[phone] = {
                "clientId": event.data.get("clientId"),
                "flow": event.data.get("flow"),
                "occurredAt": event.occurredAt,
            }
        elif phone and newer and event.type == "number.released":
            numbers[phone] = {"clientId": None, "flow": None, "occurredAt": event.occurredAt}
        _consumed(event)


@app.agent(alert_events)
async def deliver_alerts(stream: StreamT) -> None:
    async for message in stream.events():
        event = await _decoded(message)
        if event is None:
            continue
        if event.type == ALERT_TYPE and event.clientId:
            await until_done("planning deliveries", partial(plan_deliveries, runtime(), event))
        _consumed(event)


async def plan_deliveries(rt: Runtime, event: Event) -> None:
    """Insert the alert's deliveries (once each) and wake the dispatcher."""
    raw = clients.get(event.clientId)
    settings = ClientSettings.from_json(raw) if raw else None
    now = rt.clock.now()
    planned = notifications.plan(settings, now)
    if planned:
        await asyncio.to_thread(rt.store.add_deliveries, event.to_dict(), planned, now)
        wake().set()


def _consumed(event: Event) -> None:
    metrics = runtime().metrics
    if metrics is not None:
        metrics.consumed(event.type)


@app.task
async def dispatch() -> None:
    """Send due deliveries and publish due alerts, every interval or when woken."""
    rt = runtime()
    while True:
        try:
            await dispatch_round(rt)
        except Exception:  # a database or network failure: logged, tried again next round
            log.exception("dispatch round failed")
        try:
            await asyncio.wait_for(wake().wait(), timeout=rt.config.dispatch_interval_seconds)
        except TimeoutError:
            pass
        wake().clear()


async def dispatch_round(rt: Runtime) -> None:
    now = rt.clock.now()
    for waiting in await asyncio.to_thread(rt.store.due_alerts, now):
        await publish(rt, _event_of(waiting.event))
    lease = timedelta(seconds=rt.config.send_timeout_seconds * 3)
    while True:
        claimed = await asyncio.to_thread(rt.store.claim_due, rt.clock.now(), lease)
        if not claimed:
            return
        await asyncio.gather(*(asyncio.to_thread(deliver, rt, row) for row in claimed))


def _event_of(body: dict[str, object]) -> Event:
    return events.decode(orjson.dumps(body))


def deliver(rt: Runtime, row: DeliveryRow) -> None:
    """Send one claimed delivery and record what came of it."""
    result = send(rt, row)
    now = rt.clock.now()
    if isinstance(result, Delivered):
        rt.store.delivered(row, now)
        log.info("alert delivered", extra={"callSid": row.call_sid, "channel": row.channel})
    elif isinstance(result, Retry) and not _expired(rt, row, now):
        delay = backoff(rt, row.attempts)
        rt.store.retry(row, result.reason, now + delay)
        log.warning("alert delivery retried in %.1fs: %s", delay.total_seconds(), result.reason)
    else:
        reason = result.reason if isinstance(result, GiveUp | Retry) else "unknown"
        rt.store.dead(row, reason, now)
        log.error("alert delivery given up (%s %s): %s", row.channel, row.call_sid, reason)
    deliveries_counter().labels(row.channel, type(result).__name__.lower()).inc()


def deliveries_counter() -> Any:
    return counter(
        "alert_deliveries_total",
        "Missed-call alert delivery attempts by channel and result",
        ("channel", "result"),
    )


def send(rt: Runtime, row: DeliveryRow) -> Result:
    call = missed_call_of(_event_of(row.alert))
    if row.channel == notifications.EMAIL:
        return rt.mailer.send(messages.email(call, rt.config.email_from, row.recipient, row.key))
    if row.channel == notifications.SMS:
        sender = rt.config.sms_from or call.called_number
        return rt.texter.send(row.recipient, sender, messages.sms(call))
    body = orjson.dumps(row.alert, option=orjson.OPT_SORT_KEYS)
    return rt.webhooks.send(row.recipient, body, row.secret or "", row.key, rt.clock.now())


def _expired(rt: Runtime, row: DeliveryRow, now: datetime) -> bool:
    first = row.first_attempt_at or now
    return (now - first).total_seconds() >= rt.config.give_up_seconds


def backoff(rt: Runtime, attempts: int) -> timedelta:
    """Exponential in the attempts so far, capped, half of it random (equal jitter)."""
    config = rt.config
    ceiling = min(config.retry_max_seconds, config.retry_base_seconds * 2 ** max(0, attempts - 1))
    return timedelta(seconds=ceiling / 2 + rt.random.uniform(0, ceiling / 2))
