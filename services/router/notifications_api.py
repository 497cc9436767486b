"""GET / PUT /api/clients/<id>/notifications: a client's notification settings over HTTP.

The admin may read and set any client's settings, a client key only its own
client's (any other id answers 404 exactly like an id nobody has). A PUT
replaces the settings whole; the change, its audit entry and the
`client.settings-changed` event that carries the settings to the reporting
service commit in one transaction, and a refused body changes nothing. The
answer is the settings with every default filled in; GET of a client that
never set any shows them all off. A webhook's signing secret appears only in
the answer of the PUT that created it (a new webhook or a new URL); the audit
entry never holds it.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify

from services.router import facts
from services.router.audit import AuditRecord
from services.router.dialing import DialPolicy
from services.router.directory import parse_client_id
from services.router.management import Management, client_not_found
from services.router.notifications import Notifications, WebhookRules
from services.router.outbox import OutboxRelay
from services.router.store import Store
from switchboard.auth import Principal, authenticate
from switchboard.http import json_object
from switchboard.kafka import Topics

ACTION = "client.notifications-set"


class NotificationSettings:
    """The use cases: read a client's settings, replace them."""

    def __init__(
        self,
        store: Store,
        relay: OutboxRelay,
        topics: Topics,
        rules: WebhookRules,
        policy: DialPolicy,
    ) -> None:
        self._store = store
        self._relay = relay
        self._topics = topics
        self._rules = rules
        self._policy = policy

    def get(self, who: Principal, raw_id: str) -> Notifications:
        client_id = visible_id(who, raw_id)
        if self._store.get_client(client_id) is None:
            raise client_not_found(raw_id)
        return self._store.notifications(client_id) or Notifications()

    def put(self, who: Principal, raw_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Replace the settings; the answer, with the webhook's secret if it is new."""
        client_id = visible_id(who, raw_id)
        parsed = Notifications.parse(body, self._rules, self._policy)
        with self._store.transaction() as tx:
            client = tx.lock_client(client_id)
            if client is None:
                raise client_not_found(raw_id)
            current = tx.lock_notifications(client_id)
            settings, secret_issued = parsed.keeping_secret_of(current)
            tx.set_notifications(client_id, settings)
            tx.audit(
                who.name,
                AuditRecord(
                    ACTION,
                    "client",
                    client_id,
                    client_id,
                    {
                        "notifications": settings.to_json(),
                        "previous": current.to_json() if current else None,
                        "webhookSecretIssued": secret_issued,
                    },
                ),
            )
            tx.enqueue(
                self._topics.client_events,
                client_id,
                facts.client_settings_changed(client, settings),
            )
        self._relay.kick()
        return settings.to_json(with_secret=secret_issued)


def visible_id(who: Principal, raw_id: str) -> str:
    client_id = parse_client_id(raw_id)
    if client_id is None or not who.can_see(client_id):
        raise client_not_found(raw_id)
    return client_id


def notifications_api(
    settings: NotificationSettings, management: Management, admin_token: str
) -> Blueprint:
    api = Blueprint("router_notifications", __name__, url_prefix="/api/clients")

    @api.before_request
    def _authenticate() -> None:
        g.principal = authenticate(admin_token, management.principal_for_key)

    @api.get("/<client_id>/notifications")
    def get_notifications(client_id: str) -> Response:
        return jsonify(settings.get(g.principal, client_id).to_json())

    @api.put("/<client_id>/notifications")
    def put_notifications(client_id: str) -> Response:
        return jsonify(settings.put(g.principal, client_id, json_object()))

    return api
