"""The missed-call text-back: faust agents that text a caller nobody answered.

Three agents and a timer in reporting's faust app:

- `textback-numbers` reads the number events and keeps each number's
  `textBack` (from the flow that rides on `number.assigned`; a release or a
  flow without it clears it) in the ledger;
- `textback-erasures` reads caller.erased (client events) and turns the
  erased caller's number into their token in the ledger;
- `textback` reads the missed-call alerts and hands each to `TextBacks.handle`:
  weigh and claim (textback_store.claim), send through Twilio's Messages API,
  record Twilio's answer, publish `sms.sent` to the call-events topic;
- the timer republishes any `sms.sent` a failed publish left behind.

The ledger makes the work idempotent: a redelivered alert, or one seen again
after a restart, finds its CallSid's row and sends nothing. Blocking work
(PostgreSQL, Twilio) runs in worker threads, so the event loop keeps
serving the group; `sms.sent` leaves through the app's own producer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from services.reporting import app as reporting
from services.reporting.alerts import ALERT_TYPE, MissedCall, TextBackSetting, missed_call_of
from services.reporting.missed import dead_letter
from services.reporting.sms import Refused, SendFailed, Sent, SmsSender, sms_sent
from services.reporting.textback_config import TextBackConfig
from services.reporting.textback_rules import Send
from services.reporting.textback_store import CallRecord, TextBackStore
from switchboard.events import Event, InvalidEvent, decode, validate
from switchboard.metrics import counter
from switchboard.privacy import caller_token

log = logging.getLogger(__name__)

NUMBER_TYPES = ("number.assigned", "number.released")
ERASED_TYPE = "caller.erased"
PUBLISH_TIMEOUT_SECONDS = 10.0
# How often sms.sent events Kafka did not take are tried again.
REPUBLISH_SECONDS = 30.0


class TextBacks:
    """One alert in, at most one text out, and what happened in the ledger."""

    def __init__(
        self,
        store: TextBackStore,
        sender: SmsSender,
        publish: Callable[[Event], None],
        config: TextBackConfig,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        pause: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self._sender = sender
        self._publish = publish
        self.config = config
        self._clock = clock
        self._pause = pause

    def handle(self, call: MissedCall) -> str:
        """Text the caller if the call earns it; what happened, in a word (for logs and tests)."""
        now = self._clock()
        token = caller_token(self.config.privacy_token_secret, call.caller_number)
        claim = self.store.claim(call, now, self.config.max_age, token)
        if claim.earlier is not None:
            if claim.earlier.status == "sent" and not claim.earlier.published:
                self._announce(claim.earlier)
            return "duplicate"
        decision = claim.decision
        if not isinstance(decision, Send):
            return decision.reason if decision is not None else "duplicate"
        try:
            answer = self._send(decision)
        except SendFailed as err:
            log.warning("text-back of call %s not sent: %s", call.call_sid, err)
            self.store.record_failed(call.call_sid, str(err))
            return "failed"
        if isinstance(answer, Refused):
            log.info("text-back of call %s refused: %s", call.call_sid, answer.reason)
            self.store.record_refused(call, answer, now)
            return "opted-out" if answer.unsubscribed else "refused"
        record = self.store.record_sent(call.call_sid, answer, now)
        self._announce(record)
        return "sent"

    def handle_number_event(self, event: Event) -> None:
        data = event.data
        setting = (
            TextBackSetting.from_flow(data.get("flow")) if event.type == "number.assigned" else None
        )
        self.store.apply_number(data["phoneNumber"], event.clientId, setting, event.occurred_at)

    def handle_erasure(self, event: Event) -> None:
        """caller.erased: the caller's number becomes their token in the ledger."""
        number = event.data.get("number")
        if number:
            self.store.erase_caller(str(number), str(event.data["token"]))

    def republish(self) -> int:
        """Publish the sms.sent events a failed publish left behind; how many."""
        done = 0
        for record in self.store.unpublished():
            if self._announce(record):
                done += 1
        return done

    def _send(self, send: Send) -> Sent | Refused:
        for attempt in range(1, self.config.send_attempts + 1):
            try:
                return self._sender.send(send.to, send.from_, send.body)
            except SendFailed:
                if attempt == self.config.send_attempts:
                    raise
                self._pause(self.config.retry_seconds * attempt)
        raise AssertionError("unreachable")

    def _announce(self, record: CallRecord) -> bool:
        """Publish the record's sms.sent; False (and kept for the timer) if Kafka failed."""
        if record.message_sid is None or record.sent_at is None:
            return False
        event = sms_sent(
            record.call_sid,
            record.client_id,
            record.message_sid,
            record.caller,
            record.phone_number,
            record.body or "",
            record.message_status,
            record.sent_at,
        )
        try:
            self._publish(event)
        except Exception as err:  # the timer tries again; the text itself is sent
            log.warning("sms.sent of call %s not published yet: %s", record.call_sid, err)
            return False
        self.store.mark_published(record.call_sid)
        return True


