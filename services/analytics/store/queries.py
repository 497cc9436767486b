"""The API's reads: calls, summaries, metrics, campaigns, follow-ups.

Metrics read the current calls as the +1 rows of `calls_by_client` that no
-1 row cancels (`_current`); since a cancelling row carries exactly the
values of the row it cancels, any filter treats both alike and nothing is
counted twice, without FINAL.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from services.analytics.calls import CallFilter, CallRecord, Cursor, Summary
from services.analytics.campaigns import CampaignCalls
from services.analytics.clients import LeadThresholds
from services.analytics.config import Prices
from services.analytics.facts import FINAL_STATUSES, MISSED_STATUSES, VOICEMAIL
from services.analytics.metrics import Caller, CallerStats, Durations
from services.analytics.store.connection import Connection
from services.analytics.store.sql import _finite, from_ms, to_ms, tz_literal

_RECORD_SELECT = """
    callSid, clientId, direction, fromNumber, toNumber, forwardedTo, status,
    answered, durationSec, toUnixTimestamp64Milli(startedAt) AS startedAtMs,
    recorded, callerCity, callerState, callerCountry, campaign, recordingStored
"""


# Numbers Twilio reports for a withheld or unknown caller: not someone to rank.
ANONYMOUS_CALLERS = ("", "anonymous", "Anonymous", "restricted", "unknown", "+266696687")


_MISSED_SQL = ", ".join(f"'{status}'" for status in MISSED_STATUSES)


_DECIDED_SQL = ", ".join(f"'{status}'" for status in FINAL_STATUSES)


_ANONYMOUS_SQL = ", ".join(f"'{number}'" for number in ANONYMOUS_CALLERS)


@dataclass(frozen=True)
class CallPage:
    calls: list[CallRecord]
    next_cursor: Cursor | None


@dataclass(frozen=True)
class GeoRow:
    country: str
    state: str
    city: str
    calls: int


@dataclass(frozen=True)
class FollowUp:
    """An answered call with `number` (either way) at `startedAt`."""

    clientId: str
    number: str
    startedAt: datetime


class Queries(Connection):
    """Reads of the current calls, for the API and the operators."""

    def _where(self, flt: CallFilter) -> tuple[list[str], dict[str, Any]]:
        clauses: list[str] = []
        params: dict[str, Any] = {}
        if flt.client_id is not None:
            clauses.append("clientId = {clientId:String}")
            params["clientId"] = flt.client_id
        if flt.direction is not None:
            clauses.append("direction = {direction:String}")
            params["direction"] = flt.direction
        if flt.status is not None:
            clauses.append("status = {status:String}")
            params["status"] = flt.status
        if flt.start is not None:
            clauses.append("startedAt >= fromUnixTimestamp64Milli({fromMs:Int64}, 'UTC')")
            params["fromMs"] = to_ms(flt.start)
        if flt.end is not None:
            clauses.append("startedAt < fromUnixTimestamp64Milli({toMs:Int64}, 'UTC')")
            params["toMs"] = to_ms(flt.end)
        if flt.campaign is not None:
            clauses.append("campaign = {campaign:String}")
            params["campaign"] = flt.campaign
        if flt.min_duration_sec is not None:
            clauses.append("durationSec >= {minDuration:UInt32}")
            params["minDuration"] = flt.min_duration_sec
        if flt.caller is not None:
            # The other party: the caller of an inbound call, the called of an outbound one.
            clauses.append("(fromNumber = {caller:String} OR toNumber = {caller:String})")
            params["caller"] = flt.caller
        return clauses, params

    def _current_sql(self, clauses: Sequence[str]) -> str:
        """FROM/WHERE selecting the current version of each call that matches `clauses`.

        The +1 rows, less those a -1 row cancels (same callSid and version).
        A cancelling row holds the values of the row it cancels, so it
        matches the same clauses, and looking for it among them is enough.
        """
        table = f"{self.database}.calls_by_client"
        matching = " AND ".join(clauses) or "1"
        return (
            f"FROM {table} WHERE sign = 1 AND {matching} AND (callSid, version) NOT IN "
            f"(SELECT callSid, version FROM {table} WHERE sign = -1 AND {matching})"
        )

    def _current(self, flt: CallFilter, extra: Sequence[str] = ()) -> tuple[str, dict[str, Any]]:
        clauses, params = self._where(flt)
        return self._current_sql([*clauses, *extra]), params

    def list_calls(self, flt: CallFilter, limit: int, after: Cursor | None = None) -> CallPage:
        """Calls newest first (startedAt, then callSid, descending), `limit` at most."""
        extra = []
        cursor_params: dict[str, Any] = {}
        if after is not None:
            extra.append(
                "(startedAt, callSid) < "
                "(fromUnixTimestamp64Milli({afterMs:Int64}, 'UTC'), {afterSid:String})"
            )
            cursor_params = {"afterMs": after.started_ms, "afterSid": after.call_sid}
        current, params = self._current(flt, extra)
        rows = self._query(
            f"SELECT {_RECORD_SELECT} {current} "
            f"ORDER BY startedAt DESC, callSid DESC LIMIT {int(limit) + 1}",
            {**params, **cursor_params},
        )
        calls = [_record(row) for row in rows[:limit]]
        more = len(rows) > limit
        last = calls[-1] if calls else None
        cursor = Cursor(to_ms(last.startedAt), last.callSid) if more and last else None
        return CallPage(calls, cursor)

    def iter_calls(
        self,
        flt: CallFilter,
        limit: int | None = None,
        after: Cursor | None = None,
        page_size: int = 5000,
    ) -> Iterator[CallRecord]:
        """Every matching call, newest first, fetched a page at a time.

        Pages keep the lock short: an export streamed to a slow client never
        holds the engine while the consumer wants to write.
        """
        cursor = after
        remaining = limit
        while remaining is None or remaining > 0:
            size = page_size if remaining is None else min(page_size, remaining)
            page = self.list_calls(flt, size, cursor)
            yield from page.calls
            if remaining is not None:
                remaining -= len(page.calls)
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def get_call(self, call_sid: str) -> CallRecord | None:
        rows = self._query(
            f"SELECT {_RECORD_SELECT}, voicemailSid, voicemailDurationSec "
            f"FROM {self.database}.calls "
            "WHERE callSid = {callSid:String} LIMIT 1",
            {"callSid": call_sid},
        )
        if not rows:
            return None
        *record, voicemail_sid, voicemail_sec = rows[0]
        call = replace(
            _record(tuple(record)),
            voicemailSid=voicemail_sid,
            voicemailDurationSec=int(voicemail_sec),
        )
        return self._with_text_back(call)

    def _with_text_back(self, call: CallRecord) -> CallRecord:
        """The call with its text-back, read from the raw `sms.sent` events it got.

        The events table keeps every event as it arrived, sorted by callSid, so
        one call's are found without a table of their own; an erased caller's
        number is already its token there.
        """
        rows = self._query(
            "SELECT JSONExtractString(payload, 'data', 'to'),"
            " JSONExtractString(payload, 'data', 'messageSid'),"
            " JSONExtractString(payload, 'data', 'sentAt') "
            f"FROM {self.database}.events "
            "WHERE callSid = {callSid:String} AND type = 'sms.sent' "
            "ORDER BY occurredAt LIMIT 1",
            {"callSid": call.callSid},
        )
        if not rows:
            return call
        to, message_sid, sent_at = rows[0]
        return replace(call, textBackTo=to, textBackMessageSid=message_sid, textBackSentAt=sent_at)

    def summary(self, flt: CallFilter) -> Summary:
        current, params = self._current(flt)
        rows = self._query(
            f"""
            SELECT
                count(),
                countIf(direction = 'inbound'),
                countIf(direction = 'outbound'),
                countIf(status = 'completed'),
                countIf(status IN ({_MISSED_SQL})),
                sum(durationSec),
                countIf(answered = 1),
                countIf(status = 'unrouted'),
                countIf(status = '{VOICEMAIL}')
            {current}
            """,
            params,
        )
        total, inbound, outbound, completed, missed, duration, answered, unrouted, voicemail = (
            int(v or 0) for v in rows[0]
        )
        return Summary.compute(
            total_calls=total,
            inbound=inbound,
            outbound=outbound,
            completed=completed,
            missed=missed,
            total_duration_sec=duration,
            answered=answered,
            unrouted=unrouted,
            voicemail=voicemail,
        )

    def timeseries(self, flt: CallFilter, interval: str, tz: str) -> list[tuple[Any, ...]]:
        """(bucket key, total, inbound, outbound, completed, missed, answered, durationSec)."""
        zone = tz_literal(tz)
        key = {
            "hour": f"toUnixTimestamp(toStartOfHour(startedAt, {zone}))",
            "day": f"toString(toDate(startedAt, {zone}))",
            "month": f"toString(toStartOfMonth(startedAt, {zone}))",
        }[interval]
        current, params = self._current(flt)
        return self._query(
            f"""
            SELECT
                {key} AS bucket,
                count(),
                countIf(direction = 'inbound'),
                countIf(direction = 'outbound'),
                countIf(status = 'completed'),
                countIf(status IN ({_MISSED_SQL})),
                countIf(answered = 1),
                sum(durationSec)
            {current}
            GROUP BY bucket
            ORDER BY bucket
            """,
            params,
        )

    def durations(self, flt: CallFilter) -> Durations:
        """Talk time of the answered calls: total, mean, median and 90th percentile.

        Percentiles interpolate between neighbours (as numpy's default and
        a spreadsheet's PERCENTILE.INC do).
        """
        current, params = self._current(flt, ["answered = 1"])
        rows = self._query(
            "SELECT count(), sum(durationSec), avg(durationSec), "
            "quantileExactInclusive(0.5)(durationSec), quantileExactInclusive(0.9)(durationSec) "
            f"{current}",
            params,
        )
        calls, total, mean, median, p90 = rows[0]
        return Durations(
            calls=int(calls or 0),
            totalSec=int(total or 0),
            avgSec=round(_finite(mean), 1),
            medianSec=round(_finite(median), 1),
            p90Sec=round(_finite(p90), 1),
        )

    def peak_hours(self, flt: CallFilter, tz: str) -> dict[tuple[int, int], tuple[int, int]]:
        """{(dayOfWeek 1=Monday..7, hour 0-23): (calls, answered)} in the time zone."""
        zone = tz_literal(tz)
        current, params = self._current(flt)
        rows = self._query(
            f"SELECT toDayOfWeek(startedAt, 0, {zone}) AS day, toHour(startedAt, {zone}) AS hour, "
            f"count(), countIf(answered = 1) {current} GROUP BY day, hour",
            params,
        )
        return {(int(d), int(h)): (int(c), int(a)) for d, h, c, a in rows}

    def _caller_scope(self, flt: CallFilter) -> tuple[str, dict[str, Any], str]:
        """Inbound calls with a known caller up to the range's end (for first-ever calls)."""
        history = CallFilter(
            client_id=flt.client_id,
            end=flt.end,
            campaign=flt.campaign,
            status=flt.status,
            min_duration_sec=flt.min_duration_sec,
        )
        current, params = self._current(
            history, ["direction = 'inbound'", f"fromNumber NOT IN ({_ANONYMOUS_SQL})"]
        )
        in_range = "1"
        if flt.start is not None:
            in_range = "startedAt >= fromUnixTimestamp64Milli({fromMs:Int64}, 'UTC')"
            params["fromMs"] = to_ms(flt.start)
        return current, params, in_range

    def top_callers(self, flt: CallFilter, limit: int) -> tuple[list[Caller], CallerStats]:
        """The callers with most calls in the range, and the stats over all of them.

        One scan: the stats are window aggregates over every caller, taken
        before LIMIT keeps the top ones.
        """
        current, params, in_range = self._caller_scope(flt)
        first_in_range = (
            "1" if flt.start is None else "first >= fromUnixTimestamp64Milli({fromMs:Int64}, 'UTC')"
        )
        rows = self._query(
            f"""
            SELECT
                fromNumber, calls, answered,
                toUnixTimestamp64Milli(last), toUnixTimestamp64Milli(first),
                count() OVER (), countIf(calls >= 2) OVER (),
                countIf({first_in_range}) OVER (), sum(calls) OVER ()
            FROM (
                SELECT
                    fromNumber,
                    countIf({in_range}) AS calls,
                    countIf({in_range} AND answered = 1) AS answered,
                    maxIf(startedAt, {in_range}) AS last,
                    min(startedAt) AS first
                {current}
                GROUP BY fromNumber
                HAVING calls > 0
            )
            ORDER BY calls DESC, last DESC, fromNumber
            LIMIT {int(limit)}
            """,
            params,
        )
        callers = [
            Caller(number, int(calls), int(answered), from_ms(last), from_ms(first))
            for number, calls, answered, last, first, *_ in rows
        ]
        unique, repeat, first_time, total = (int(v) for v in rows[0][5:]) if rows else (0,) * 4
        stats = CallerStats(
            uniqueCallers=unique,
            repeatCallers=repeat,
            firstTimeCallers=first_time,
            firstTimeCalls=first_time,
            totalCalls=total,
        )
        return callers, stats

    def geography(self, flt: CallFilter) -> tuple[list[GeoRow], int]:
        """Inbound calls by (country, state, city); and how many had no country."""
        current, params = self._current(flt, ["direction = 'inbound'"])
        rows = self._query(
            "SELECT callerCountry, callerState, callerCity, count() "
            f"{current} GROUP BY callerCountry, callerState, callerCity",
            params,
        )
        places = [GeoRow(country, state, city, int(n)) for country, state, city, n in rows]
        unknown = sum(place.calls for place in places if not place.country)
        return [place for place in places if place.country], unknown

    def lead_buckets(
        self,
        flt: CallFilter,
        thresholds: LeadThresholds,
        qualified_by_client: Mapping[str, int] | None = None,
    ) -> tuple[list[int], int, int]:
        """(calls per talk-time bucket, decided calls, qualified leads).

        `qualified_by_client` gives some clients their own qualifying talk
        time (across clients); the others use `thresholds.qualified_sec`.
        """
        qualified, q_params = self._qualified_sql(thresholds, qualified_by_client)
        current, params = self._current(flt, [f"status IN ({_DECIDED_SQL})"])
        rows = self._query(
            f"""
            SELECT
                countIf(durationSec < {{shortSec:UInt32}}),
                countIf(durationSec >= {{shortSec:UInt32}} AND durationSec < {{longSec:UInt32}}),
                countIf(durationSec >= {{longSec:UInt32}}),
                count(),
                countIf({qualified})
            {current}
            """,
            {
                **params,
                **q_params,
                "shortSec": thresholds.short_sec,
                "longSec": thresholds.long_sec,
            },
        )
        short, medium, long, decided, leads = (int(v or 0) for v in rows[0])
        return [short, medium, long], decided, leads

    @staticmethod
    def _qualified_sql(
        thresholds: LeadThresholds, by_client: Mapping[str, int] | None
    ) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {"qualifiedSec": thresholds.qualified_sec}
        if not by_client:
            return "answered = 1 AND durationSec >= {qualifiedSec:UInt32}", params
        params["qClients"] = list(by_client)
        params["qSeconds"] = [int(v) for v in by_client.values()]
        return (
            "answered = 1 AND durationSec >= transform(clientId, {qClients:Array(String)}, "
            "{qSeconds:Array(UInt32)}, {qualifiedSec:UInt32})",
            params,
        )

    def campaign_calls(
        self,
        flt: CallFilter,
        thresholds: LeadThresholds,
        prices: Prices,
        qualified_by_client: Mapping[str, int] | None = None,
    ) -> list[CampaignCalls]:
        """Per (client, campaign): calls, answered, qualified, usage cost, conversions, value."""
        qualified, q_params = self._qualified_sql(thresholds, qualified_by_client)
        current, params = self._current(flt, ["clientId != ''"])
        price_params = {
            "inRate": prices.inbound_per_min,
            "outRate": prices.outbound_per_min,
            "recRate": prices.recording_per_min,
        }
        usage = (
            "ceil(greatest(parentDurationSec, durationSec) / 60) * "
            "if(direction = 'outbound', {outRate:Float64}, {inRate:Float64}) + "
            "if(direction = 'inbound' AND answered = 1, "
            "ceil(durationSec / 60) * {outRate:Float64}, 0) + "
            "if(recorded = 1, ceil(durationSec / 60) * {recRate:Float64}, 0)"
        )
        conversion_where = "WHERE clientId = {clientId:String}" if flt.client_id else ""
        rows = self._query(
            f"""
            SELECT clientId, campaign, count(), countIf(answered = 1), countIf({qualified}),
                   sum({usage}), countIf(v.callSid != ''), sum(v.value)
            FROM (
                SELECT callSid, clientId, campaign, answered, durationSec, parentDurationSec,
                       direction, recorded
                {current}
            ) AS c
            LEFT JOIN (
                SELECT callSid, argMax(value, version) AS value
                FROM {self.database}.conversions {conversion_where}
                GROUP BY callSid
            ) AS v ON v.callSid = c.callSid
            GROUP BY clientId, campaign
            """,
            {**params, **q_params, **price_params},
        )
        return [
            CampaignCalls(
                client,
                campaign,
                int(calls),
                int(answered),
                int(leads),
                float(cost or 0),
                int(conversions),
                float(value or 0),
            )
            for client, campaign, calls, answered, leads, cost, conversions, value in rows
        ]

    def missed_calls(self, flt: CallFilter, limit: int) -> list[CallRecord]:
        """Missed calls (no-answer, busy, failed, canceled, voicemail), newest first."""
        current, params = self._current(flt, [f"status IN ({_MISSED_SQL})"])
        rows = self._query(
            f"SELECT {_RECORD_SELECT} {current} ORDER BY startedAt DESC, callSid DESC "
            f"LIMIT {int(limit)}",
            params,
        )
        return [_record(row) for row in rows]

    def follow_ups(
        self, client_ids: Sequence[str], numbers: Sequence[str], since: datetime
    ) -> list[FollowUp]:
        """Answered calls since `since` from (inbound) or to (outbound) these numbers."""
        if not numbers:
            return []
        clauses = [
            "answered = 1",
            "startedAt >= fromUnixTimestamp64Milli({sinceMs:Int64}, 'UTC')",
            "((direction = 'inbound' AND fromNumber IN {numbers:Array(String)}) OR "
            "(direction = 'outbound' AND toNumber IN {numbers:Array(String)}))",
            "clientId IN {clients:Array(String)}",
        ]
        rows = self._query(
            "SELECT clientId, if(direction = 'inbound', fromNumber, toNumber), "
            f"toUnixTimestamp64Milli(startedAt) {self._current_sql(clauses)}",
            {
                "sinceMs": to_ms(since),
                "numbers": sorted(set(numbers)),
                "clients": sorted(set(client_ids)),
            },
        )
        return [FollowUp(client, number, from_ms(ms)) for client, number, ms in rows]

    def call_client(self, call_sid: str) -> str | None:
        """The client a call belongs to ('' for none); None when there is no such call."""
        call = self.get_call(call_sid)
        return None if call is None else (call.clientId or "")

    def count_events(self) -> int:
        return int(self._query(f"SELECT count() FROM {self.database}.events FINAL")[0][0])

    def count_calls(self) -> int:
        return int(self._query(f"SELECT count() FROM {self.database}.calls")[0][0])

    def count_fact_versions(self) -> int:
        """Rows in call_facts that carry a version (+1), superseded ones included."""
        return int(
            self._query(f"SELECT count() FROM {self.database}.call_facts WHERE sign = 1")[0][0]
        )


def _record(row: tuple[Any, ...]) -> CallRecord:
    (
        call_sid,
        client_id,
        direction,
        from_number,
        to_number,
        forwarded_to,
        status,
        answered,
        duration,
        started_ms,
        recorded,
        city,
        state,
        country,
        campaign,
        recording_stored,
    ) = row
    return CallRecord(
        callSid=call_sid,
        clientId=client_id or None,
        direction=direction,
        fromNumber=from_number,
        toNumber=to_number,
        forwardedTo=forwarded_to or None,
        status=status,
        answered=bool(answered),
        durationSec=int(duration),
        startedAt=from_ms(int(started_ms)),
        recorded=bool(recorded),
        callerCity=city,
        callerState=state,
        callerCountry=country,
        campaign=campaign,
        recordingStored=bool(recording_stored),
    )
