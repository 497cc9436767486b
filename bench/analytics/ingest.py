"""The consumer's ingest rate: realistic call events from a real Kafka broker into ClickHouse.

Events are what ingress and router publish for whole calls (answered and
missed forwarded calls, outbound calls, unassigned numbers), with Twilio's
full webhook parameters, keyed by CallSid on the call-events topic. The
rate is events written to ClickHouse per second, from the consumer's first
message to its last write, against the store the benchmark loaded (so the
look-ups of existing facts run on a table of the benchmark's size).

CallSids are `sequential` by default (CAbench000..., which sort next to each
other, so a batch's look-ups touch a few granules of the loaded tables) or,
with `twilio`, random-looking 32 hex digits as Twilio's are, which spread a
batch's look-ups over the whole table as real traffic does.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka import Consumer, Producer

from bench import cpu
from devstack.kafka import start_kafka
from devstack.processes import free_port
from services.analytics.config import Config
from services.analytics.consumer import AnalyticsConsumer
from services.analytics.store import Store
from switchboard import kafka
from switchboard.events import Event, decode, delivery_id

ACCOUNT = "AC" + "0" * 31 + "1"


@dataclass(frozen=True)
class IngestResult:
    events: int
    calls: int
    seconds: float
    batch_size: int
    batches: int
    # CPU seconds while the consumer ran: this process (the consumer's loop and
    # writer and chDB's threads) and the broker's. On a shared machine the
    # wall-clock rate varies; CPU per event much less.
    consumer_cpu: float = 0.0
    broker_cpu: float = 0.0
    # Of consumer_cpu, the seconds in the kernel: system calls and page faults
    # (the first touch of memory that an allocator took back from the system).
    consumer_kernel_cpu: float = 0.0
    # The consumer's process CPU by part (loop, writer, librdkafka, chDB's
    # merges, chDB's other threads), in seconds.
    consumer_parts: dict[str, float] = field(default_factory=dict)
    # Cores of the machine the consumer and the broker share.
    cpus: int = field(default_factory=lambda: os.cpu_count() or 1)
    predecoded: bool = False

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def consumer_us_per_event(self) -> float:
        return self.consumer_cpu / self.events * 1e6 if self.events else 0.0

    @property
    def consumer_kernel_us_per_event(self) -> float:
        return self.consumer_kernel_cpu / self.events * 1e6 if self.events else 0.0

    @property
    def broker_us_per_event(self) -> float:
        return self.broker_cpu / self.events * 1e6 if self.events else 0.0

    @property
    def ceiling(self) -> float:
        """Events/s with every core busy all the time at this run's CPU per event.

        No overlap of the consumer's threads and the broker can beat it: the
        rate a change of parallelism alone could reach, and the CPU per event
        a target rate needs (cores / rate).
        """
        spent = self.consumer_cpu + self.broker_cpu
        return self.cpus * self.events / spent if spent else 0.0


def _cpu_by_part(
    before: dict[int, tuple[str, float]],
    after: dict[int, tuple[str, float]],
    loop: int | None,
    writers: set[int],
    events_writers: set[int],
) -> dict[str, float]:
    """CPU seconds spent between the two snapshots, by part of the consumer's process."""
    parts: dict[str, float] = {}
    for tid, (name, seconds) in after.items():
        spent = seconds - before.get(tid, (name, 0.0))[1]
        if tid == loop:
            part = "loop"
        elif tid in writers:
            part = "writer"
        elif tid in events_writers:
            part = "events insert"  # the store's thread beside the writer
        elif name.startswith("rdk:"):
            part = "librdkafka"
        elif name == "MergeMutate":
            part = "chDB merges"
        else:
            part = name  # chDB names its threads (ThreadPool, ...); the bench's own too
        parts[part] = parts.get(part, 0.0) + spent
    return parts


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _webhook(kind: str, event_type: str, sid: str, params: dict[str, str], at: datetime) -> Event:
    return Event(
        type=event_type,
        source="ingress",
        id=delivery_id(kind, params),
        occurredAt=_iso(at),
        callSid=sid,
        data={"params": params, "url": f"https://edge.example/api/twilio/{kind}"},
    )


CALL_SIDS = ("sequential", "twilio")


