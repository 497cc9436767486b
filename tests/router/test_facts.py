"""The events router publishes about clients, numbers and outbound calls (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from services.router import facts
from services.router.directory import Client, ClientSettings, NumberAssignment
from switchboard import events

CLIENT = "0b6f7d1c-3a55-4f0a-9a39-4d7b8e1f2a10"
MOMENT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ASSIGNMENT = NumberAssignment("+14155550100", CLIENT, "+14155559999", True, None, "mailer", MOMENT)


def test_client_settings_changed_matches_the_shared_schema() -> None:
    client = Client(CLIENT, ClientSettings("Acme", retention_days=30), MOMENT, MOMENT)
    event = facts.client_settings_changed(client).to_dict()
    events.validate(event)
    assert event["clientId"] == CLIENT
    assert event["data"] == {
        "clientId": CLIENT,
        "recordingEnabled": True,
        "retentionDays": 30,
        "deleteFromTwilio": False,
        "recordingDisclaimer": ClientSettings("x").recording_disclaimer,
        "name": "Acme",
        "timezone": "UTC",
        "deleted": False,
        "purgeAfter": None,
        "valuePerConversion": None,
        "leadThresholds": None,
        "notifications": {
            "missedCall": {"email": [], "sms": [], "webhook": None, "quietHours": None},
            "reports": {"weekly": False, "monthly": False, "email": []},
        },
    }
    deleted = facts.client_settings_changed(client, deleted=True, purge_after=MOMENT).to_dict()
    events.validate(deleted)
    assert deleted["data"]["deleted"] is True
    assert deleted["data"]["purgeAfter"] == "2025-03-01T12:00:00.000Z"


def test_client_settings_changed_carries_what_analytics_reports_with() -> None:
    settings = ClientSettings.parse(
        {
            "name": "Acme",
            "valuePerConversion": 125.5,
            "leadThresholds": {"shortSec": 10, "longSec": 90, "qualifiedSec": 60},
        }
    )
    event = facts.client_settings_changed(Client(CLIENT, settings, MOMENT, MOMENT)).to_dict()
    events.validate(event)
    assert event["data"]["valuePerConversion"] == 125.5
    assert event["data"]["leadThresholds"] == {"shortSec": 10, "longSec": 90, "qualifiedSec": 60}


def test_number_events_say_who_owns_the_number_with_which_campaign() -> None:
    assigned = facts.number_assigned(ASSIGNMENT).to_dict()
    events.validate(assigned)
    assert assigned["data"] == {
        "phoneNumber": "+14155550100",
        "clientId": CLIENT,
        "campaign": "mailer",
        "forwardTo": "+14155559999",
        "recording": True,
        "assignedAt": "2025-03-01T12:00:00.000Z",
        "flow": None,
        "recordingDisclaimer": None,
        "timezone": "UTC",
    }
    released = facts.number_released(ASSIGNMENT, datetime(2025, 4, 1, tzinfo=UTC)).to_dict()
    events.validate(released)
    assert released["data"]["releasedAt"] == "2025-04-01T00:00:00.000Z"
    assert released["clientId"] == CLIENT


def test_call_placed_is_keyed_and_identified_by_its_call_sid() -> None:
    first = facts.call_placed("CA1", CLIENT, "+14155550100", "+14155559999", True, "mailer")
    again = facts.call_placed("CA1", CLIENT, "+14155550100", "+14155559999", True, "mailer")
    events.validate(first.to_dict())
    assert first.id == again.id
    assert first.callSid == "CA1"
    assert first.data == {
        "fromNumber": "+14155550100",
        "toNumber": "+14155559999",
        "clientId": CLIENT,
        "direction": "outbound",
        "recording": True,
        "campaign": "mailer",
    }
