"""Every metric over HTTP against hand-computed figures on a small known data set.

Client "acme" lives in America/New_York (UTC-4 in May 2024) and has the
number +14155550100 (campaign "google") since January. The requested range
`from=2024-05-01&to=2024-05-03` is read in acme's zone: from May 1 00:00
EDT (04:00Z) to the end of May 3 EDT (May 4 04:00Z).

    call  UTC start          local (EDT)       what                               campaign
    A0    04-20 15:00        Sat 04-20 11:00   A answers 10 s                      google
    A1    05-01 03:30        Tue 04-30 23:30   A answers 40 s   (before the range) google
    A2    05-01 04:30        Wed 05-01 00:30   A answers 200 s                     google
    A3    05-01 14:00        Wed 05-01 10:00   B no-answer (outcome arrives late)  facebook
    A4    05-02 15:00        Thu 05-02 11:00   B answers 90 s, routed w/o campaign google (number)
    A5    05-02 16:00        Thu 05-02 12:00   acme calls B, 60 s (outbound)       google (number)
    A6    05-03 12:00        Fri 05-03 08:00   C, router down: fallback (failed)   google (number)
    A7    05-03 13:00        Fri 05-03 09:00   A answers 130 s; seen before its    google
                                               client was known (no routing yet)
    Z1    05-01 12:00        -                 client zeta, A answers 50 s         zeta-ads

A = +12125550001 (New York, NY, US), B = +13105550002 (Los Angeles, CA, US),
C = +14165550003 (Toronto, ON, CA). Every batch is also written twice, as
Twilio retries and Kafka re-deliveries would.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.analytics.campaigns import SECONDS_PER_MONTH
from services.analytics.consumer import write
from services.analytics.store import Store
from switchboard.events import Event
from tests.analytics import call_scripts as script
from tests.analytics.conftest import AUTH, bearer
from tests.analytics.key_service import KeyService
from tests.support import api_key

AppFactory = Callable[..., Flask]

A, B, C = "+12125550001", "+13105550002", "+14165550003"
LOS_ANGELES = ("LOS ANGELES", "CA", "US")
TORONTO = ("TORONTO", "ON", "CA")
RANGE = {"clientId": "acme", "from": "2024-05-01", "to": "2024-05-03"}


def utc(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2024, month, day, hour, minute, tzinfo=UTC)


def seed(store: Store) -> None:
    a7 = script.answered_call("A7", utc(5, 3, 13), "acme", talk=130, caller=A, campaign="google")
    a3 = script.missed_call(
        "A3", utc(5, 1, 14), "acme", caller=B, campaign="facebook", place=LOS_ANGELES
    )
    batches: list[list[Event]] = [
        # A7's first event comes before anyone knows acme owns the number.
        a7[:1],
        [
            script.number_assigned(script.TWILIO_NUMBER, "acme", "google", utc(1, 1, 0)),
            script.settings_changed(
                "acme",
                "America/New_York",
                valuePerConversion=100,
                leadThresholds={"shortSec": 30, "longSec": 120, "qualifiedSec": 100},
            ),
            script.settings_changed("zeta", "UTC"),
        ],
        [
            *script.answered_call(
                "A0", utc(4, 20, 15), "acme", talk=10, caller=A, campaign="google"
            ),
            *script.answered_call(
                "A1", utc(5, 1, 3, 30), "acme", talk=40, caller=A, campaign="google"
            ),
            *script.answered_call(
                "A2", utc(5, 1, 4, 30), "acme", talk=200, caller=A, campaign="google"
            ),
            *a3[:2],
            *script.answered_call(
                "A4", utc(5, 2, 15), "acme", talk=90, caller=B, campaign=None, place=LOS_ANGELES
            ),
            *script.outbound_call("A5", utc(5, 2, 16), "acme", to=B, talk=60),
            *script.fallback_call("A6", utc(5, 3, 12), caller=C, place=TORONTO),
            *script.answered_call(
                "Z1", utc(5, 1, 12), "zeta", talk=50, caller=A, campaign="zeta-ads"
            ),
        ],
        # Late state changes: A3's outcome, and A7's routing and outcome.
        [*a3[2:], *a7[1:]],
    ]
    for batch in batches:
        write(store, batch + batch[:3])  # duplicates inside a batch
    for batch in batches:
        write(store, batch)  # and every batch delivered again


@pytest.fixture
def client(make_app: AppFactory, store: Store) -> FlaskClient:
    seed(store)
    return make_app().test_client()


def get(client: FlaskClient, path: str, headers: dict[str, str] = AUTH, **params: Any) -> Any:
    response = client.get(path, query_string=params, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_summary_counts_each_call_once_in_the_clients_days(client: FlaskClient) -> None:
    summary = get(client, "/api/analytics/summary", **RANGE)
    assert summary == {
        "clientId": "acme",
        "timezone": "America/New_York",
        "from": "2024-05-01T04:00:00.000Z",
        "to": "2024-05-04T04:00:00.000Z",
        "totalCalls": 6,  # A2-A7; A1 is April 30 in New York
        "inbound": 5,
        "outbound": 1,
        "completed": 4,
        "missed": 2,  # A3 no-answer, A6 failed
        "totalDurationSec": 480,  # 200 + 90 + 60 + 130
        "avgDurationSec": 120.0,
        "answerRate": 0.6667,
        "answered": 4,
        "unrouted": 0,
        "voicemail": 0,
    }
    # tz overrides the client's zone: UTC days take A1 in.
    in_utc = get(client, "/api/analytics/summary", tz="UTC", **RANGE)
    assert (in_utc["totalCalls"], in_utc["from"]) == (7, "2024-05-01T00:00:00.000Z")
    # Across clients: nine calls, none of them twice, none left under "no client".
    everyone = get(client, "/api/analytics/summary")
    assert (everyone["totalCalls"], everyone["unrouted"]) == (9, 0)


def test_timeseries_by_local_day_is_zero_filled(client: FlaskClient) -> None:
    series = get(client, "/api/analytics/timeseries", interval="day", **RANGE)
    assert series["points"] == [
        {
            "t": "2024-05-01T00:00:00-04:00",
            "total": 2,
            "inbound": 2,
            "outbound": 0,
            "completed": 1,
            "missed": 1,
            "answered": 1,
            "durationSec": 200,
            "answerRate": 0.5,
        },
        {
            "t": "2024-05-02T00:00:00-04:00",
            "total": 2,
            "inbound": 1,
            "outbound": 1,
            "completed": 2,
            "missed": 0,
            "answered": 2,
            "durationSec": 150,
            "answerRate": 1.0,
        },
        {
            "t": "2024-05-03T00:00:00-04:00",
            "total": 2,
            "inbound": 2,
            "outbound": 0,
            "completed": 1,
            "missed": 1,
            "answered": 1,
            "durationSec": 130,
            "answerRate": 0.5,
        },
    ]
    hours = get(
        client,
        "/api/analytics/timeseries",
        interval="hour",
        clientId="acme",
        **{"from": "2024-05-01", "to": "2024-05-01"},
    )["points"]
    assert len(hours) == 24
    assert hours[0]["t"] == "2024-05-01T00:00:00-04:00"
    assert [h["total"] for h in hours if h["total"]] == [1, 1]
    assert (hours[0]["total"], hours[10]["total"]) == (1, 1)  # A2 00:30, A3 10:00
    months = get(
        client,
        "/api/analytics/timeseries",
        interval="month",
        clientId="acme",
        **{"from": "2024-04-01", "to": "2024-05-31"},
    )["points"]
    assert [(m["t"], m["total"]) for m in months] == [
        ("2024-04-01T00:00:00-04:00", 2),  # A0 and A1 (April 30, local)
        ("2024-05-01T00:00:00-04:00", 6),
    ]


def test_empty_range_gives_zeros_not_errors(client: FlaskClient) -> None:
    empty = {"clientId": "acme", "from": "2024-06-01", "to": "2024-06-02"}
    series = get(client, "/api/analytics/timeseries", interval="day", **empty)["points"]
    assert [(p["t"], p["total"]) for p in series] == [
        ("2024-06-01T00:00:00-04:00", 0),
        ("2024-06-02T00:00:00-04:00", 0),
    ]
    assert get(client, "/api/analytics/summary", **empty)["totalCalls"] == 0
    durations = get(client, "/api/analytics/durations", **empty)
    assert (durations["medianSec"], durations["p90Sec"], durations["avgSec"]) == (0.0, 0.0, 0.0)
    callers = get(client, "/api/analytics/top-callers", **empty)
    assert (callers["callers"], callers["repeatCallerRate"]) == ([], 0.0)
    assert get(client, "/api/analytics/geography", **empty)["countries"] == []
    lead = get(client, "/api/analytics/lead-quality", **empty)
    assert ([b["calls"] for b in lead["buckets"]], lead["qualifiedRate"]) == ([0, 0, 0], 0.0)
    assert get(client, "/api/analytics/missed-calls", **empty)["calls"] == []
    peaks = get(client, "/api/analytics/peak-hours", **empty)
    assert peaks["peakHour"] is None and sum(h["calls"] for h in peaks["hours"]) == 0


def test_durations_median_and_p90_of_talk_time(client: FlaskClient) -> None:
    # Answered talk times in range: 60, 90, 130, 200.
    durations = get(client, "/api/analytics/durations", **RANGE)
    assert durations == {
        "clientId": "acme",
        "timezone": "America/New_York",
        "from": "2024-05-01T04:00:00.000Z",
        "to": "2024-05-04T04:00:00.000Z",
        "calls": 4,
        "totalSec": 480,
        "avgSec": 120.0,
        "medianSec": 110.0,  # (90 + 130) / 2
        "p90Sec": 179.0,  # 130 + 0.7 * (200 - 130)
    }


def test_peak_hours_in_the_clients_zone(client: FlaskClient) -> None:
    peaks = get(client, "/api/analytics/peak-hours", **RANGE)
    busy = {h["hour"]: (h["calls"], h["answered"]) for h in peaks["hours"] if h["calls"]}
    assert busy == {0: (1, 1), 8: (1, 0), 9: (1, 1), 10: (1, 0), 11: (1, 1), 12: (1, 1)}
    assert [d["calls"] for d in peaks["days"]] == [0, 0, 2, 2, 2, 0, 0]  # Wed, Thu, Fri
    assert (peaks["peakHour"], peaks["peakDayOfWeek"]) == (0, 3)


def test_top_callers_and_repeat_and_first_time_callers(client: FlaskClient) -> None:
    body = get(client, "/api/analytics/top-callers", **RANGE)
    assert body["callers"] == [
        {
            "number": A,
            "calls": 2,
            "answered": 2,
            "lastCallAt": "2024-05-03T13:00:00.000Z",
            "firstCallAt": "2024-04-20T15:00:00.000Z",
        },
        {
            "number": B,
            "calls": 2,
            "answered": 1,
            "lastCallAt": "2024-05-02T15:00:00.000Z",
            "firstCallAt": "2024-05-01T14:00:00.000Z",
        },
        {
            "number": C,
            "calls": 1,
            "answered": 0,
            "lastCallAt": "2024-05-03T12:00:00.000Z",
            "firstCallAt": "2024-05-03T12:00:00.000Z",
        },
    ]
    assert {
        k: body[k]
        for k in (
            "uniqueCallers",
            "repeatCallers",
            "repeatCallerRate",
            "firstTimeCallers",
            "returningCallers",
            "firstTimeCalls",
            "repeatCalls",
        )
    } == {
        "uniqueCallers": 3,
        "repeatCallers": 2,  # A and B called twice in the range
        "repeatCallerRate": 0.6667,
        "firstTimeCallers": 2,  # B and C; A called before (A0, A1)
        "returningCallers": 1,
        "firstTimeCalls": 2,
        "repeatCalls": 3,  # 5 inbound calls, 2 of them first-time
    }
    assert len(get(client, "/api/analytics/top-callers", limit=1, **RANGE)["callers"]) == 1


def test_geography_of_inbound_callers(client: FlaskClient) -> None:
    geo = get(client, "/api/analytics/geography", **RANGE)
    assert geo["countries"] == [{"country": "US", "calls": 4}, {"country": "CA", "calls": 1}]
    assert geo["states"] == [
        {"country": "US", "state": "CA", "calls": 2},
        {"country": "US", "state": "NY", "calls": 2},
        {"country": "CA", "state": "ON", "calls": 1},
    ]
    assert geo["cities"] == [
        {"city": "LOS ANGELES", "state": "CA", "country": "US", "calls": 2},
        {"city": "NEW YORK", "state": "NY", "country": "US", "calls": 2},
        {"city": "TORONTO", "state": "ON", "country": "CA", "calls": 1},
    ]
    assert (geo["unknown"], geo["total"]) == (0, 5)


def test_lead_quality_with_the_clients_thresholds(client: FlaskClient) -> None:
    # Decided calls' talk time: 200, 0 (A3), 90, 60, 0 (A6), 130; qualified from 100 s.
    lead = get(client, "/api/analytics/lead-quality", **RANGE)
    assert lead["buckets"] == [
        {"label": "under 30 s", "minSec": 0, "maxSec": 30, "calls": 2},
        {"label": "30 s - 2 min", "minSec": 30, "maxSec": 120, "calls": 2},
        {"label": "2 min and over", "minSec": 120, "maxSec": None, "calls": 2},
    ]
    assert (lead["calls"], lead["qualifiedLeads"], lead["qualifiedRate"]) == (6, 2, 0.3333)
    assert lead["thresholds"] == {"shortSec": 30, "longSec": 120, "qualifiedSec": 100}


def test_campaigns_with_conversions_cost_and_roi(client: FlaskClient) -> None:
    def convert(call_sid: str, **body: Any) -> Any:
        response = client.post(
            "/api/analytics/conversions", json={"callSid": call_sid, **body}, headers=AUTH
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    convert("A2", value=200)
    assert convert("A2", value=250)["value"] == 250.0  # a repeated POST replaces the value
    assert convert("A4")["value"] == 100.0  # acme's valuePerConversion
    convert("A1", value=50)  # before the range
    body = get(client, "/api/analytics/campaigns", **RANGE)
    rows = {row["campaign"]: row for row in body["campaigns"]}
    assert set(rows) == {"google", "facebook"}
    google, facebook = rows["google"], rows["facebook"]
    # google: A2, A4 and A5 (from the number), A6 (fallback, from the number), A7.
    assert (google["calls"], google["answered"], google["qualifiedLeads"]) == (5, 4, 2)
    assert (google["conversions"], google["value"], google["numbers"]) == (2, 350.0, 1)
    # Usage, whole minutes per leg at 0.0085 in, 0.013 out, 0.0025 recording:
    # A2 4 min in + 4 leg + 4 rec; A4 2+2+2; A5 1 out; A6 1 in; A7 3+3+3.
    usage = (4 + 2 + 1 + 3) * 0.0085 + (4 + 2 + 1 + 3) * 0.013 + (4 + 2 + 3) * 0.0025
    assert google["usageCost"] == pytest.approx(usage, abs=1e-4)
    months = 3 * 86400 / SECONDS_PER_MONTH  # the number's rent for the three days
    assert google["numberCost"] == pytest.approx(months, abs=1e-4)
    assert google["roi"] == pytest.approx(350 / (usage + months), rel=1e-3)
    assert (facebook["calls"], facebook["answered"], facebook["conversions"]) == (1, 0, 0)
    assert facebook["cost"] == pytest.approx(0.0085)  # A3's inbound minute
    assert facebook["roi"] == 0.0
    assert body["totals"]["calls"] == 6


def test_conversion_needs_a_value_when_the_client_has_no_default(client: FlaskClient) -> None:
    response = client.post("/api/analytics/conversions", json={"callSid": "Z1"}, headers=AUTH)
    assert response.status_code == 400
    for body in ({"callSid": "Z1", "value": -1}, {"callSid": "Z1", "value": "ten"}, {}):
        assert client.post("/api/analytics/conversions", json=body, headers=AUTH).status_code == 400
    missing = client.post(
        "/api/analytics/conversions", json={"callSid": "CAnone", "value": 1}, headers=AUTH
    )
    assert missing.status_code == 404


def test_missed_calls_list_says_who_was_followed_up(client: FlaskClient) -> None:
    calls = get(client, "/api/analytics/missed-calls", **RANGE)["calls"]
    assert [(c["callSid"], c["status"], c["followedUp"], c["followedUpAt"]) for c in calls] == [
        ("A6", "failed", False, None),
        ("A3", "no-answer", True, "2024-05-02T15:00:00.000Z"),  # B's answered call A4
    ]
    assert calls[0]["from"] == C and calls[0]["clientId"] == "acme"


def test_call_list_filters_by_campaign_and_min_duration(client: FlaskClient) -> None:
    def sids(**params: Any) -> list[str]:
        return [c["callSid"] for c in get(client, "/api/calls", **RANGE, **params)["calls"]]

    assert sids(campaign="google") == ["A7", "A6", "A5", "A4", "A2"]
    assert sids(campaign="facebook") == ["A3"]
    assert sids(minDuration="100") == ["A7", "A2"]
    assert sids(direction="outbound") == ["A5"]
    response = client.get(
        "/api/calls", query_string={**RANGE, "format": "csv", "minDuration": "100"}, headers=AUTH
    )
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert [row[0] for row in rows[1:]] == ["A7", "A2"]
    assert rows[1][rows[0].index("campaign")] == "google"
    assert client.get("/api/calls?minDuration=-5", headers=AUTH).status_code == 400


def test_bad_metric_parameters_are_400(client: FlaskClient) -> None:
    for path in (
        "/api/analytics/summary?tz=Mars/Olympus",
        "/api/analytics/timeseries?interval=week",
        "/api/analytics/timeseries?interval=hour&from=2020-01-01&to=2024-01-01",
        "/api/analytics/top-callers?limit=0",
    ):
        response = client.get(path, headers=AUTH)
        assert response.status_code == 400, path
        assert response.get_json()["error"]["code"] == "invalid_parameter"


METRIC_PATHS = (
    "/api/analytics/summary",
    "/api/analytics/timeseries",
    "/api/analytics/durations",
    "/api/analytics/peak-hours",
    "/api/analytics/top-callers",
    "/api/analytics/geography",
    "/api/analytics/lead-quality",
    "/api/analytics/campaigns",
    "/api/analytics/missed-calls",
    "/api/calls",
)


def test_a_client_key_sees_only_its_own_analytics(client: FlaskClient, keys: KeyService) -> None:
    mine = bearer(keys.issue(api_key("acme_test"), "acme"))
    theirs = bearer(keys.issue(api_key("zeta_test"), "zeta"))
    window = {"from": "2024-05-01", "to": "2024-05-03"}
    for path in METRIC_PATHS:
        # Without clientId a key is pinned to its own client...
        own = get(client, path, headers=mine, **window)
        admin = get(client, path, **window, clientId="acme")
        assert own == admin, path
        # ...and asking for another client's is 404, as if it did not exist.
        other = client.get(path, query_string={"clientId": "zeta"}, headers=mine)
        assert other.status_code == 404, path
    listed = get(client, "/api/calls", headers=mine)["calls"]
    assert {c["clientId"] for c in listed} == {"acme"} and len(listed) == 8
    assert [c["callSid"] for c in get(client, "/api/calls", headers=theirs)["calls"]] == ["Z1"]
    assert client.get("/api/calls/Z1", headers=mine).status_code == 404
    assert client.get("/api/calls/A2", headers=mine).status_code == 200
    assert client.get("/api/calls/A2", headers=theirs).status_code == 404
    foreign = client.post(
        "/api/analytics/conversions", json={"callSid": "Z1", "value": 5}, headers=mine
    )
    assert foreign.status_code == 404
    assert client.get("/api/analytics/summary", headers=bearer("sk_nobody")).status_code == 403
    assert client.get("/api/analytics/summary").status_code == 401


def test_the_hourly_aggregates_match_the_calls(
    client: FlaskClient, store: Store, ch_client: Any
) -> None:
    db = store.database
    hourly = ch_client.query(
        f"SELECT clientId, sum(calls), sum(completed), sum(missed), sum(durationSec) "
        f"FROM {db}.client_hourly GROUP BY clientId HAVING sum(calls) != 0 ORDER BY clientId"
    ).result_rows
    # acme: A0-A7 (8 calls; 6 completed, 2 missed; 10+40+200+90+60+130 s); zeta: Z1.
    assert [tuple(row) for row in hourly] == [("acme", 8, 6, 2, 530), ("zeta", 1, 1, 0, 50)]
