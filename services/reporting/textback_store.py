"""The text-back ledger in reporting's PostgreSQL: settings, every call weighed, opt-outs.

`claim` weighs a missed call and writes the result in one transaction,
under an advisory lock on (number, caller), so two missed calls from the
same caller never both pass the cooldown, and a call already weighed (the
CallSid is the idempotency key) is answered from its row, never weighed or
sent again. A claimed send is `sending` until Twilio's answer is recorded;
a process that dies in between leaves it so, and the text is never tried
again: a caller may miss a text, but never gets two. A 21610 refusal
records an opt-out, which every later call of that caller to that number
honours without asking Twilio. An erased caller's number becomes their
privacy token in every row; their opt-outs and last texts still count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from services.reporting.alerts import MissedCall, TextBackSetting
from services.reporting.sms import Refused, Sent
from services.reporting.textback_rules import Decision, History, Send, decide


@dataclass(frozen=True)
class CallRecord:
    """One weighed call as the ledger holds it."""

    call_sid: str
    phone_number: str
    caller: str
    client_id: str | None
    status: str
    reason: str | None
    body: str | None
    message_sid: str | None
    message_status: str | None
    sent_at: datetime | None
    error_code: int | None
    published: bool

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> CallRecord:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Claim:
    """What `claim` found: a fresh decision, or the record of an earlier one."""

    decision: Decision | None
    earlier: CallRecord | None = None


CALL_COLUMNS = ", ".join(CallRecord.__dataclass_fields__)
SETTING = "SELECT message, cooldown_hours FROM reporting.textback_numbers WHERE phone_number = %s"
OPTED_OUT = "SELECT 1 FROM reporting.textback_opt_outs WHERE phone_number = %s AND caller = ANY(%s)"


class TextBackStore:
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def apply_number(
        self,
        phone_number: str,
        client_id: str | None,
        setting: TextBackSetting | None,
        changed_at: datetime,
    ) -> None:
        """A number's text-back from its latest event (None: none, or released); newest wins."""
        with self._pool.connection() as conn:
            conn.execute(
                """
                INSERT INTO reporting.textback_numbers AS n
                    (phone_number, client_id, message, cooldown_hours, changed_at)
                VALUES (%s, %s, %s, %s, %s)
                ON CONFLICT (phone_number) DO UPDATE SET
                    client_id = excluded.client_id, message = excluded.message,
                    cooldown_hours = excluded.cooldown_hours, changed_at = excluded.changed_at
                WHERE n.changed_at <= excluded.changed_at
                """,
                (
                    phone_number,
                    client_id,
                    setting.message if setting else None,
                    setting.cooldown_hours if setting else None,
                    changed_at,
                ),
            )

    def claim(self, call: MissedCall, now: datetime, max_age: timedelta, token: str) -> Claim:
        """Weigh `call` and write the decision, unless the call was weighed before.

        The text-back is the one the call was routed with, as its alert carries
        it, so a number's change applies from the next call on however far
        behind the number events are.

        `token` is the caller's privacy token: after an erasure the caller's
        opt-out and last text are held under it, and still count.
        """
        callers = [call.caller_number, token]
        with self._pool.connection() as conn, conn.transaction():
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                (f"textback\n{call.called_number}\n{call.caller_number}",),
            )
            earlier = self._call(conn, call.call_sid)
            if earlier is not None:
                return Claim(None, earlier)
            setting = call.text_back if call.carries_text_back else self._setting(conn, call)
            opt_out = conn.execute(OPTED_OUT, (call.called_number, callers)).fetchone()
            last = conn.execute(
                """
                SELECT max(decided_at) FROM reporting.textback_calls
                WHERE phone_number = %s AND caller = ANY(%s) AND status IN ('sending', 'sent')
                """,
                (call.called_number, callers),
            ).fetchone()
            history = History(opt_out is not None, last[0] if last else None)
            decision = decide(call, setting, history, now, max_age)
            sending = isinstance(decision, Send)
            conn.execute(
                """
                INSERT INTO reporting.textback_calls
                    (call_sid, phone_number, caller, client_id, decided_at, status, reason, body)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
                """,
                (
                    call.call_sid,
                    call.called_number,
                    call.caller_number,
                    call.client_id,
                    now,
                    "sending" if sending else "skipped",
                    None if isinstance(decision, Send) else decision.reason,
                    decision.body if isinstance(decision, Send) else None,
                ),
            )
        return Claim(decision)

    def _setting(self, conn: Any, call: MissedCall) -> TextBackSetting | None:
        """The number's text-back as its latest event set it (for alerts that carry none)."""
        row = conn.execute(SETTING, (call.called_number,)).fetchone()
        return TextBackSetting(row[0], row[1]) if row and row[0] is not None else None

    def record_sent(self, call_sid: str, sent: Sent, sent_at: datetime) -> CallRecord:
        with self._pool.connection() as conn:
            row = (
                conn.cursor(row_factory=dict_row)
                .execute(
                    f"""
                UPDATE reporting.textback_calls
                SET status = 'sent', message_sid = %s, message_status = %s, sent_at = %s
                WHERE call_sid = %s
                RETURNING {CALL_COLUMNS}
                """,
                    (sent.message_sid, sent.status, sent_at, call_sid),
                )
                .fetchone()
            )
        if row is None:
            raise LookupError(f"no text-back claimed for call {call_sid}")
        return CallRecord.from_row(row)

    def record_refused(self, call: MissedCall, refused: Refused, now: datetime) -> None:
        """Twilio refused the text; a 21610 makes the caller opted out of this number."""
        with self._pool.connection() as conn, conn.transaction():
            conn.execute(
                """
                UPDATE reporting.textback_calls SET status = 'refused', reason = %s, error_code = %s
                WHERE call_sid = %s
                """,
                (refused.reason, refused.code, call.call_sid),
            )
            if refused.unsubscribed:
                conn.execute(
                    """
                    INSERT INTO reporting.textback_opt_outs
                        (phone_number, caller, opted_out_at, call_sid)
                    VALUES (%s, %s, %s, %s)
                    ON CONFLICT (phone_number, caller) DO NOTHING
                    """,
                    (call.called_number, call.caller_number, now, call.call_sid),
                )

    def record_failed(self, call_sid: str, reason: str) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "UPDATE reporting.textback_calls SET status = 'failed', reason = %s"
                " WHERE call_sid = %s",
                (reason, call_sid),
            )

    def mark_published(self, call_sid: str) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "UPDATE reporting.textback_calls SET published = true WHERE call_sid = %s",
                (call_sid,),
            )

    def unpublished(self, limit: int = 100) -> list[CallRecord]:
        """Texts sent whose sms.sent is not yet known to be on Kafka, oldest first."""
        with self._pool.connection() as conn:
            rows = conn.cursor(row_factory=dict_row).execute(
                f"""
                SELECT {CALL_COLUMNS} FROM reporting.textback_calls
                WHERE status = 'sent' AND NOT published ORDER BY sent_at LIMIT %s
                """,
                (limit,),
            )
            return [CallRecord.from_row(row) for row in rows]

    def call(self, call_sid: str) -> CallRecord | None:
        with self._pool.connection() as conn:
            return self._call(conn, call_sid)

    def opted_out(self, phone_number: str, caller: str) -> bool:
        with self._pool.connection() as conn:
            row = conn.execute(OPTED_OUT, (phone_number, [caller])).fetchone()
        return row is not None

    def erase_caller(self, number: str, token: str) -> None:
        """An erased caller's number becomes their token in every row (caller.erased)."""
        with self._pool.connection() as conn, conn.transaction():
            conn.execute(
                "UPDATE reporting.textback_calls SET caller = %s WHERE caller = %s",
                (token, number),
            )
            conn.execute(
                """
                INSERT INTO reporting.textback_opt_outs
                    (phone_number, caller, opted_out_at, call_sid)
                SELECT phone_number, %s, opted_out_at, call_sid
                FROM reporting.textback_opt_outs WHERE caller = %s
                ON CONFLICT (phone_number, caller) DO NOTHING
                """,
                (token, number),
            )
            conn.execute("DELETE FROM reporting.textback_opt_outs WHERE caller = %s", (number,))

    @staticmethod
    def _call(conn: Any, call_sid: str) -> CallRecord | None:
        row = (
            conn.cursor(row_factory=dict_row)
            .execute(
                f"SELECT {CALL_COLUMNS} FROM reporting.textback_calls WHERE call_sid = %s",
                (call_sid,),
            )
            .fetchone()
        )
        return CallRecord.from_row(row) if row else None
