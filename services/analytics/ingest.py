"""The analytics write step: a batch of events made durable in ClickHouse.

    load (stored facts, late calls, the batch's number assignments)
    -> fold (pure: facts.py)
    -> attribute (pure: numbers.py; the assignments of the numbers whose
       calls still miss a client or campaign are read first, usually none)
    -> write (number assignments, client settings, new fact versions)

beside the raw events' insert, which runs on a connection of its own
(`Store.begin_insert_events`). Every step takes a repeat calmly: events
already stored are skipped, the fold is order-free and idempotent, and the
upserts keep the newest version, so a batch read again changes nothing.
The consumer (consumer.py) runs `write` for each batch it reads; tests and
the benchmark call it to fill a store.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import wait
from dataclasses import dataclass, replace

from services.analytics.clients import settings_from_event, without_secrets
from services.analytics.facts import CallFact, fold_all
from services.analytics.numbers import (
    NumberAssignment,
    assignment_at,
    assignment_from_event,
    attribute,
    needs_attribution,
    tracked_number,
)
from services.analytics.privacy import ERASED_TYPE, ErasedCallers
from services.analytics.store import Repair, Store, StoredFact
from switchboard.events import Event

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WriteResult:
    events_written: int
    duplicates_skipped: int
    facts_written: int
    repair: Repair = Repair((), 0)


def write(
    store: Store,
    events: Sequence[Event],
    payloads: Mapping[str, bytes] | None = None,
    repair: bool = False,
    erased: ErasedCallers | None = None,
) -> WriteResult:
    """Make a batch durable: the raw events beside numbers, settings and new fact versions.

    The events' insert runs on a connection of its own while the facts are
    folded and written (`Store.begin_insert_events`); the write returns once
    both are done. "Already stored" is judged by the events table, so a
    write that stopped half way may have stored events whose facts it never
    wrote: on a repair (`repair`: an earlier write of these events may have
    stopped half way) every event of the batch is folded again, not only
    those missing from the events table, after `Store.repair` has mended
    the calls. Folding an event the fact already holds changes nothing (the
    fold's rules are order-free), so only what the broken write missed is
    written. Number assignments and client settings are upserts (newest
    occurredAt wins), harmless to repeat; calls of the same batch are
    attributed with the batch's assignments as loaded (`write_facts`).
    `payloads` are the events as they arrived (by id), stored as they are,
    except that the numbers of erased callers (`erased`) are replaced by
    their tokens first: a caller erased in this batch is erased before the
    batch's events are stored, and a replayed event never brings an erased
    number back.
    """
    if erased is not None:
        for event in events:
            if event.type == ERASED_TYPE:
                erased.apply(store, event)
        events, payloads = erased.scrub(events, payloads)
    events, payloads = without_secrets(events, payloads)
    mended = store.repair(events) if repair else Repair((), 0)
    unique: dict[str, Event] = {}
    for event in events:
        unique.setdefault(event.id, event)
    stored = store.stored_event_ids(list(unique.values()))
    fresh = [event for event in unique.values() if event.id not in stored]
    folded = list(unique.values()) if repair else fresh
    if not folded:
        return WriteResult(0, len(events), 0, mended)
    storing = store.begin_insert_events(fresh, payloads)
    try:
        facts_written = write_facts(store, folded)
    except BaseException:
        with store.turn.outside():
            wait((storing,))  # ended either way before the batch is tried again
        raise
    with store.turn.outside():
        storing.result()
    return WriteResult(len(fresh), len(events) - len(fresh), facts_written, mended)


@dataclass(frozen=True)
class Loaded:
    """What folding a batch needs from the store, read before anything is written."""

    assignments: list[NumberAssignment]  # the batch's, releases resolved to their periods
    current: dict[str, StoredFact]  # stored facts of the batch's calls and of late ones
    late: frozenset[str]  # calls stored before the batch's number events, to attribute


def write_facts(store: Store, events: Sequence[Event]) -> int:
    """Load, fold (pure), attribute (pure, with the numbers' assignments), write what changed."""
    loaded = load(store, events)
    facts = fold_calls(loaded, events)
    known = known_assignments(store, facts, loaded.assignments)  # only calls missing a client
    changed = changed_facts(loaded.current, attribute_all(facts, known))
    store.upsert_assignments(loaded.assignments)
    store.upsert_client_settings([s for s in map(settings_from_event, events) if s is not None])
    store.insert_facts(changed, loaded.current)
    return len(changed)


def load(store: Store, events: Sequence[Event]) -> Loaded:
    """The batch's number assignments, and the stored facts of its calls and of late calls.

    Late calls were stored before this batch's number events arrived (a
    replay reads the topics in no particular order) and get the same
    attribution.
    """
    assignments = resolve_assignments(
        store, [a for a in map(assignment_from_event, events) if a is not None]
    )
    call_sids = {event.callSid for event in events if event.callSid}
    current = store.load_facts(call_sids)
    late = {sid for a in assignments for sid in store.calls_to_attribute(a)} - call_sids
    if late:
        current.update(store.load_facts(late))
    return Loaded(assignments, current, frozenset(late & set(current)))


def fold_calls(loaded: Loaded, events: Sequence[Event]) -> dict[str, CallFact | None]:
    """Each call's fact with this batch's events folded in (late calls as stored)."""
    by_call: dict[str, list[Event]] = {}
    for event in events:
        if event.callSid:
            by_call.setdefault(event.callSid, []).append(event)
    facts: dict[str, CallFact | None] = {}
    for sid, its_events in by_call.items():
        before = loaded.current.get(sid)
        facts[sid] = fold_all(before.fact if before else None, its_events)
    for sid in loaded.late:
        facts[sid] = loaded.current[sid].fact
    return facts


def changed_facts(
    current: Mapping[str, StoredFact], facts: Mapping[str, CallFact | None]
) -> list[StoredFact]:
    """The new version of each fact that differs from the stored one."""
    changed = []
    for sid, fact in facts.items():
        before = current.get(sid)
        if fact is None or (before is not None and before.fact == fact):
            continue
        changed.append(StoredFact(fact, (before.version if before else 0) + 1))
    return changed


def resolve_assignments(
    store: Store, assignments: list[NumberAssignment]
) -> list[NumberAssignment]:
    """Releases without assignedAt close the number's open period; the rest pass as they are."""
    unknown = [a for a in assignments if a.assignedAt.timestamp() == 0]
    if not unknown:
        return assignments
    known = store.load_assignments({a.phoneNumber for a in unknown})
    resolved = []
    for assignment in assignments:
        if assignment not in unknown:
            resolved.append(assignment)
            continue
        released = assignment.releasedAt or assignment.assignedAt
        open_periods = [
            a
            for a in known
            if a.phoneNumber == assignment.phoneNumber
            and a.releasedAt is None
            and a.assignedAt <= released
        ]
        if not open_periods:
            log.warning("release of %s matches no open assignment", assignment.phoneNumber)
            continue
        period = max(open_periods, key=lambda a: a.assignedAt)
        resolved.append(
            replace(
                assignment,
                assignedAt=period.assignedAt,
                campaign=assignment.campaign or period.campaign,
                clientId=assignment.clientId or period.clientId,
            )
        )
    return resolved


def wanting_attribution(facts: Mapping[str, CallFact | None]) -> dict[str, CallFact]:
    return {
        sid: fact
        for sid, fact in facts.items()
        if fact is not None and needs_attribution(fact) and tracked_number(fact)
    }


def known_assignments(
    store: Store, facts: Mapping[str, CallFact | None], fresh: Sequence[NumberAssignment]
) -> list[NumberAssignment]:
    """The assignments of the numbers whose calls miss a client or campaign, the batch's newest."""
    wanting = wanting_attribution(facts)
    if not wanting:
        return []
    numbers = {tracked_number(fact) for fact in wanting.values()}
    known = {(a.phoneNumber, a.assignedAt): a for a in store.load_assignments(numbers)}
    for assignment in fresh:  # not written yet: the batch's writes come last
        key = (assignment.phoneNumber, assignment.assignedAt)
        if key not in known or known[key].version <= assignment.version:
            known[key] = assignment
    return list(known.values())


def attribute_all(
    facts: dict[str, CallFact | None], known: Sequence[NumberAssignment]
) -> dict[str, CallFact | None]:
    """Missing clients and campaigns filled from the numbers' assignments (pure)."""
    wanting = wanting_attribution(facts)
    if not wanting:
        return facts
    attributed = dict(facts)
    for sid, fact in wanting.items():
        period = assignment_at(known, tracked_number(fact), fact.startedAt)
        attributed[sid] = attribute(fact, period)
    return attributed
