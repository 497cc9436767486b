"""A caller's erasure in analytics: every stored copy of the number becomes its token.

On `caller.erased` (router publishes it on the client-events topic) the
consumer remembers the token (`erased_callers`) and rewrites every table of
the database: each String column that holds the number gets the token in its
place, the raw events' payloads included. The rows stay, so counts and
durations are unchanged. The tables are found in system.columns rather than
listed here, so a table added later is rewritten too.

A replay (the call events read again, or re-published) must not bring the
number back: at ingest, before anything is stored or folded, every phone
number in an event whose token is in the erased set is replaced by the token
(`ErasedCallers.scrub`). Only the tokens are kept, never the numbers.

Retention per client lives here too (`expire_client_calls`): a client's
calls older than its `retentionDays`, and every call of a deleted client
once its `purgeAfter` has passed, are deleted from every table.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, jsonify, request

from services.analytics.audit import AuditEntry
from services.analytics.clients import ClientSettings
from services.analytics.store import Store
from switchboard.auth import authenticate
from switchboard.events import Event
from switchboard.http import ApiError
from switchboard.privacy import E164, TOKEN_PREFIX, caller_token

log = logging.getLogger(__name__)

ERASED_TYPE = "caller.erased"
_TOKEN_CHARS = frozenset("0123456789abcdef")
# Engines without rows of their own: views read other tables, Null drops what it is given.
_ROWLESS_ENGINES = ("View", "MaterializedView", "Null", "LiveView", "WindowView")


def _valid_token(token: str) -> bool:
    digest = token.removeprefix(TOKEN_PREFIX)
    return token.startswith(TOKEN_PREFIX) and len(digest) == 32 and set(digest) <= _TOKEN_CHARS


def _literal(value: str) -> str:
    """A checked number or token as an SQL string literal (they hold no quote or backslash)."""
    if not (E164.match(value) or _valid_token(value)):
        raise ValueError(f"not a number or token: {value!r}")
    return f"'{value}'"


class ErasedCallers:
    """The tokens of the erased callers, and the scrub that keeps their numbers out."""

    def __init__(self, secret: str, tokens: Sequence[str] = ()) -> None:
        self.secret = secret
        self._tokens = set(tokens)
        self._lock = threading.Lock()
        # Deleted clients already purged: their late events (a recording deleted by
        # the purge, say) must not bring a call of theirs back.
        self.purged_clients: frozenset[str] = frozenset()

    @classmethod
    def load(cls, store: Store, secret: str) -> ErasedCallers:
        rows = store.execute(f"SELECT DISTINCT token FROM {store.database}.erased_callers")
        erased = cls(secret, [row[0] for row in rows])
        erased.purged_clients = purged_clients(store.client_settings().values(), datetime.now(UTC))
        return erased

    def __contains__(self, token: object) -> bool:
        return token in self._tokens

    def __len__(self) -> int:
        return len(self._tokens)

    def apply(self, store: Store, event: Event) -> None:
        """Carry out one `caller.erased` event: remember the token, rewrite the stored number."""
        number = event.data.get("number")
        token = str(event.data["token"])
        if isinstance(number, str) and E164.match(number):
            own = caller_token(self.secret, number)
            if own != token:
                log.error(
                    "caller.erased carries another token than this service computes: "
                    "PRIVACY_TOKEN_SECRET differs from router's; using this service's"
                )
            token = own
            remember(store, token)
            rewritten = erase_number(store, number, token)
            log.info("caller erased from analytics", extra={"tables": rewritten})
            audit(
                store,
                str(event.data.get("requestedBy") or event.source),
                "caller.erased",
                "caller",
                token,
                None,
                {"tables": rewritten},
            )
        elif _valid_token(token):
            remember(store, token)  # the number-less version: nothing left to rewrite
        with self._lock:
            self._tokens.add(token)

    def scrub(
        self, events: Sequence[Event], payloads: Mapping[str, bytes] | None
    ) -> tuple[list[Event], Mapping[str, bytes] | None]:
        """The events (and their raw payloads) with every erased caller's number tokenized.

        Events of purged clients are left out altogether.
        """
        if self.purged_clients:
            events = [e for e in events if e.clientId not in self.purged_clients]
        if not self._tokens:
            return list(events), payloads
        scrubbed: list[Event] = []
        raw = dict(payloads) if payloads is not None else None
        for event in events:
            hits = self._erased_numbers(event.data)
            if not hits:
                scrubbed.append(event)
                continue
            scrubbed.append(dataclasses.replace(event, data=_replaced(event.data, hits)))
            if raw is not None and event.id in raw:
                value = raw[event.id]
                for number, token in hits.items():
                    value = value.replace(number.encode(), token.encode())
                raw[event.id] = value
        return scrubbed, raw

    def _erased_numbers(self, data: Any) -> dict[str, str]:
        hits: dict[str, str] = {}
        for value in _strings(data):
            if value not in hits and E164.match(value):
                token = caller_token(self.secret, value)
                if token in self._tokens:
                    hits[value] = token
        return hits


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def _replaced(value: Any, hits: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        for number, token in hits.items():
            value = value.replace(number, token)
        return value
    if isinstance(value, dict):
        return {key: _replaced(item, hits) for key, item in value.items()}
    if isinstance(value, list):
        return [_replaced(item, hits) for item in value]
    return value


def audit(
    store: Store,
    actor: str,
    action: str,
    target_type: str,
    target_id: str,
    client_id: str | None,
    details: dict[str, Any],
) -> None:
    """One row of analytics' audit log (the read audit's table) for this service's part."""
    now = datetime.now(UTC)
    entry = AuditEntry(
        int(time.time() * 1_000_000), now, actor, action, target_type, target_id, client_id, details
    )
    store.insert_audit([entry])