def call_sid(index: int, kind: str = "sequential") -> str:
    if kind == "twilio":  # not the loader's hashes: these calls are new to the store
        return "CA" + hashlib.md5(f"ingest{index}".encode()).hexdigest()
    return f"CAbench{index:026d}"


def call_events(
    index: int, base: datetime, rng: random.Random, sids: str = "sequential"
) -> list[Event]:
    """The events of one call; which kind of call is drawn from `rng`."""
    sid = call_sid(index, sids)
    client = f"bench-client-{rng.randrange(1000):04d}"
    number = f"+1415{rng.randrange(3000):07d}"
    caller = f"+1{2000000000 + rng.randrange(5_000_000)}"
    start = base + timedelta(seconds=index)
    kind = rng.random()
    if kind < 0.15:  # outbound
        placed = Event(
            type="call.placed",
            source="router",
            id=delivery_id("call.placed", {"CallSid": sid}),
            occurredAt=_iso(start),
            callSid=sid,
            clientId=client,
            data={
                "fromNumber": number,
                "toNumber": caller,
                "clientId": client,
                "direction": "outbound",
                "recording": False,
                "campaign": "google",
            },
        )
        talk = rng.randrange(10, 400)
        status = {
            "AccountSid": ACCOUNT,
            "CallSid": sid,
            "Direction": "outbound-api",
            "From": number,
            "To": caller,
            "ToCity": "AUSTIN",
            "ToState": "TX",
            "ToCountry": "US",
        }
        return [
            placed,
            _webhook(
                "status",
                "call.status-reported",
                sid,
                {**status, "CallStatus": "ringing", "SequenceNumber": "1"},
                start + timedelta(seconds=1),
            ),
            _webhook(
                "status",
                "call.status-reported",
                sid,
                {
                    **status,
                    "CallStatus": "completed",
                    "CallDuration": str(talk),
                    "SequenceNumber": "2",
                },
                start + timedelta(seconds=talk + 5),
            ),
        ]
    received = {
        "AccountSid": ACCOUNT,
        "ApiVersion": "2010-04-01",
        "CallSid": sid,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "From": caller,
        "To": number,
        "Caller": caller,
        "Called": number,
        "FromCity": "NEW YORK",
        "FromState": "NY",
        "FromZip": "10001",
        "FromCountry": "US",
        "CallerCity": "NEW YORK",
        "CallerState": "NY",
        "CallerZip": "10001",
        "CallerCountry": "US",
        "ToCity": "SAN FRANCISCO",
        "ToState": "CA",
        "ToZip": "94105",
        "ToCountry": "US",
        "CalledCity": "SAN FRANCISCO",
        "CalledState": "CA",
        "CalledZip": "94105",
        "CalledCountry": "US",
    }
    events = [_webhook("webhook", "call.received", sid, received, start)]
    if kind < 0.17:  # nobody owns the number
        events.append(
            Event(
                type="call.routed",
                source="router",
                occurredAt=_iso(start),
                callSid=sid,
                data={
                    "phoneNumber": number,
                    "disposition": "unassigned",
                    "clientId": None,
                    "forwardTo": None,
                    "recording": False,
                    "campaign": None,
                },
            )
        )
        return events
    events.append(
        Event(
            type="call.routed",
            source="router",
            occurredAt=_iso(start),
            callSid=sid,
            clientId=client,
            data={
                "phoneNumber": number,
                "disposition": "forwarded",
                "clientId": client,
                "forwardTo": "+14155550199",
                "recording": True,
                "campaign": "google",
            },
        )
    )
    child = {
        "AccountSid": ACCOUNT,
        "CallSid": sid + "c",
        "ParentCallSid": sid,
        "Direction": "outbound-dial",
        "From": number,
        "To": "+14155550199",
        "CallbackSource": "call-progress-events",
    }
    answered = kind < 0.75
    talk = rng.randrange(5, 600) if answered else 0
    end = start + timedelta(seconds=talk + 12)
    events.append(
        _webhook(
            "status",
            "call.status-reported",
            sid,
            {**child, "CallStatus": "ringing", "SequenceNumber": "1"},
            start + timedelta(seconds=2),
        )
    )
    if answered:
        events += [
            _webhook(
                "status",
                "call.status-reported",
                sid,
                {
                    **child,
                    "CallStatus": "completed",
                    "CallDuration": str(talk),
                    "SequenceNumber": "3",
                },
                end,
            ),
            _webhook(
                "dial-status",
                "call.dial-completed",
                sid,
                {
                    "AccountSid": ACCOUNT,
                    "CallSid": sid,
                    "CallStatus": "in-progress",
                    "DialCallSid": sid + "c",
                    "DialCallStatus": "completed",
                    "DialCallDuration": str(talk),
                    "DialBridged": "true",
                },
                end,
            ),
            _webhook(
                "recording-status",
                "recording.status-reported",
                sid,
                {
                    "AccountSid": ACCOUNT,
                    "CallSid": sid,
                    "RecordingSid": "RE" + sid[2:],
                    "RecordingStatus": "completed",
                    "RecordingDuration": str(talk),
                    "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}"
                    f"/Recordings/RE{sid[2:]}",
                    "RecordingSource": "DialVerb",
                },
                end + timedelta(seconds=2),
            ),
        ]
    else:
        events += [
            _webhook(
                "status",
                "call.status-reported",
                sid,
                {**child, "CallStatus": "no-answer", "SequenceNumber": "2"},
                end,
            ),
            _webhook(
                "dial-status",
                "call.dial-completed",
                sid,
                {
                    "AccountSid": ACCOUNT,
                    "CallSid": sid,
                    "CallStatus": "in-progress",
                    "DialCallSid": sid + "c",
                    "DialCallStatus": "no-answer",
                },
                end,
            ),
        ]
    events.append(
        _webhook(
            "status",
            "call.status-reported",
            sid,
            {
                "AccountSid": ACCOUNT,
                "CallSid": sid,
                "CallStatus": "completed",
                "Direction": "inbound",
                "From": caller,
                "To": number,
                "CallDuration": str(talk + 14),
                "SequenceNumber": "0",
            },
            end + timedelta(seconds=1),
        )
    )
    return events


