"""The pure side of the metrics: buckets in a time zone, zero-filling, attribution, ROI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.analytics import metrics
from services.analytics.campaigns import SECONDS_PER_MONTH, CampaignCalls, campaigns
from services.analytics.clients import ClientSettings, LeadThresholds, settings_from_event
from services.analytics.facts import fold_all
from services.analytics.numbers import (
    NumberAssignment,
    assignment_at,
    assignment_from_event,
    attribute,
)
from switchboard.http import ApiError
from tests.analytics import call_scripts as script

UTC_MAY = datetime(2024, 5, 1, tzinfo=UTC)


def test_day_buckets_are_local_days_of_the_zone() -> None:
    # 2024-05-01T00:00Z .. 2024-05-03T00:00Z is Apr 30 20:00 .. May 2 20:00 in New York.
    keys = metrics.bucket_keys(UTC_MAY, UTC_MAY + timedelta(days=2), "day", "America/New_York")
    assert keys == ["2024-04-30", "2024-05-01", "2024-05-02"]
    assert metrics.bucket_start("2024-05-01", "day", "America/New_York") == (
        "2024-05-01T00:00:00-04:00"
    )


def test_hour_buckets_cross_a_dst_change_without_gaps_or_repeats() -> None:
    # New York falls back on 2024-11-03: 01:00 local happens twice (EDT then EST).
    start = datetime(2024, 11, 3, 4, 0, tzinfo=UTC)  # 00:00 EDT
    keys = metrics.bucket_keys(start, start + timedelta(hours=4), "hour", "America/New_York")
    labels = [metrics.bucket_start(k, "hour", "America/New_York") for k in keys]
    assert labels == [
        "2024-11-03T00:00:00-04:00",
        "2024-11-03T01:00:00-04:00",
        "2024-11-03T01:00:00-05:00",
        "2024-11-03T02:00:00-05:00",
    ]


def test_hour_buckets_of_a_half_hour_zone_start_at_local_hours() -> None:
    keys = metrics.bucket_keys(UTC_MAY, UTC_MAY + timedelta(hours=2), "hour", "Asia/Kolkata")
    labels = [metrics.bucket_start(k, "hour", "Asia/Kolkata") for k in keys]
    assert labels == [
        "2024-05-01T05:00:00+05:30",
        "2024-05-01T06:00:00+05:30",
        "2024-05-01T07:00:00+05:30",
    ]


def test_month_buckets_and_the_point_limit() -> None:
    start = datetime(2023, 11, 15, tzinfo=UTC)
    keys = metrics.bucket_keys(start, datetime(2024, 2, 1, tzinfo=UTC), "month", "UTC")
    assert keys == ["2023-11-01", "2023-12-01", "2024-01-01"]
    with pytest.raises(ApiError) as raised:
        metrics.bucket_keys(start, start + timedelta(days=800), "hour", "UTC")
    assert raised.value.status == 400


def test_zero_filled_series_has_every_bucket_in_order() -> None:
    keys = ["2024-05-01", "2024-05-02", "2024-05-03"]
    found = {"2024-05-02": metrics.Point(total=3, completed=2, missed=1, answered=2)}
    points = metrics.zero_filled(keys, found, "day", "UTC")
    assert [p["total"] for p in points] == [0, 3, 0]
    assert points[1]["answerRate"] == pytest.approx(0.6667)
    assert points[0] == {
        "t": "2024-05-01T00:00:00+00:00",
        "total": 0,
        "inbound": 0,
        "outbound": 0,
        "completed": 0,
        "missed": 0,
        "answered": 0,
        "durationSec": 0,
        "answerRate": 0.0,
    }


def test_peak_hours_are_zero_filled_with_the_busiest_named() -> None:
    peaks = metrics.peak_hours({(3, 9): (4, 3), (5, 9): (1, 1), (5, 17): (2, 0)})
    assert len(peaks["hours"]) == 24 and len(peaks["grid"]) == 168
    assert peaks["hours"][9] == {"hour": 9, "calls": 5, "answered": 4}
    assert peaks["days"][2] == {"dayOfWeek": 3, "name": "Wednesday", "calls": 4}
    assert (peaks["peakHour"], peaks["peakDayOfWeek"]) == (9, 3)
    assert metrics.peak_hours({})["peakHour"] is None


def test_lead_buckets_are_labelled_from_the_thresholds() -> None:
    assert LeadThresholds(30, 120, 30).buckets() == [
        ("under 30 s", 0, 30),
        ("30 s - 2 min", 30, 120),
        ("2 min and over", 120, None),
    ]
    own = ClientSettings("c", leadShortSec=45, leadLongSec=300, leadQualifiedSec=60)
    assert own.thresholds(LeadThresholds()) == LeadThresholds(45, 300, 60)
    # A client's inconsistent bucket pair falls back to the defaults.
    wrong = ClientSettings("c", leadShortSec=300, leadLongSec=45)
    assert wrong.thresholds(LeadThresholds()) == LeadThresholds(30, 120, 30)


def test_settings_event_keeps_known_fields_and_drops_unusable_ones() -> None:
    # Values router's API would refuse, in the shape router publishes.
    event = script.with_data(
        script.settings_changed("c1", "Europe/Berlin"),
        valuePerConversion="125.50",
        leadThresholds={"shortSec": 20, "longSec": "x", "qualifiedSec": 90},
    )
    settings = settings_from_event(event)
    assert settings is not None
    assert (settings.timezone, settings.valuePerConversion) == ("Europe/Berlin", 125.5)
    assert (settings.leadShortSec, settings.leadLongSec, settings.leadQualifiedSec) == (
        20,
        None,
        90,
    )
    bad = settings_from_event(
        script.with_data(script.settings_changed("c1"), timezone="Mars/Olympus")
    )
    assert bad is not None and bad.timezone is None


def test_attribution_fills_only_what_routing_left_empty() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    period = assignment_from_event(
        script.number_assigned(script.TWILIO_NUMBER, "acme", "google", start)
    )
    assert period is not None
    fallback = fold_all(None, script.fallback_call("CA1", UTC_MAY))
    assert fallback is not None and fallback.clientId == ""
    attributed = attribute(fallback, period)
    assert (attributed.clientId, attributed.campaign, attributed.status) == (
        "acme",
        "google",
        "failed",
    )
    untagged = fold_all(None, script.answered_call("CA2", UTC_MAY, "acme", campaign=None))
    assert untagged is not None
    assert attribute(untagged, period).campaign == "google"
    # Router's own campaign and another client's period are never overridden.
    tagged = fold_all(None, script.answered_call("CA3", UTC_MAY, "acme", campaign="radio"))
    assert tagged is not None and attribute(tagged, period) == tagged
    other = fold_all(None, script.answered_call("CA4", UTC_MAY, "zeta", campaign=None))
    assert other is not None and attribute(other, period) == other
    unrouted = fold_all(None, script.unrouted_call("CA5", UTC_MAY))
    assert unrouted is not None and attribute(unrouted, period) == unrouted


def test_the_assignment_in_force_at_the_call_is_used() -> None:
    jan, mar, jun = (datetime(2024, m, 1, tzinfo=UTC) for m in (1, 3, 6))
    periods = [
        NumberAssignment("+1", jan, "old", "a", releasedAt=mar),
        NumberAssignment("+1", mar, "new", "b"),
    ]
    found = assignment_at(periods, "+1", datetime(2024, 2, 1, tzinfo=UTC))
    assert found is not None and found.clientId == "old"
    found = assignment_at(periods, "+1", jun)
    assert found is not None and found.clientId == "new"
    assert assignment_at(periods, "+1", datetime(2023, 1, 1, tzinfo=UTC)) is None
    assert assignment_at(periods, "+2", jun) is None


def test_campaign_cost_and_roi() -> None:
    start = datetime(2024, 5, 1, tzinfo=UTC)
    end = start + timedelta(seconds=SECONDS_PER_MONTH)  # one average month
    counted = [
        CampaignCalls(
            "acme",
            "google",
            calls=10,
            answered=8,
            qualifiedLeads=5,
            usageCost=0.5,
            conversions=2,
            value=300.0,
        ),
    ]
    numbers = [
        NumberAssignment("+1", datetime(2024, 1, 1, tzinfo=UTC), "acme", "google"),
        # assigned half of the range
        NumberAssignment("+2", start + timedelta(seconds=SECONDS_PER_MONTH / 2), "acme", "google"),
        # a campaign with a number and no calls is still listed
        NumberAssignment("+3", datetime(2024, 1, 1, tzinfo=UTC), "acme", "radio"),
        # released before the range: costs nothing here
        NumberAssignment(
            "+4",
            datetime(2024, 1, 1, tzinfo=UTC),
            "acme",
            "tv",
            releasedAt=datetime(2024, 2, 1, tzinfo=UTC),
        ),
    ]
    table = {c.campaign: c.to_json() for c in campaigns(counted, numbers, 1.0, start, end)}
    assert set(table) == {"google", "radio"}
    google = table["google"]
    assert google["numberCost"] == pytest.approx(1.5)
    assert google["cost"] == pytest.approx(2.0)
    assert google["roi"] == pytest.approx(150.0)
    assert (google["numbers"], google["conversions"], google["value"]) == (2, 2, 300.0)
    assert table["radio"]["calls"] == 0 and table["radio"]["roi"] == 0.0
