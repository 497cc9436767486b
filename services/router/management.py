"""What the management API does: clients, numbers and the pool, keys, calls, audit.

Each use case checks who asks (`Principal`), validates the request, and then
makes its change, the audit entry and the events in one transaction, so a
failure at any point leaves nothing half-written. A client key sees only its
own client: any other client's id answers 404 exactly like an id nobody has,
and what only the admin may do (create or delete clients, move numbers in
and out of the pool, buy numbers, issue keys, read the audit log) is 403 for
client keys. After a commit, the routing table of this process is reloaded
at once when numbers changed (others follow the NOTIFY), and the outbox
relay is woken to publish the events.

Twilio is called outside transactions: a purchase is recorded in a
transaction of its own right after Twilio sold the number (and released
again if that fails), an outbound call is recorded after Twilio accepted it.
A number assigned, re-pointed or released asks, in its own transaction, for
its configuration at Twilio to be brought up to date; the Twilio sync
(twilio_sync.py) does that after the commit and until Twilio has accepted it.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from services.router import facts
from services.router.access import ApiKey, IssuedKey, could_be_key, issue_key, key_hash
from services.router.audit import AuditEntry, AuditQuery, AuditRecord
from services.router.dialing import DEFAULT_DAILY_OUTBOUND_CAP, DialPolicy
from services.router.directory import (
    Client,
    ClientSettings,
    NewAssignment,
    NumberAssignment,
    NumberChanges,
    OwnedNumber,
    iso_utc,
    parse_client_id,
)
from services.router.flows import Flow
from services.router.outbound import MakeCall, TwimlRequest
from services.router.outbox import OutboxRelay
from services.router.routing_table import RoutingTable
from services.router.store import NumberTaken, Store, Tx
from services.router.twilio_api import (
    AvailableNumber,
    OutboundCall,
    PurchasedNumber,
    TwilioGateway,
)
from services.router.twilio_sync import TwilioSync
from services.router.twiml import message_twiml
from services.router.webhooks import RECORDING_STATUS_PATH, STATUS_PATH, Deployment
from switchboard.auth import Principal
from switchboard.http import ApiError
from switchboard.kafka import Topics

log = logging.getLogger(__name__)
# Days between a client's deletion and the purge of its calls, recordings and reports.
DEFAULT_PURGE_GRACE_DAYS = 30


class Management:
    def __init__(
        self,
        store: Store,
        table: RoutingTable,
        relay: OutboxRelay,
        topics: Topics,
        deployment: Deployment,
        gateway: TwilioGateway | None,
        twilio_sync: TwilioSync | None = None,
        dial_policy: DialPolicy | None = None,
        daily_outbound_cap: int = DEFAULT_DAILY_OUTBOUND_CAP,
        purge_grace_days: int = DEFAULT_PURGE_GRACE_DAYS,
    ) -> None:
        self._purge_grace_days = purge_grace_days
        self._store = store
        self._table = table
        self._relay = relay
        self._topics = topics
        self._deployment = deployment
        self._gateway = gateway
        self._twilio_sync = twilio_sync
        self._dial_policy = dial_policy or DialPolicy()
        self._daily_outbound_cap = daily_outbound_cap

    # ---- who asks
    def principal_for_key(self, token: str) -> Principal | None:
        """The client principal of a live API key, or None."""
        if not could_be_key(token):
            return None
        owner = self._store.key_owner(key_hash(token))
        if owner is None:
            return None
        client_id, key_id = owner
        return Principal("client", client_id, key_id)

    # ---- clients
    def create_client(self, who: Principal, body: dict[str, Any]) -> Client:
        admin_only(who, "create clients")
        settings = ClientSettings.parse(body)
        self._dial_policy.check("forwardTo", settings.forward_to)
        with self._store.transaction() as tx:
            client = tx.insert_client(settings)
            tx.audit(
                who.name,
                AuditRecord(
                    "client.created",
                    "client",
                    client.id,
                    client.id,
                    {"settings": settings.to_json()},
                ),
            )
            self._client_changed(tx, client)
        self._committed()
        return client

    def clients(self, who: Principal) -> list[Client]:
        return self._store.list_clients(None if who.is_admin else who.client_id)

    def client(self, who: Principal, raw_id: str) -> Client:
        client = self._store.get_client(self._visible_id(who, raw_id))
        if client is None:
            raise client_not_found(raw_id)
        return client

    def update_client(
        self, who: Principal, raw_id: str, body: dict[str, Any], whole: bool
    ) -> Client:
        """PUT (`whole`: the body is the client) or PATCH (only the fields given change)."""
        client_id = self._visible_id(who, raw_id)
        if not whole and not body:
            raise ApiError(400, "invalid_body", "nothing to change: give at least one field")
        with self._store.transaction() as tx:
            current = tx.lock_client(client_id)
            if current is None:
                raise client_not_found(raw_id)
            settings = ClientSettings.parse(body) if whole else current.settings.patched(body)
            if "forwardTo" in body:
                self._dial_policy.check("forwardTo", settings.forward_to)
            settings = own_cap_kept(who, body, settings, current.settings)
            updated = tx.update_client(client_id, settings)
            tx.audit(
                who.name,
                AuditRecord(
                    "client.updated",
                    "client",
                    client_id,
                    client_id,
                    {
                        "changed": settings.changed_fields(current.settings),
                        "settings": settings.to_json(),
                    },
                ),
            )
            self._client_changed(tx, updated)
            # Numbers that follow the client's recording settings change with it,
            # and their call flows keep its time zone: their events say so too.
            for assignment in tx.assignments_of(client_id):
                tx.enqueue(
                    self._topics.number_events,
                    assignment.phone_number,
                    facts.number_assigned(assignment),
                )
            tx.notify_numbers_changed(client_id)
        self._committed(numbers_changed=True)
        return updated

    def delete_client(self, who: Principal, raw_id: str) -> datetime:
        """Delete a client: its numbers go back to the pool, its keys stop working.

        Its calls, recordings and reports are purged by their services once the
        grace period has passed (the moment returned, carried by the event).
        """
        admin_only(who, "delete clients")
        client_id = self._visible_id(who, raw_id)
        purge_after = datetime.now(UTC) + timedelta(days=self._purge_grace_days)
        with self._store.transaction() as tx:
            client = tx.lock_client(client_id)
            if client is None:
                raise client_not_found(raw_id)
            assignments = tx.assignments_of(client_id)
            released = [a.phone_number for a in assignments]
            for assignment in assignments:
                self._release(tx, who, assignment, reason="client deleted")
            tx.delete_client(client_id)
            tx.audit(
                who.name,
                AuditRecord(
                    "client.deleted",
                    "client",
                    client_id,
                    client_id,
                    {
                        "name": client.settings.name,
                        "releasedNumbers": released,
                        "purgeAfter": iso_utc(purge_after),
                    },
                ),
            )
            tx.enqueue(
                self._topics.client_events,
                client_id,
                facts.client_settings_changed(client, deleted=True, purge_after=purge_after),
            )
            tx.notify_numbers_changed(client_id)
        self._committed(numbers_changed=True)
        return purge_after

    # ---- numbers
    def numbers(self, who: Principal, raw_id: str) -> list[NumberAssignment]:
        client = self.client(who, raw_id)
        return self._store.list_numbers(client.id)

    def number(self, who: Principal, raw_id: str, phone_number: str) -> NumberAssignment:
        client = self.client(who, raw_id)
        found = self._store.get_number(client.id, phone_number)
        if found is None:
            raise number_not_found(phone_number)
        return found

    def assign_number(self, who: Principal, raw_id: str, body: dict[str, Any]) -> NumberAssignment:
        """Give a client a number: the one named, else one from the pool, else a new one."""
        admin_only(who, "assign numbers")
        client_id = self._visible_id(who, raw_id)
        new = NewAssignment.parse(body)
        self._dial_policy.check("forwardTo", new.forward_to)
        if new.phone_number is not None:
            assignment = self._assign(who, client_id, raw_id, new, new.phone_number, "given")
        else:
            assignment = self._assign(who, client_id, raw_id, new, None, "pool")
            if assignment is None:
                bought = self.purchase_number(who, new.area_code)
                assignment = self._assign(
                    who, client_id, raw_id, new, bought.phone_number, "purchased"
                )
        assert assignment is not None
        return assignment

    def update_number(
        self, who: Principal, raw_id: str, phone_number: str, body: dict[str, Any]
    ) -> NumberAssignment:
        client_id = self._visible_id(who, raw_id)
        changes = NumberChanges.parse(body)
        changes.check_against(phone_number)
        self._dial_policy.check("forwardTo", changes.values.get("forward_to"))
        with self._store.transaction() as tx:
            if tx.lock_client(client_id) is None:
                raise client_not_found(raw_id)
            if tx.lock_assignment(client_id, phone_number) is None:
                raise number_not_found(phone_number)
            updated = tx.update_assignment(client_id, phone_number, changes.values)
            if "forward_to" in changes.values:
                # Re-pointed: Twilio's fallback must dial the new phone too.
                tx.request_twilio_sync(phone_number)
            tx.audit(
                who.name,
                AuditRecord(
                    "number.updated",
                    "number",
                    phone_number,
                    client_id,
                    {"changed": sorted(body), "number": updated.to_json()},
                ),
            )
            tx.enqueue(self._topics.number_events, phone_number, facts.number_assigned(updated))
            tx.notify_numbers_changed(phone_number)
        self._committed(numbers_changed=True)
        return updated

    def release_number(self, who: Principal, raw_id: str, phone_number: str) -> None:
        """Take a number from its client and put it back in the pool; routing stops at once."""
        admin_only(who, "release numbers")
        client_id = self._visible_id(who, raw_id)
        with self._store.transaction() as tx:
            if tx.lock_client(client_id) is None:
                raise client_not_found(raw_id)
            assignment = tx.lock_assignment(client_id, phone_number)
            if assignment is None:
                raise number_not_found(phone_number)
            self._release(tx, who, assignment, reason="released")
        self._committed(numbers_changed=True)

    # ---- call flows
    def flow(self, who: Principal, phone_number: str) -> Flow | None:
        """A number's call flow (None: it has none); 404 unless `who` may see the number."""
        found = self._store.find_number(phone_number)
        if found is None or not who.can_see(found.client_id):
            raise number_not_found(phone_number)
        return found.flow

    def set_flow(self, who: Principal, phone_number: str, body: dict[str, Any]) -> Flow | None:
        """Replace a number's call flow (an empty one removes it); the next call follows it."""
        parsed = Flow.parse(body, phone_number, self._dial_policy)
        flow = None if parsed.is_empty else parsed
        with self._store.transaction() as tx:
            current = tx.lock_number(phone_number)
            if current is None or not who.can_see(current.client_id):
                raise number_not_found(phone_number)
            updated = tx.set_flow(phone_number, flow)
            tx.audit(
                who.name,
                AuditRecord(
                    "number.flow-set",
                    "number",
                    phone_number,
                    current.client_id,
                    {
                        "flow": flow.to_json() if flow else None,
                        "previous": current.flow.to_json() if current.flow else None,
                    },
                ),
            )
            tx.enqueue(self._topics.number_events, phone_number, facts.number_assigned(updated))
            tx.notify_numbers_changed(phone_number)
        self._committed(numbers_changed=True)
        return flow

    def owned_numbers(self, who: Principal, status: str | None) -> list[OwnedNumber]:
        admin_only(who, "list the numbers held")
        if status not in (None, "pooled", "assigned"):
            raise ApiError(400, "invalid_query", "status must be pooled or assigned")
        return self._store.owned_numbers(status)

    # ---- Twilio: buying numbers
    def available_numbers(
        self, who: Principal, area_code: str | None, limit: int
    ) -> list[AvailableNumber]:
        admin_only(who, "look for numbers to buy")
        return self._twilio().available_numbers(area_code, limit)

    def purchase_number(self, who: Principal, area_code: str | None) -> PurchasedNumber:
        """Buy a number pointed at this deployment; it enters the pool."""
        admin_only(who, "buy numbers")
        gateway = self._twilio()
        webhooks = self._deployment.pooled
        bought = gateway.purchase(area_code, webhooks)
        try:
            with self._store.transaction() as tx:
                tx.hold_number(bought.phone_number, bought.sid, bought.locality, bought.region)
                tx.twilio_configured(bought.phone_number, bought.sid, webhooks.to_json())
                tx.audit(
                    who.name,
                    AuditRecord(
                        "number.purchased",
                        "number",
                        bought.phone_number,
                        None,
                        {
                            "sid": bought.sid,
                            "areaCode": area_code,
                            "locality": bought.locality,
                            "region": bought.region,
                        },
                    ),
                )
        except Exception:
            # Not on our books means nobody would ever use or release it: give it back.
            log.exception(
                "recording purchased number %s failed; releasing it at Twilio", bought.phone_number
            )
            try:
                gateway.release(bought.sid)
            except ApiError:
                log.error(
                    "number %s (%s) is bought but not recorded: release it by hand",
                    bought.phone_number,
                    bought.sid,
                )
            raise
        return bought

    # ---- Twilio: outbound calls
    def make_call(self, who: Principal, body: dict[str, Any], request_id: str | None) -> str:
        """Place an outbound call from one of the client's numbers; its CallSid.

        The call is counted against the client's daily cap before Twilio is
        asked (and given back if Twilio does not place it), so concurrent
        requests cannot overshoot the cap.
        """
        call = MakeCall.parse(body)
        self._dial_policy.check("toNumber", call.to_number)
        client = self.client(who, call.client_id)
        main_number = self._deployment.main_number
        if call.from_number is None:
            if main_number is None:
                raise ApiError(
                    400,
                    "invalid_field",
                    "fromNumber is required (no TWILIO_PHONE_NUMBER is configured)",
                )
            call = replace(call, from_number=main_number)
        assert call.from_number is not None
        campaign: str | None = None
        if call.from_number != main_number:
            owned = self._store.get_number(client.id, call.from_number)
            if owned is None:
                raise ApiError(
                    404,
                    "number_not_found",
                    f"fromNumber {call.from_number} is not a number of this client",
                )
            campaign = owned.campaign
        gateway = self._twilio()
        day = self._count_outbound_call(who, client, call)
        recording = client.settings.recording_enabled
        try:
            call_sid = gateway.place_call(
                OutboundCall(
                    from_number=call.from_number,
                    to_number=call.to_number,
                    twiml_url=call.twiml_url(self._deployment.public_base_url),
                    status_callback=self._deployment.url(STATUS_PATH),
                    record=recording,
                    recording_status_callback=self._deployment.url(RECORDING_STATUS_PATH),
                )
            )
        except Exception:
            with self._store.transaction() as tx:
                tx.unreserve_outbound_call(client.id, day)
            raise
        event = facts.call_placed(
            call_sid,
            client.id,
            call.from_number,
            call.to_number,
            recording,
            campaign,
            request_id,
        )
        # The call is real now: whatever happens to its record, the caller
        # must learn its CallSid rather than retry and call the person twice.
        try:
            with self._store.transaction() as tx:
                tx.audit(
                    who.name,
                    AuditRecord(
                        "call.placed",
                        "call",
                        call_sid,
                        client.id,
                        {
                            "fromNumber": call.from_number,
                            "toNumber": call.to_number,
                            "recording": recording,
                        },
                    ),
                )
                tx.enqueue(self._topics.call_events, call_sid, event)
        except psycopg.Error:
            log.exception(
                "call %s placed but not recorded (no audit entry, no call.placed)", call_sid
            )
            return call_sid
        self._committed()
        return call_sid

    def _count_outbound_call(self, who: Principal, client: Client, call: MakeCall) -> date:
        """Count the call against today's cap; 429 (audited) when the cap is reached."""
        cap = client.settings.daily_outbound_cap
        if cap is None:
            cap = self._daily_outbound_cap
        with self._store.transaction() as tx:
            day = tx.reserve_outbound_call(client.id, cap)
            if day is None:
                tx.audit(
                    who.name,
                    AuditRecord(
                        "call.refused",
                        "client",
                        client.id,
                        client.id,
                        {
                            "reason": "outbound_cap_reached",
                            "dailyOutboundCap": cap,
                            "fromNumber": call.from_number,
                            "toNumber": call.to_number,
                        },
                    ),
                )
        if day is None:
            raise ApiError(
                429,
                "outbound_cap_reached",
                f"client {client.id} has placed its {cap} outbound calls for today (UTC);"
                " more can be placed tomorrow",
            )
        return day

    def twiml(self, args: dict[str, str]) -> str:
        """The TwiML of an outbound call placed by make_call."""
        wanted = TwimlRequest.parse(args)
        client = self._store.get_client(wanted.client_id)
        if client is None:
            raise client_not_found(wanted.client_id)
        settings = client.settings
        disclaimer = settings.recording_disclaimer if settings.recording_enabled else None
        return message_twiml(wanted.message, disclaimer)

    # ---- API keys
    def issue_key(self, who: Principal, raw_id: str, name: str | None) -> tuple[IssuedKey, ApiKey]:
        admin_only(who, "issue API keys")
        client_id = self._visible_id(who, raw_id)
        issued = issue_key()
        with self._store.transaction() as tx:
            if tx.lock_client(client_id) is None:
                raise client_not_found(raw_id)
            key = tx.insert_api_key(client_id, issued, name)
            tx.audit(
                who.name,
                AuditRecord(
                    "api-key.issued",
                    "api-key",
                    key.id,
                    client_id,
                    {"name": name, "hint": key.hint},
                ),
            )
        return issued, key

    def api_keys(self, who: Principal, raw_id: str) -> list[ApiKey]:
        admin_only(who, "list API keys")
        return self._store.list_api_keys(self.client(who, raw_id).id)

    def revoke_key(self, who: Principal, raw_id: str, raw_key_id: str) -> None:
        admin_only(who, "revoke API keys")
        client_id = self._visible_id(who, raw_id)
        key_id = parse_client_id(raw_key_id)
        with self._store.transaction() as tx:
            revoked = tx.revoke_api_key(client_id, key_id) if key_id else None
            if revoked is None:
                raise ApiError(404, "key_not_found", f"no live API key {raw_key_id!r}")
            tx.audit(
                who.name,
                AuditRecord(
                    "api-key.revoked",
                    "api-key",
                    revoked.id,
                    client_id,
                    {"hint": revoked.hint},
                ),
            )

    # ---- audit
    def audit_log(self, who: Principal, query: AuditQuery) -> list[AuditEntry]:
        admin_only(who, "read the audit log")
        return self._store.audit_entries(query)

    # ---- parts
    def _visible_id(self, who: Principal, raw_id: str) -> str:
        client_id = parse_client_id(raw_id)
        if client_id is None or not who.can_see(client_id):
            raise client_not_found(raw_id)
        return client_id

    def _twilio(self) -> TwilioGateway:
        if self._gateway is None:
            raise ApiError(
                503,
                "twilio_not_configured",
                "set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN to use Twilio",
            )
        return self._gateway

    def _assign(
        self,
        who: Principal,
        client_id: str,
        raw_id: str,
        new: NewAssignment,
        phone_number: str | None,
        source: str,
    ) -> NumberAssignment | None:
        """Assign `phone_number` (or the pool's next, None if the pool has none) in one go."""
        with self._store.transaction() as tx:
            client = tx.lock_client(client_id)
            if client is None:
                raise client_not_found(raw_id)
            if phone_number is None:
                phone_number = tx.take_from_pool(new.area_code)
                if phone_number is None:
                    return None
            forward_to = new.forward_to_for(client, phone_number)
            tx.hold_number(phone_number)
            try:
                assignment = tx.insert_assignment(
                    client_id,
                    phone_number,
                    forward_to,
                    new.record,
                    new.recording_disclaimer,
                    new.campaign,
                )
            except NumberTaken:
                raise ApiError(
                    409, "number_taken", f"{phone_number} is already assigned to a client"
                ) from None
            tx.audit(
                who.name,
                AuditRecord(
                    "number.assigned",
                    "number",
                    phone_number,
                    client_id,
                    {"source": source, "number": assignment.to_json()},
                ),
            )
            tx.enqueue(self._topics.number_events, phone_number, facts.number_assigned(assignment))
            tx.request_twilio_sync(phone_number)
            tx.notify_numbers_changed(phone_number)
        self._committed(numbers_changed=True)
        return assignment

    def _release(self, tx: Tx, who: Principal, assignment: NumberAssignment, reason: str) -> None:
        released_at = tx.release(assignment.phone_number)
        tx.audit(
            who.name,
            AuditRecord(
                "number.released",
                "number",
                assignment.phone_number,
                assignment.client_id,
                {"reason": reason, "campaign": assignment.campaign},
            ),
        )
        tx.enqueue(
            self._topics.number_events,
            assignment.phone_number,
            facts.number_released(assignment, released_at),
        )
        tx.request_twilio_sync(assignment.phone_number)
        tx.notify_numbers_changed(assignment.phone_number)

    def _client_changed(self, tx: Tx, client: Client) -> None:
        # The event carries the notification settings too: the newest one must hold them all.
        event = facts.client_settings_changed(client, tx.lock_notifications(client.id))
        tx.enqueue(self._topics.client_events, client.id, event)

    def _committed(self, numbers_changed: bool = False) -> None:
        if numbers_changed:
            # Other processes reload on the NOTIFY; this one must not wait for it.
            self._table.reload(self._store.all_assignments)
            if self._twilio_sync is not None:
                self._twilio_sync.kick()
        self._relay.kick()


def own_cap_kept(
    who: Principal, body: dict[str, Any], settings: ClientSettings, current: ClientSettings
) -> ClientSettings:
    """The settings with the client's daily outbound cap as only the admin may change it.

    The cap limits what a leaked client key can cost, so that key must not
    raise it, nor reset it by a PUT that leaves it out.
    """
    if who.is_admin or settings.daily_outbound_cap == current.daily_outbound_cap:
        return settings
    if "dailyOutboundCap" in body:
        raise ApiError(403, "forbidden", "only the admin may change dailyOutboundCap")
    return replace(settings, daily_outbound_cap=current.daily_outbound_cap)


def admin_only(who: Principal, doing: str) -> None:
    if not who.is_admin:
        raise ApiError(403, "forbidden", f"only the admin may {doing}")


def client_not_found(raw_id: str) -> ApiError:
    return ApiError(404, "client_not_found", f"no client with id {raw_id!r}")


def number_not_found(phone_number: str) -> ApiError:
    return ApiError(404, "number_not_found", f"no number {phone_number!r} for this client")
