"""Synthetic data for the benchmark, generated inside ClickHouse (no Python per row).

Calls are spread over the year before `now`, mostly in business hours; 85%
inbound; outcomes, talk times (exponential, mean 90 s), callers (5,000 per
client, so people call again), places and campaigns (per number) drawn from
hashes of the row number, so a run with the same size loads the same data.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from services.analytics.store import Store

CLIENTS = 1000
NUMBERS_PER_CLIENT = 3
CALLERS_PER_CLIENT = 5000
ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Kolkata",
    "UTC",
)
PLACES = (
    ("NEW YORK", "NY", "US"),
    ("BROOKLYN", "NY", "US"),
    ("LOS ANGELES", "CA", "US"),
    ("SAN FRANCISCO", "CA", "US"),
    ("SAN DIEGO", "CA", "US"),
    ("AUSTIN", "TX", "US"),
    ("DALLAS", "TX", "US"),
    ("HOUSTON", "TX", "US"),
    ("CHICAGO", "IL", "US"),
    ("SEATTLE", "WA", "US"),
    ("MIAMI", "FL", "US"),
    ("DENVER", "CO", "US"),
    ("BOSTON", "MA", "US"),
    ("PHOENIX", "AZ", "US"),
    ("TORONTO", "ON", "CA"),
    ("VANCOUVER", "BC", "CA"),
    ("", "", ""),
)
CAMPAIGNS = ("google", "facebook", "direct", "radio", "")
# 20 equally likely outcomes of an inbound call: 13 answered, 7 missed or other.
OUTCOMES = (
    *(["completed"] * 13),
    "no-answer",
    "no-answer",
    "no-answer",
    "busy",
    "canceled",
    "failed",
    "unrouted",
)


def client_id(index: int) -> str:
    return f"bench-client-{index:04d}"


def _array(values: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join("'" + v + "'" for v in values) + "]"


def facts_sql(database: str, first: int, count: int, now: datetime) -> str:
    """INSERT of `count` call facts numbered from `first`, one year up to `now`."""
    year_ms = 365 * 86400 * 1000
    cities = _array([p[0] for p in PLACES])
    states = _array([p[1] for p in PLACES])
    countries = _array([p[2] for p in PLACES])
    now_ms = int(now.timestamp() * 1000)
    return f"""
    INSERT INTO {database}.call_facts
        (callSid, clientId, direction, fromNumber, toNumber, forwardedTo, status, answered,
         durationSec, startedAt, endedAt, recorded, callerCity, callerState, callerCountry,
         routed, campaign, disposition, recordingEnabled, fallback, dialStatus,
         dialDurationSec, dialBridged, childStatus, childDurationSec, parentStatus,
         parentDurationSec, version, sign, updatedAt)
    SELECT
        concat('CA', lower(hex(MD5(concat('bench', toString(n)))))) AS callSid,
        if(status = 'unrouted', '', concat('bench-client-', leftPad(toString(client), 4, '0')))
            AS clientId,
        if(cityHash64(n, 1) % 100 < 15, 'outbound', 'inbound') AS direction,
        concat('+1', toString(2000000000 + client * {CALLERS_PER_CLIENT}
                                          + cityHash64(n, 2) % {CALLERS_PER_CLIENT})) AS fromNumber,
        concat('+1415', leftPad(toString(client * {NUMBERS_PER_CLIENT} + number_index), 7, '0'))
            AS toNumber,
        '+14155550199' AS forwardedTo,
        if(direction = 'outbound',
           if(cityHash64(n, 3) % 10 < 7, 'completed', 'no-answer'),
           {_array(list(OUTCOMES))}[1 + cityHash64(n, 3) % {len(OUTCOMES)}]) AS status,
        status = 'completed' AS answered,
        if(answered,
           toUInt32(least(3600, -90 * log((cityHash64(n, 4) % 1000000 + 1) / 1000001))), 0)
            AS durationSec,
        fromUnixTimestamp64Milli(toInt64({now_ms - year_ms}
            + intDiv(cityHash64(n, 5) % {year_ms}, 86400000) * 86400000
            + if(cityHash64(n, 6) % 10 < 8,
                 (13 + cityHash64(n, 7) % 10) * 3600000 + cityHash64(n, 8) % 3600000,
                 cityHash64(n, 7) % 86400000)), 'UTC') AS startedAt,
        startedAt + toIntervalSecond(durationSec + 10) AS endedAt,
        answered AND cityHash64(n, 9) % 10 < 7 AS recorded,
        {cities}[1 + place] AS city,
        {states}[1 + place] AS state,
        {countries}[1 + place] AS country,
        direction = 'inbound' AND status NOT IN ('failed', 'unrouted') AS routed,
        {_array(list(CAMPAIGNS))}[1 + (client + number_index) % {len(CAMPAIGNS)}] AS campaign,
        if(direction = 'outbound', '', if(status = 'unrouted', 'unassigned', 'forwarded')),
        recorded, status = 'failed', if(direction = 'inbound', status, ''),
        if(direction = 'inbound', durationSec, 0), '', '', 0,
        if(direction = 'outbound', status, 'completed'), durationSec + 8,
        1, 1, now64(3)
    FROM (
        SELECT
            number AS n,
            cityHash64(number, 0) % {CLIENTS} AS client,
            cityHash64(number, 10) % {NUMBERS_PER_CLIENT} AS number_index,
            cityHash64(number, 11) % {len(PLACES)} AS place
        FROM numbers({first}, {count})
    )
    """


def load_facts(
    store: Store,
    calls: int,
    now: datetime,
    chunk: int = 1_000_000,
    progress: Callable[[str], None] = print,
) -> float:
    """Insert `calls` facts in chunks, reporting progress; returns the seconds taken."""
    started = time.monotonic()
    done = 0
    while done < calls:
        size = min(chunk, calls - done)
        store._command(facts_sql(store.database, done, size, now))
        done += size
        elapsed = time.monotonic() - started
        rate = done / elapsed if elapsed else 0.0
        eta = (calls - done) / rate if rate else 0.0
        progress(
            f"  loaded {done:>12,} / {calls:,} calls ({done / calls:6.1%}), "
            f"{rate:,.0f} calls/s, {elapsed:5.0f} s elapsed, ETA {eta:4.0f} s"
        )
    return time.monotonic() - started


def load_reference_data(store: Store, now: datetime) -> None:
    """Client settings, number assignments and a conversion for ~4% of answered calls."""
    db = store.database
    zones = _array(list(ZONES))
    store._command(
        f"""
        INSERT INTO {db}.client_settings
            (clientId, name, timezone, valuePerConversion, leadShortSec, leadLongSec,
             leadQualifiedSec, deleted, version)
        SELECT concat('bench-client-', leftPad(toString(number), 4, '0')),
               concat('Bench client ', toString(number)),
               {zones}[1 + number % {len(ZONES)}], 120, NULL, NULL,
               if(number % 2 = 0, 60, NULL), 0, 1
        FROM numbers({CLIENTS})
        """
    )
    assigned_ms = int(now.timestamp() * 1000) - 400 * 86400 * 1000
    store._command(
        f"""
        INSERT INTO {db}.number_assignments
            (phoneNumber, assignedAt, clientId, campaign, releasedAt, version)
        SELECT concat('+1415', leftPad(toString(number), 7, '0')),
               fromUnixTimestamp64Milli({assigned_ms}, 'UTC'),
               concat('bench-client-', leftPad(toString(intDiv(number, {NUMBERS_PER_CLIENT})),
                      4, '0')),
               {_array(list(CAMPAIGNS))}[1 + (intDiv(number, {NUMBERS_PER_CLIENT})
                                              + number % {NUMBERS_PER_CLIENT})
                                             % {len(CAMPAIGNS)}],
               NULL, 1
        FROM numbers({CLIENTS * NUMBERS_PER_CLIENT})
        """
    )
    store._command(
        f"""
        INSERT INTO {db}.conversions (clientId, callSid, value, recordedAt, version)
        SELECT clientId, callSid, 50 + cityHash64(callSid) % 450, startedAt, 1
        FROM {db}.call_facts
        WHERE status = 'completed' AND cityHash64(callSid, 1) % 25 = 0
        """
    )