def generate(
    count: int, base: datetime, seed: int = 11, sids: str = "sequential", first_call: int = 0
) -> Iterator[Event]:
    """Exactly `count` events of calls numbered from `first_call`; the last call may be cut short.

    Exactly, so that a count that is a multiple of the consumer's batch size
    ends on a full batch. A last batch of a few events would wait out its
    age (batch_seconds, a second here) before its write: time spent waiting
    for events that never come, not ingesting (five events over 200,000
    added 0.6 to 1.0 s to a 6 to 9 s run).
    """
    rng = random.Random(seed)
    produced, index = 0, first_call
    while produced < count:
        for event in call_events(index, base, rng, sids)[: count - produced]:
            produced += 1
            yield event
        index += 1


def run(
    store: Store,
    events: int,
    batch_size: int,
    now: datetime,
    progress: Callable[[str], None] = print,
    work_dir: Path | None = None,
    sids: str = "sequential",
    first_call: int = 0,
    predecoded: bool = False,
) -> IngestResult:
    """Produce `events` to a fresh broker, then time the consumer writing them into `store`.

    `predecoded` measures a ceiling rather than the consumer: every message
    is decoded while it is produced, and the consumer's decoder looks the
    event up instead of parsing and validating the message. What the run
    then spends is everything but decoding.
    """
    folder = Path(tempfile.mkdtemp(prefix="bench-kafka-", dir=work_dir))
    progress(f"  starting a Kafka broker in {folder}")
    broker = start_kafka(folder, free_port(), free_port())
    try:
        topics = kafka.Topics(prefix="bench.")
        kafka.ensure_topics(broker.bootstrap, topics)
        producer = Producer(kafka.producer_config(broker.bootstrap, **{"linger.ms": 20}))
        calls: set[str] = set()
        decoded: dict[bytes, Event] = {}
        produced = 0
        started = time.monotonic()
        for event in generate(events, now - timedelta(days=2), sids=sids, first_call=first_call):
            value = event.to_json()
            if predecoded:
                decoded[value] = decode(value)
            while True:
                try:
                    producer.produce(topics.call_events, value, key=event.callSid)
                    break
                except BufferError:
                    producer.poll(0.1)
            calls.add(event.callSid or "")
            produced += 1
            if produced % 50_000 == 0:
                producer.poll(0)
                progress(f"  produced {produced:,} events")
        producer.flush(60)
        progress(
            f"  produced {produced:,} events for {len(calls):,} calls "
            f"in {time.monotonic() - started:.1f} s"
        )
        warm_up(broker.bootstrap, topics.call_events, produced, progress)

        config = Config(
            clickhouse_url="chdb:///unused",
            admin_token="bench",
            kafka_bootstrap=broker.bootstrap,
            clickhouse_database=store.database,
            topics=topics,
            batch_size=batch_size,
            batch_seconds=1.0,
            group_id=f"bench-ingest-{time.time_ns()}",  # no write of an earlier run to mend
        )

        def look_up(value: bytes | None) -> Event:
            return decoded[value] if value in decoded else decode(value)

        decoder = look_up if predecoded else decode
        consumer = AnalyticsConsumer(replace(config), store, decoder=decoder)
        first: list[float] = []
        watching = threading.Event()

        def watch() -> None:
            while not watching.is_set():
                if consumer.stats.messages and not first:
                    first.append(time.monotonic())
                time.sleep(0.005)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        cpu_before = cpu.own_seconds(), cpu.process_seconds(broker.child.pid)
        kernel_before = cpu.own_kernel_seconds()
        threads_before = cpu.thread_seconds()
        consumer.start()
        last_report = time.monotonic()
        stats = consumer.stats
        # Events already stored are skipped, never written: counted too, so that
        # a run whose CallSids an earlier run on the same store used ends.
        while stats.events_written + stats.duplicates_skipped < produced:
            if consumer.error is not None:
                raise RuntimeError(f"consumer failed: {consumer.error}")
            time.sleep(0.02)
            if time.monotonic() - last_report > 5:
                last_report = time.monotonic()
                progress(f"  ingested {stats.events_written:,} / {produced:,} events")
        done = time.monotonic()
        if stats.duplicates_skipped:
            consumer.stop()
            raise RuntimeError(
                f"{stats.duplicates_skipped:,} of the {produced:,} events were in the store "
                "already (an earlier run on it used the same CallSids), so this run's rate "
                "would not be an ingest rate; use a fresh --folder"
            )
        cpu_after = cpu.own_seconds(), cpu.process_seconds(broker.child.pid)
        kernel_after = cpu.own_kernel_seconds()
        writer = consumer._writer
        parts = _cpu_by_part(
            threads_before,
            cpu.thread_seconds(),
            consumer._thread.native_id if consumer._thread else None,
            {t.native_id for t in getattr(writer, "_threads", ()) if t.native_id is not None},
            {
                t.native_id
                for t in getattr(store._events_writer, "_threads", ())
                if t.native_id is not None
            },
        )
        watching.set()
        consumer.stop()
        seconds = done - (first[0] if first else done)
        return IngestResult(
            produced,
            len(calls),
            seconds,
            batch_size,
            consumer.stats.batches,
            consumer_cpu=cpu_after[0] - cpu_before[0],
            broker_cpu=cpu_after[1] - cpu_before[1],
            consumer_kernel_cpu=kernel_after - kernel_before,
            consumer_parts=parts,
            predecoded=predecoded,
        )
    finally:
        broker.stop()
        shutil.rmtree(folder, ignore_errors=True)


def warm_up(
    bootstrap: str, topic: str, events: int, progress: Callable[[str], None] = print
) -> None:
    """Read the topic once with a throwaway group before the measured consumer starts.

    A broker that has just started runs its fetch path in the JVM's
    interpreter until the JIT has compiled it: the first pass over 200,000
    events cost the broker 5.5 us of CPU per event, the next ones 1.0-1.1 us
    (measured with a plain consumer). A broker in service is long past that,
    so the measured run should not pay for it either.
    """
    started = time.monotonic()
    reader = Consumer(kafka.consumer_config(bootstrap, f"bench-warm-up-{time.time_ns()}"))
    try:
        reader.subscribe([topic])
        seen = 0
        while seen < events and time.monotonic() - started < 120:
            seen += sum(
                1 for msg in reader.consume(num_messages=10_000, timeout=1) if not msg.error()
            )
    finally:
        reader.close()
    progress(f"  broker warmed up: read {seen:,} events in {time.monotonic() - started:.1f} s")


def now_utc() -> datetime:
    return datetime.now(UTC)
