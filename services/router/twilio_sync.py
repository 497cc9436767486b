"""Keeping each number's configuration at Twilio in step with who holds it.

Whenever a number is bought, assigned, re-pointed or released, Twilio must
learn where its calls go: Voice URL and status callback at this deployment,
and a Voice Fallback URL that still reaches the client's phone (the Forward
twimlet) when the deployment is down, or says "not in service" for a number
in the pool (webhooks.py).

Reliability works like the event outbox. The change that makes a number's
configuration stale writes a request into `twilio_sync` in its own
transaction, so a committed change is never without its pending sync, and a
Twilio outage costs time, never the update. `TwilioSync` is the daemon thread
that works the requests off: woken at once by `kick()` after a commit in this
process, and every `interval` seconds anyway (for other processes' changes
and for retries). A request carries no payload: the sync reads what the
number should be at the moment it pushes, so retries and reordering can never
put an older configuration back. Only one process syncs at a time (a
PostgreSQL advisory lock), a request is removed only if nothing renewed it
while Twilio was being asked, and a failure is retried with exponential
backoff (its reason is shown in GET /api/twilio/numbers). A number held
without a known sid (assigned by phoneNumber: the business already owned it)
is looked up in the account by its phone number first; a sid Twilio no
longer knows is looked up again.

At start-up (before the app serves), `reconcile()` compares what Twilio last accepted for every
number with what it should be now and requests a sync where they differ: a
new public URL or pool fallback reaches every number after a restart.
"""

from __future__ import annotations

import logging
import threading
from typing import Literal

import psycopg

from services.router.directory import SyncTarget
from services.router.store import Store, SyncTurn
from services.router.twilio_api import NumberNotAtTwilio, TwilioGateway
from services.router.webhooks import Deployment
from switchboard.http import ApiError

log = logging.getLogger(__name__)

BATCH = 50
Outcome = Literal["synced", "failed", "unreachable"]
FIRST_RETRY_SECONDS = 2.0
_MAX_LOOP_RETRY_SECONDS = 10.0


def retry_delay(attempts: int, ceiling: float) -> float:
    """Seconds before the next try after `attempts` failures: 2, 4, 8... up to `ceiling`."""
    return float(min(ceiling, FIRST_RETRY_SECONDS * 2 ** min(max(attempts, 0), 20)))


class TwilioSync:
    def __init__(
        self,
        store: Store,
        gateway: TwilioGateway,
        deployment: Deployment,
        interval: float = 5.0,
        max_backoff: float = 600.0,
    ) -> None:
        self._store = store
        self._gateway = gateway
        self._deployment = deployment
        self._interval = interval
        self._max_backoff = max_backoff
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._reconciled = False
        self._thread = threading.Thread(target=self._run, name="twilio-sync", daemon=True)

    def start(self) -> None:
        """Reconcile now (the thread retries if the database is down), then sync in the back."""
        try:
            self.reconcile()
            self._reconciled = True
        except psycopg.Error as err:
            log.warning("Twilio sync: reconcile postponed, database unavailable: %s", err)
        self._thread.start()

    def kick(self) -> None:
        """A number changed: sync now rather than at the next tick."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def reconcile(self) -> int:
        """Request a sync for every number whose configuration at Twilio is not current."""
        stale = [
            state.phone_number
            for state in self._store.twilio_config_states()
            if not state.pending
            and state.applied != self._deployment.webhooks_for(state.forward_to).to_json()
        ]
        if stale:
            self._store.request_twilio_sync(stale)
            log.info("Twilio configuration of %d number(s) to be brought up to date", len(stale))
        return len(stale)

    def sync_due(self) -> int:
        """Sync every number that is due now; how many Twilio accepted."""
        synced = 0
        with self._store.twilio_sync_turn() as turn:
            if turn is None:
                return 0  # another process is syncing; it will see these too
            while not self._stop.is_set():
                targets = turn.due(BATCH)
                for target in targets:
                    if self._stop.is_set():
                        break
                    outcome = self._sync(turn, target)
                    if outcome == "unreachable":
                        # The others would only wait for the same timeout: next tick.
                        return synced
                    synced += outcome == "synced"
                if len(targets) < BATCH:
                    break
        return synced

    def _sync(self, turn: SyncTurn, target: SyncTarget) -> Outcome:
        webhooks = self._deployment.webhooks_for(target.forward_to)
        sid = target.twilio_sid
        try:
            if sid is None:
                sid = self._gateway.find_number(target.phone_number)
            if sid is not None:
                try:
                    self._gateway.configure_number(sid, webhooks)
                except NumberNotAtTwilio:
                    # A sid the account no longer knows: the number may be there anew.
                    sid = self._gateway.find_number(target.phone_number)
                    if sid is not None:
                        self._gateway.configure_number(sid, webhooks)
        except ApiError as err:
            self._failed(turn, target, err.message)
            return "unreachable" if err.code == "twilio_unreachable" else "failed"
        except NumberNotAtTwilio as err:
            self._failed(turn, target, f"Twilio has no number with sid {err}")
            return "failed"
        except Exception as err:
            log.exception("Twilio sync of %s failed", target.phone_number)
            self._failed(turn, target, f"{type(err).__name__}: {err}")
            return "failed"
        if sid is None:
            self._failed(
                turn,
                target,
                "the Twilio account does not hold this number",
                forget_sid=target.twilio_sid is not None,
            )
            return "failed"
        turn.synced(target, sid, webhooks.to_json())
        log.info(
            "Twilio configuration of %s synced: fallback %s",
            target.phone_number,
            webhooks.voice_fallback_url or "(none)",
        )
        return "synced"

    def _failed(
        self, turn: SyncTurn, target: SyncTarget, reason: str, forget_sid: bool = False
    ) -> None:
        delay = retry_delay(target.attempts, self._max_backoff)
        log.warning(
            "Twilio configuration of %s not synced (attempt %d), retry in %.0fs: %s",
            target.phone_number,
            target.attempts + 1,
            delay,
            reason,
        )
        turn.failed(target, reason, delay, forget_sid)

    def _run(self) -> None:
        retry = 1.0
        while not self._stop.is_set():
            try:
                if not self._reconciled:
                    self.reconcile()
                    self._reconciled = True
                self.sync_due()
                retry = 1.0
            except Exception as err:
                # A sync thread that dies leaves Twilio stale in silence: never let it.
                if isinstance(err, psycopg.Error):
                    log.warning("Twilio sync: database unavailable, retry in %.0fs: %s", retry, err)
                else:
                    log.exception("Twilio sync failed, retry in %.0fs", retry)
                self._stop.wait(retry)
                retry = min(retry * 2, _MAX_LOOP_RETRY_SECONDS)
                continue
            self._wake.wait(self._interval)
            self._wake.clear()