def remember(store: Store, token: str) -> None:
    store.execute(
        f"INSERT INTO {store.database}.erased_callers (token) VALUES ({_literal(token)})"
    )


def _string_columns(store: Store, *, rewritable: bool) -> dict[str, list[str]]:
    """Per table holding rows, its text columns (without the key columns when `rewritable`)."""
    keys = (
        "AND NOT c.is_in_sorting_key AND NOT c.is_in_primary_key AND NOT c.is_in_partition_key"
        if rewritable
        else ""
    )
    kinds = "(c.type LIKE '%String%' AND c.type NOT LIKE 'Array%')" if rewritable else "1"
    rows = store.execute(
        "SELECT c.table, c.name FROM system.columns c"
        " JOIN system.tables t ON t.database = c.database AND t.name = c.table"
        f" WHERE c.database = {{db:String}} AND t.engine NOT IN {_ROWLESS_ENGINES}"
        f" AND {kinds} {keys} ORDER BY c.table, c.position",
        {"db": store.database},
    )
    columns: dict[str, list[str]] = {}
    for table, name in rows:
        columns.setdefault(table, []).append(name)
    return columns


def erase_number(store: Store, number: str, token: str) -> list[str]:
    """Replace `number` by `token` in every text column of every table; the tables rewritten."""
    n, t = _literal(number), _literal(token)
    rewritten = []
    for table, columns in _string_columns(store, rewritable=True).items():
        if table == "erased_callers":
            continue
        sets = ", ".join(f"`{c}` = replaceAll(`{c}`, {n}, {t})" for c in columns)
        where = " OR ".join(f"position(`{c}`, {n}) > 0" for c in columns)
        found = store.execute(f"SELECT count() FROM {store.database}.`{table}` WHERE {where}")
        if not found or not found[0][0]:
            continue
        # Synchronous, so that the DELETE's follow-up reads see the rewritten rows.
        store.execute(
            f"ALTER TABLE {store.database}.`{table}` UPDATE {sets} WHERE {where}"
            " SETTINGS mutations_sync = 2"
        )
        rewritten.append(table)
    return rewritten


def find_text(store: Store, text: str) -> dict[str, int]:
    """Per table holding rows, how many rows hold `text` in any column (as text)."""
    found = {}
    for table, columns in _string_columns(store, rewritable=False).items():
        where = " OR ".join(f"position(toString(`{c}`), {{text:String}}) > 0" for c in columns)
        rows = store.execute(
            f"SELECT count() FROM {store.database}.`{table}` WHERE {where}", {"text": text}
        )
        found[table] = int(rows[0][0])
    return found


