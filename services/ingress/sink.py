"""Where ingress makes an event durable: Kafka first, the local spool when Kafka cannot take it.

`EventSink.send` hands an event to Kafka and returns at once, so the voice
webhook can ask router for TwiML while Kafka acknowledges; `settle()` then
waits up to the publish deadline and spools the event if Kafka did not
answer. The spool keeps order: while it holds anything, new events join it
and the drainer replays them to Kafka in turn.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from services.ingress.config import Config
from services.ingress.spool import Drainer, Spool, SpooledEvent
from switchboard import events
from switchboard.kafka import Acknowledgement, EventProducer, PublishError

log = logging.getLogger(__name__)


class EventSink:
    """Makes events durable: Kafka first, the spool when Kafka is slow or down."""

    def __init__(self, config: Config) -> None:
        self.topic = config.topics.call_events
        self.timeout = config.publish_timeout
        self.producer = EventProducer(config.kafka_bootstrap)
        self.spool = Spool(config.spool_dir)
        self.drainer = Drainer(self.spool, self.producer)

    def put(self, event: events.Event) -> str:
        """Validate the event, then return where it went ("kafka" or "spool").

        Raises InvalidEvent for an invalid event and SpoolError if it could go nowhere.
        """
        events.validate(event.to_dict())
        return self.send(event).settle()

    def send(self, event: events.Event) -> PendingEvent:
        """Start making a validated event durable; `settle()` the result to finish."""
        ack: Acknowledgement | None = None
        if self.spool.is_empty():  # else Kafka is (or was just) down: keep the order, spool it
            try:
                ack = self.producer.send_raw(self.topic, event.to_json(), event.callSid)
            except PublishError as err:
                _log_spooling(event, err)
        return PendingEvent(self, event, ack, time.monotonic() + self.timeout)

    def spool_event(self, event: events.Event) -> str:
        self.spool.append(SpooledEvent(self.topic, event.callSid, event.to_json()))
        return "spool"

    def close(self) -> None:
        self.drainer.stop()
        self.producer.close(timeout=2.0)


def _log_spooling(event: events.Event, err: PublishError) -> None:
    log.warning(
        "Kafka did not take event in time, spooling: %s",
        err,
        extra={"callSid": event.callSid, "eventId": event.id},
    )


@dataclass
class PendingEvent:
    """An event handed to Kafka (or not: `ack` is None) and not yet known durable."""

    sink: EventSink
    event: events.Event
    ack: Acknowledgement | None
    deadline: float

    def settle(self) -> str:
        """Wait for Kafka up to the deadline, else spool; raise SpoolError if neither holds it.

        A copy that Kafka acknowledges after the deadline is a duplicate by
        event id, which every consumer drops.
        """
        if self.ack is not None:
            try:
                self.ack.wait(max(0.0, self.deadline - time.monotonic()))
                return "kafka"
            except PublishError as err:
                _log_spooling(self.event, err)
        return self.sink.spool_event(self.event)