def decode_alert(raw: bytes | None) -> MissedCall | None:
    """The missed call in an alert message; None for another event type on the topic."""
    event = decode(raw)
    if event.type != ALERT_TYPE:
        return None
    return missed_call_of(event)


def decode_number_event(raw: bytes | None) -> Event | None:
    event = decode(raw)
    return event if event.type in NUMBER_TYPES else None


def publisher(loop: asyncio.AbstractEventLoop) -> Callable[[Event], None]:
    """Publish an event to call-events through the app's producer, from a worker thread.

    Returns once the broker acknowledged it, raises otherwise (the ledger then
    keeps it for the republishing timer).
    """

    async def send(event: Event) -> None:
        validate(event.to_dict())
        key = event.callSid.encode() if event.callSid else None
        sent = await reporting.call_events.send(key=key, value=event.to_json())
        await sent

    def publish(event: Event) -> None:
        asyncio.run_coroutine_threadsafe(send(event), loop).result(PUBLISH_TIMEOUT_SECONDS)
        metrics = reporting.runtime().metrics
        if metrics is not None:
            metrics.produced(event.type)

    return publish


_text_backs: TextBacks | None = None


def outcomes() -> Any:
    """textbacks_total{outcome}: what became of each missed call's text-back (sent, cooldown...)."""
    return counter("textbacks_total", "Missed calls weighed for a text-back", ("outcome",))


def text_backs() -> TextBacks | None:
    """The process's TextBacks, built from the runtime on first use; None without Twilio."""
    global _text_backs
    if _text_backs is None:
        runtime = reporting.runtime()
        config = runtime.config
        if not config.twilio_auth_token:
            return None
        sender = SmsSender(
            config.twilio_account_sid,
            config.twilio_auth_token,
            config.twilio_api_base_url,
            timeout=config.send_timeout_seconds,
        )
        _text_backs = TextBacks(
            TextBackStore(runtime.store.pool),
            sender,
            publisher(asyncio.get_running_loop()),
            TextBackConfig.from_env(),
            clock=runtime.clock.now,
        )
    return _text_backs


# A message that is not a valid event is dead-lettered once, by the delivery
# agents that read the same topics (services/reporting/delivery.py); these
# agents only log it, so one bad message does not leave two dead letters.


@reporting.app.agent(reporting.alert_events, name="textback")
async def text_back(stream: Any) -> None:
    async for item in stream.events():
        try:
            call = decode_alert(item.message.value)
        except InvalidEvent as err:
            log.warning("text-back skips an invalid alert (dead-lettered by delivery): %s", err)
            continue
        except (KeyError, ValueError) as err:  # a valid alert this agent cannot read
            await dead_letter(item, f"text-back cannot read the alert: {err}")
            continue
        service = text_backs()
        if call is None:
            continue
        if service is None:
            log.info("text-back of call %s: off (no Twilio credentials)", call.call_sid)
            continue
        outcome = await asyncio.to_thread(service.handle, call)
        log.info("text-back of call %s: %s", call.call_sid, outcome)
        outcomes().labels(outcome).inc()


@reporting.app.agent(reporting.number_events, name="textback-numbers")
async def text_back_numbers(stream: Any) -> None:
    async for item in stream.events():
        try:
            event = decode_number_event(item.message.value)
        except InvalidEvent as err:
            log.warning("text-back skips an invalid number event (dead-lettered): %s", err)
            continue
        service = text_backs()
        if event is not None and service is not None:
            await asyncio.to_thread(service.handle_number_event, event)


@reporting.app.agent(reporting.client_events, name="textback-erasures")
async def text_back_erasures(stream: Any) -> None:
    async for item in stream.events():
        try:
            event = decode(item.message.value)
        except InvalidEvent as err:
            log.warning("text-back skips an invalid client event (dead-lettered): %s", err)
            continue
        service = text_backs()
        if event.type == ERASED_TYPE and service is not None:
            await asyncio.to_thread(service.handle_erasure, event)


@reporting.app.timer(interval=REPUBLISH_SECONDS)
async def republish_sms_sent() -> None:
    service = text_backs()
    if service is not None:
        await asyncio.to_thread(service.republish)
