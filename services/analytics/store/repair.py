"""Mending a write that stopped half way (the tables commit one by one)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from services.analytics.store.sql import _hour_of, _string_lists, to_seconds
from services.analytics.store.writes import StoredFact, Writes
from switchboard.events import Event

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Repair:
    """What `Store.repair` mended: calls whose copies disagreed, hourly sums that were off."""

    calls: tuple[str, ...]
    hourly_cells: int


class Repairs(Writes):
    """`repair` and the hourly recount it ends with."""

    def repair(self, events: Sequence[Event]) -> Repair:
        """Mend what a write of these events that stopped half way may have left.

        The newest version stored of a call (in call_facts or call_state)
        stands. A call whose copies disagree with it has its calls_by_client
        rows deleted and that version written again through call_facts; the
        hours the events and stored versions fall in are recounted in
        client_hourly (`_recount_hours`). Each step reads the state it
        mends, so an interrupted repair is finished by the next one, and on
        calls in line it changes nothing. Why a fold alone cannot mend it:
        docs/reliability.md, "Writes that stop half way".
        """
        sids = sorted({event.callSid for event in events if event.callSid})
        hours = {_hour_of(event.occurred_at) for event in events if event.callSid}
        if not sids:
            return Repair((), 0)
        in_state = self.load_facts(sids)
        in_facts = self._read_facts(
            "call_facts", sids, "AND sign = 1 ORDER BY version DESC LIMIT 1 BY callSid"
        )
        standing: dict[str, StoredFact] = {}
        for sid in sids:
            found = [f for f in (in_state.get(sid), in_facts.get(sid)) if f is not None]
            hours.update(_hour_of(stored.fact.startedAt) for stored in found)
            if found:
                standing[sid] = max(found, key=lambda stored: stored.version)
        copies: dict[str, dict[int, list[int]]] = {}  # callSid -> version -> [+1 rows, -1 rows]
        for sid, version, plus, minus, hour in [
            row
            for keys in _string_lists(sids)
            for row in self._query(
                f"SELECT callSid, version, countIf(sign = 1), countIf(sign = -1), "
                f"toUnixTimestamp(toStartOfHour(startedAt)) AS hour "
                f"FROM {self.database}.calls_by_client WHERE callSid IN {keys} "
                "GROUP BY callSid, version, hour"
            )
        ]:
            rows = copies.setdefault(sid, {}).setdefault(int(version), [0, 0])
            rows[0] += int(plus)
            rows[1] += int(minus)
            hours.add(int(hour))

        def in_line(sid: str) -> bool:
            now = standing.get(sid)
            versions = copies.get(sid, {})
            if now is None:
                return not versions
            stored = (in_state.get(sid), in_facts.get(sid))
            return (
                all(f is not None and f.version == now.version for f in stored)
                and versions.get(now.version) == [1, 0]
                and all(plus == minus for v, (plus, minus) in versions.items() if v != now.version)
            )

        mended = [sid for sid in sids if not in_line(sid)]
        if mended:
            for keys in _string_lists(mended):
                self._command(
                    f"DELETE FROM {self.database}.calls_by_client WHERE callSid IN {keys}"
                )
            self._insert_fact_rows(
                [
                    (standing[sid].fact, standing[sid].version, 1)
                    for sid in mended
                    if sid in standing
                ]
            )
        repair = Repair(tuple(mended), self._recount_hours(sorted(hours)))
        if repair.calls or repair.hourly_cells:
            log.warning(
                "after a write that stopped half way: %d calls mended (%s), "
                "%d hourly sums corrected",
                len(mended),
                ", ".join(mended[:10]) + (" ..." if len(mended) > 10 else ""),
                repair.hourly_cells,
            )
        return repair

    def _recount_hours(self, hours: Sequence[int]) -> int:
        """Set client_hourly in these hours (Unix seconds) to calls_by_client's sums, every client.

        The sums are computed by client_hourly_mv's own query (read from the
        system tables, so it cannot drift from the view), restricted to the
        hours; the difference from what client_hourly holds is inserted.
        Returns how many (client, hour) cells were off.
        """
        if not hours:
            return 0
        definition = self._query(
            "SELECT as_select FROM system.tables "
            "WHERE database = {db:String} AND name = 'client_hourly_mv'",
            {"db": self.database},
        )[0][0]
        wanted = "toUnixTimestamp(hour) IN {hours:Array(UInt32)}"
        params = {"hours": list(hours)}
        with self.turn.outside(), self._lock:
            expected = self._client.query(
                f"SELECT * FROM ({definition}) WHERE {wanted}", parameters=params
            )
        measures = list(expected.column_names[2:])
        sums = ", ".join(f"sum({name})" for name in measures)
        held = {
            (row[0], int(row[1])): row[2:]
            for row in self._query(
                f"SELECT clientId, toUnixTimestamp(hour), {sums} "
                f"FROM {self.database}.client_hourly WHERE {wanted} GROUP BY clientId, hour",
                params,
            )
        }
        should = {(row[0], to_seconds(row[1])): row[2:] for row in expected.result_rows}
        zero = [0] * len(measures)
        corrections = []
        for cell in sorted(set(held) | set(should)):
            diff = [
                int(a) - int(b)
                for a, b in zip(should.get(cell, zero), held.get(cell, zero), strict=True)
            ]
            if any(diff):
                client_id, hour = cell
                corrections.append([client_id, datetime.fromtimestamp(hour, UTC), *diff])
        self._insert("client_hourly", corrections, ("clientId", "hour", *measures))
        return len(corrections)