def privacy_api(store: Store, admin_token: str) -> Blueprint:
    """Admin-only: where a text (an erased number) is still stored, for audits and tests."""
    api = Blueprint("analytics_privacy", __name__)

    @api.get("/internal/privacy/search")
    def search() -> Response:
        if not authenticate(admin_token).is_admin:
            raise ApiError(403, "forbidden", "the admin token is required")
        text = request.args.get("text", "")
        if len(text) < 6:
            raise ApiError(400, "invalid_parameter", "text must be at least 6 characters")
        tables = find_text(store, text)
        return jsonify({"tables": tables, "total": sum(tables.values())})

    return api


# -- per-client retention and a deleted client's purge -------------------------------


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def client_cutoffs(settings: Iterable[ClientSettings], now: datetime) -> dict[str, datetime]:
    """Per client, the start time before which its calls go (pure).

    A deleted client whose purge is due loses every call (the cutoff is past
    any call); any other client with `retentionDays` loses the calls that
    started more than that many days ago. Clients without either keep all.
    """
    cutoffs = {}
    for s in settings:
        if s.deleted and s.purgeAfter is not None and _utc(s.purgeAfter) <= now:
            cutoffs[s.clientId] = _PAST_EVERY_CALL
        elif s.retentionDays:
            cutoffs[s.clientId] = now - timedelta(days=s.retentionDays)
    return cutoffs


_PAST_EVERY_CALL = datetime(2999, 12, 31, tzinfo=UTC)


def purged_clients(settings: Iterable[ClientSettings], now: datetime) -> frozenset[str]:
    """The deleted clients whose purge is due (pure)."""
    cutoffs = client_cutoffs(settings, now)
    return frozenset(c for c, before in cutoffs.items() if before == _PAST_EVERY_CALL)


def delete_client_calls(store: Store, client_id: str, before: datetime) -> int:
    """Delete the client's calls that started before `before`, from every table; how many.

    The raw events and conversions go by the calls' CallSids (call events
    carry no clientId of their own), then the facts and the views' targets.
    """
    db = store.database
    params = {"client": client_id, "before": int(before.timestamp() * 1000)}
    calls = (
        f"SELECT callSid FROM {db}.call_facts WHERE clientId = {{client:String}}"
        " AND startedAt < fromUnixTimestamp64Milli({before:Int64}, 'UTC')"
    )
    counted = store.execute(f"SELECT count(DISTINCT callSid) FROM ({calls})", params)
    found = int(counted[0][0]) if counted else 0
    if not found:
        return 0
    sync = "SETTINGS mutations_sync = 2"
    for table in ("events", "conversions"):
        store.execute(f"ALTER TABLE {db}.{table} DELETE WHERE callSid IN ({calls}) {sync}", params)
    store.execute(f"DELETE FROM {db}.call_state WHERE callSid IN ({calls})", params)
    by_start = (
        "clientId = {client:String}"
        " AND startedAt < fromUnixTimestamp64Milli({before:Int64}, 'UTC')"
    )
    store.execute(f"ALTER TABLE {db}.calls_by_client DELETE WHERE {by_start} {sync}", params)
    store.execute(
        f"ALTER TABLE {db}.client_hourly DELETE WHERE clientId = {{client:String}}"
        f" AND hour < toStartOfHour(fromUnixTimestamp64Milli({{before:Int64}}, 'UTC')) {sync}",
        params,
    )
    store.execute(f"ALTER TABLE {db}.call_facts DELETE WHERE {by_start} {sync}", params)
    return found


def expire_client_calls(
    store: Store, now: datetime, erased: ErasedCallers | None = None
) -> dict[str, int]:
    """One pass of per-client retention and due purges; calls deleted per client.

    `erased` learns which clients are purged, so that their later events are left out.
    """
    deleted = {}
    settings = list(store.client_settings().values())
    if erased is not None:
        erased.purged_clients = purged_clients(settings, now)
    for client_id, before in client_cutoffs(settings, now).items():
        count = delete_client_calls(store, client_id, before)
        if count:
            deleted[client_id] = count
            purge = before == _PAST_EVERY_CALL
            audit(
                store,
                "system:purge" if purge else "system:retention",
                "client.purged" if purge else "calls.expired",
                "client",
                client_id,
                client_id,
                {"calls": count, **({} if purge else {"startedBefore": before.isoformat()})},
            )
            log.info(
                "client's calls deleted (retention or purge)",
                extra={"clientId": client_id, "calls": count},
            )
    return deleted
