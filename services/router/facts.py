"""The facts router publishes about clients, numbers and outbound calls (pure).

- `client.settings-changed` (client-events, keyed by clientId, compacted): a
  client's current settings after every create, update and delete, and after
  a change of its notification settings, which every such event carries
  (with the webhook's signing secret, for the reporting service), so the
  newest event of a client is all a consumer needs.
- `number.assigned` / `number.released` (number-events, keyed by the phone
  number, compacted): who owns a number from when, with its campaign, so
  calls can be attributed even where no `call.routed` exists, and its call
  flow, disclaimer and client time zone, so other services can learn how its
  calls are handled (ingress routes from them while router is down). Sent
  again for each of a client's numbers when the client's settings change.
- `call.placed` (call-events, keyed by CallSid): an outbound call this
  deployment asked Twilio to make for a client. Its id is derived from the
  CallSid, so a republished event is a duplicate for consumers.

Builders only: the store writes the events into its outbox together with
the change, and the outbox relay publishes them.
"""

from __future__ import annotations

from datetime import datetime

from services.router.directory import Client, NumberAssignment, iso_utc, money_json
from services.router.notifications import Notifications
from switchboard.events import Event, delivery_id

SOURCE = "router"


def client_settings_changed(
    client: Client,
    notifications: Notifications | None = None,
    deleted: bool = False,
    purge_after: datetime | None = None,
) -> Event:
    """`notifications` None: the client has none (alerts and reports off), as after deletion."""
    settings = client.settings
    if deleted or notifications is None:
        notifications = Notifications()
    return Event(
        type="client.settings-changed",
        source=SOURCE,
        clientId=client.id,
        data={
            "clientId": client.id,
            "recordingEnabled": settings.recording_enabled,
            "retentionDays": settings.retention_days,
            "deleteFromTwilio": settings.delete_from_twilio,
            "recordingDisclaimer": settings.recording_disclaimer,
            # Additive, for consumers that show or schedule per client.
            "name": settings.name,
            "timezone": settings.timezone,
            "deleted": deleted,
            # A deleted client's calls, recordings and reports are purged from then on.
            "purgeAfter": iso_utc(purge_after) if purge_after is not None else None,
            # What analytics reports with: the default value of a conversion
            # and the talk times of lead quality (null: analytics' defaults).
            "valuePerConversion": money_json(settings.value_per_conversion),
            "leadThresholds": (
                settings.lead_thresholds.to_json() if settings.lead_thresholds else None
            ),
            # Additive, for reporting: who hears of missed calls and gets reports,
            # with the webhook's signing secret (this topic is internal).
            "notifications": notifications.to_json(with_secret=True),
        },
    )


def number_assigned(assignment: NumberAssignment) -> Event:
    return Event(
        type="number.assigned",
        source=SOURCE,
        clientId=assignment.client_id,
        data={
            "phoneNumber": assignment.phone_number,
            "clientId": assignment.client_id,
            "campaign": assignment.campaign,
            "forwardTo": assignment.forward_to,
            "recording": assignment.record,
            "assignedAt": iso_utc(assignment.assigned_at),
            # Additive: the number's call flow as the API shows it, null without one.
            "flow": assignment.flow.to_json() if assignment.flow else None,
            # Additive, so that ingress can route the number as router does while
            # router is down: the disclaimer said before recording, and the client's
            # time zone, in which the flow keeps its business hours.
            "recordingDisclaimer": assignment.recording_disclaimer,
            "timezone": assignment.timezone,
        },
    )


def number_released(assignment: NumberAssignment, released_at: datetime) -> Event:
    return Event(
        type="number.released",
        source=SOURCE,
        clientId=assignment.client_id,
        data={
            "phoneNumber": assignment.phone_number,
            "clientId": assignment.client_id,
            "campaign": assignment.campaign,
            "assignedAt": iso_utc(assignment.assigned_at),
            "releasedAt": iso_utc(released_at),
        },
    )


def call_placed(
    call_sid: str,
    client_id: str,
    from_number: str,
    to_number: str,
    recording: bool,
    campaign: str | None,
    request_id: str | None = None,
) -> Event:
    return Event(
        type="call.placed",
        source=SOURCE,
        id=delivery_id("call.placed", {"CallSid": call_sid}),
        callSid=call_sid,
        clientId=client_id,
        requestId=request_id or None,
        data={
            "fromNumber": from_number,
            "toNumber": to_number,
            "clientId": client_id,
            "direction": "outbound",
            "recording": recording,
            "campaign": campaign,
        },
    )
