"""Simulated calls: played through the Twilio simulator, then looked up in analytics.

`Simulator` speaks the simulator's control API (own a number, place a call,
read a call's log). `Dialer` places calls at a steady pace from a thread of
its own, so the caller's thread is free to break things meanwhile. `Played`
is one call as the simulator played it, and what analytics must therefore
show for it; `Analytics` reads the call list and summary through the edge;
`count` compares the two into a `Count` (sent, counted, duplicated, wrong).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests

from devstack.processes import wait_until

# What a caller's call does, in turn: most are answered, some missed.
OUTCOME_CYCLE = (
    "completed",
    "completed",
    "no-answer",
    "completed",
    "busy",
    "completed",
    "completed",
    "no-answer",
    "completed",
    "completed",
)
FORWARD_TO = "+14155559999"


@dataclass(frozen=True)
class PlannedCall:
    caller: str
    to: str
    outcome: str
    talk_seconds: int
    ring_seconds: int

    def request(self) -> dict[str, Any]:
        return {
            "from": self.caller,
            "to": self.to,
            "outcome": self.outcome,
            "talkSeconds": self.talk_seconds if self.outcome == "completed" else 0,
            "ringSeconds": self.ring_seconds,
        }


def plan_calls(count: int, numbers: Sequence[str]) -> list[PlannedCall]:
    """`count` calls spread over `numbers`, with a fixed mix of outcomes and talk times."""
    return [
        PlannedCall(
            caller=f"+1212555{i % 10000:04d}",
            to=numbers[i % len(numbers)],
            outcome=OUTCOME_CYCLE[i % len(OUTCOME_CYCLE)],
            talk_seconds=5 + (i * 37) % 600,
            ring_seconds=2 + i % 15,
        )
        for i in range(count)
    ]


def parse_time(value: str) -> float:
    """An ISO 8601 UTC time from the simulator as a Unix timestamp."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@dataclass
class Played:
    """One call the simulator played: its log, and what analytics must show for it."""

    call_sid: str
    planned: PlannedCall
    placed_at: float
    log: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.log.get("state") == "finished"

    @property
    def callbacks(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.log.get("callbacks", [])
        return found

    @property
    def failed_webhooks(self) -> list[dict[str, Any]]:
        """Requests to us that did not get a 2xx (Twilio would retry or fall back)."""
        return [cb for cb in self.callbacks if not 200 <= (cb.get("status") or 0) < 300]

    @property
    def forwarded(self) -> bool:
        """Router's TwiML dialled the client (not ingress's apology)."""
        return any(
            cb["kind"] == "voice" and "<Dial" in cb.get("response", "") for cb in self.callbacks
        )

    @property
    def fallback_served(self) -> bool:
        """Ingress answered with its apology because router did not answer."""
        return (
            not self.forwarded
            and not self.unassigned
            and any(
                cb["kind"] == "voice" and 200 <= (cb.get("status") or 0) < 300
                for cb in self.callbacks
            )
        )

    @property
    def unassigned(self) -> bool:
        """Router answered that the number is not in service (nobody owns it yet)."""
        return any(
            cb["kind"] == "voice" and "not in service" in cb.get("response", "")
            for cb in self.callbacks
        )

    def expected(self) -> tuple[str, int, bool]:
        """(status, durationSec, recorded) that analytics must end with for this call."""
        if self.unassigned:
            return "unrouted", 0, False
        if not self.forwarded:
            return "failed", 0, False  # ingress's apology: router did not answer
        outcome = self.planned.outcome
        if outcome == "completed":
            return "completed", self.planned.talk_seconds, True
        return outcome, 0, False

    def decided_at(self) -> float:
        """When the webhook that settles the call's visible fact was sent (Unix time).

        The <Dial> result decides status and talk time, the recording
        callback the recorded flag; the parent's last status changes nothing
        that the call list shows.
        """
        kinds = ("dial-action", "recording-status") if self.forwarded else ("voice",)
        times = [parse_time(cb["sentAt"]) for cb in self.callbacks if cb["kind"] in kinds]
        if not times:
            return parse_time(self.callbacks[-1]["sentAt"]) if self.callbacks else self.placed_at
        return max(times)

    def matches(self, fact: dict[str, Any], client_id: str) -> str | None:
        """None when analytics' fact is what was played, else what differs."""
        status, duration, recorded = self.expected()
        # A call to an assigned number is the client's even when router did not
        # answer (analytics attributes it from the number's assignment).
        want_client = None if self.unassigned else client_id
        want_forward = FORWARD_TO if self.forwarded else None
        got = (fact.get("status"), fact.get("durationSec"), fact.get("recorded"))
        problems = []
        if got != (status, duration, recorded):
            problems.append(f"status/duration/recorded {got} != {(status, duration, recorded)}")
        if (fact.get("clientId") or None) != want_client:
            problems.append(f"clientId {fact.get('clientId')!r} != {want_client!r}")
        if (fact.get("forwardedTo") or None) != want_forward:
            problems.append(f"forwardedTo {fact.get('forwardedTo')!r} != {want_forward!r}")
        return "; ".join(problems) or None


class Simulator:
    """The simulator's control API (/sim/...)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._local = threading.local()

    @property
    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
        return session

    def own_number(self, phone_number: str, public_base: str) -> None:
        reply = self._session.post(
            f"{self.base_url}/sim/numbers",
            json={
                "phoneNumber": phone_number,
                "voiceUrl": f"{public_base}/api/twilio/webhook",
                "statusCallback": f"{public_base}/api/twilio/status",
            },
            timeout=10,
        )
        if reply.status_code not in (200, 201):
            raise RuntimeError(f"simulator refused number {phone_number}: {reply.text}")

    def place(self, call: PlannedCall) -> str:
        reply = self._session.post(f"{self.base_url}/sim/calls", json=call.request(), timeout=10)
        if reply.status_code != 202:
            raise RuntimeError(f"simulator refused call: {reply.status_code} {reply.text}")
        sid: str = reply.json()["callSid"]
        return sid

    def states(self) -> dict[str, str]:
        reply = self._session.get(f"{self.base_url}/sim/calls", timeout=30)
        reply.raise_for_status()
        return {play["callSid"]: play["state"] for play in reply.json()["calls"]}

    def log(self, call_sid: str) -> dict[str, Any]:
        reply = self._session.get(f"{self.base_url}/sim/calls/{call_sid}", timeout=30)
        reply.raise_for_status()
        body: dict[str, Any] = reply.json()
        return body

    def wait_answered(self, played: Sequence[Played], timeout: float) -> None:
        """Wait until each call's voice webhook has been answered (whatever the answer).

        A call is placed before the simulator sends its webhook, so a fault
        started right after a call was placed may still catch that webhook.
        """
        waiting = list(played)

        def all_answered() -> bool:
            nonlocal waiting
            waiting = [p for p in waiting if not self._voice_answered(p.call_sid)]
            return not waiting

        wait_until(all_answered, timeout=timeout, message="every voice webhook answered")

    def _voice_answered(self, call_sid: str) -> bool:
        return any(cb["kind"] == "voice" for cb in self.log(call_sid).get("callbacks", []))

    def finish(self, played: Sequence[Played], timeout: float) -> None:
        """Wait until every call has finished playing, then read each one's log."""
        wanted = {p.call_sid for p in played}

        def all_finished() -> bool:
            states = self.states()
            return all(states.get(sid) == "finished" for sid in wanted)

        wait_until(all_finished, timeout=timeout, interval=0.2, message="every simulated call over")
        with ThreadPoolExecutor(8) as pool:
            for call, log in zip(
                played, pool.map(lambda p: self.log(p.call_sid), played), strict=True
            ):
                call.log = log


class Dialer(threading.Thread):
    """Places planned calls at `rate` calls per second, in order, then ends."""

    def __init__(self, simulator: Simulator, plan: Sequence[PlannedCall], rate: float) -> None:
        super().__init__(name="dialer", daemon=True)
        self.simulator = simulator
        self.plan = list(plan)
        self.rate = rate
        self.placed: list[Played] = []
        self.error: BaseException | None = None
        self._progress = threading.Condition()

    def run(self) -> None:
        started = time.monotonic()
        try:
            for index, call in enumerate(self.plan):
                delay = started + index / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                sid = self.simulator.place(call)
                with self._progress:
                    self.placed.append(Played(sid, call, time.time()))
                    self._progress.notify_all()
        except BaseException as err:
            self.error = err
        finally:
            with self._progress:
                self._progress.notify_all()

    def wait_placed(self, count: int, timeout: float) -> None:
        """Block until `count` calls are placed (or the dialer ended or failed)."""
        deadline = time.monotonic() + timeout
        with self._progress:
            while len(self.placed) < count and self.is_alive():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"only {len(self.placed)} of {count} calls placed")
                self._progress.wait(left)
        if self.error is not None:
            raise RuntimeError(f"dialer failed: {self.error}") from self.error

    def finish(self, timeout: float) -> list[Played]:
        self.join(timeout)
        if self.is_alive():
            raise TimeoutError("dialer did not finish placing its calls")
        if self.error is not None:
            raise RuntimeError(f"dialer failed: {self.error}") from self.error
        return list(self.placed)


class Analytics:
    """The call list and summary, read through the edge as an admin."""

    def __init__(self, base_url: str, admin_token: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {admin_token}"

    def calls(self, page_size: int = 1000) -> list[dict[str, Any]]:
        """Every row of /api/calls, following the cursor."""
        rows: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": page_size}
            if cursor:
                params["cursor"] = cursor
            reply = self.session.get(f"{self.base_url}/api/calls", params=params, timeout=30)
            reply.raise_for_status()
            body = reply.json()
            rows.extend(body["calls"])
            cursor = body.get("nextCursor")
            if not cursor:
                return rows

    def summary(self, client_id: str | None = None) -> dict[str, Any]:
        params = {"clientId": client_id} if client_id else {}
        reply = self.session.get(
            f"{self.base_url}/api/analytics/summary", params=params, timeout=30
        )
        reply.raise_for_status()
        body: dict[str, Any] = reply.json()
        return body


@dataclass
class Count:
    """What analytics shows for the calls that were played."""

    sent: int
    counted: int
    duplicated: int
    wrong: int
    failed_webhooks: int
    problems: list[str]

    @property
    def clean(self) -> bool:
        return self.counted == self.sent and self.duplicated == 0 and self.wrong == 0

    def __str__(self) -> str:
        text = (
            f"sent {self.sent}, counted {self.counted}, duplicated {self.duplicated}, "
            f"wrong {self.wrong}, webhooks refused {self.failed_webhooks}"
        )
        if self.problems:
            text += "; e.g. " + " | ".join(self.problems[:5])
        return text


def count(played: Sequence[Played], analytics: Analytics, client_id: str) -> Count:
    """Compare the played calls with analytics' call list and summary (all calls of the run)."""
    rows = analytics.calls()
    summary = analytics.summary()
    seen = Counter(row["callSid"] for row in rows)
    facts = {row["callSid"]: row for row in rows}
    problems: list[str] = []
    counted = wrong = 0
    for call in played:
        fact = facts.get(call.call_sid)
        if fact is None:
            continue
        counted += 1
        mismatch = call.matches(fact, client_id)
        if mismatch:
            wrong += 1
            problems.append(f"{call.call_sid}: {mismatch}")
    # A call listed twice, or a summary larger than the distinct calls, is a duplicate.
    duplicated = sum(n - 1 for n in seen.values()) + max(0, summary["totalCalls"] - len(seen))
    unknown = [sid for sid in seen if sid not in {p.call_sid for p in played}]
    if unknown:
        problems.append(f"{len(unknown)} calls in analytics that were never played")
    missing = [p.call_sid for p in played if p.call_sid not in facts]
    if missing:
        problems.append(f"missing: {', '.join(missing[:3])}")
    if summary["totalCalls"] != len(seen):
        problems.append(f"summary totalCalls {summary['totalCalls']} != {len(seen)} listed")
    refused = sum(len(p.failed_webhooks) for p in played)
    return Count(len(played), counted, duplicated, wrong, refused, problems)


def settle(
    played: Sequence[Played],
    analytics: Analytics,
    client_id: str,
    timeout: float,
    on_wait: Callable[[Count], None] | None = None,
    stable: float = 20.0,
) -> Count:
    """Poll analytics until every played call shows as played, or `timeout` passes.

    Once every call is listed but some still differ, and nothing has changed
    for `stable` seconds, the differences are taken as final. The last
    `Count` is returned either way: the caller decides what a shortfall means.
    """
    deadline = time.monotonic() + timeout
    last: tuple[int, int, int] | None = None
    since = time.monotonic()
    while True:
        result = count(played, analytics, client_id)
        now = time.monotonic()
        if result.clean or now > deadline:
            return result
        state = (result.counted, result.duplicated, result.wrong)
        if state != last:
            last, since = state, now
        elif result.counted == result.sent and now - since > stable:
            return result
        if on_wait is not None:
            on_wait(result)
        time.sleep(0.5)


def setup_client(
    base_url: str, admin_token: str, numbers: Iterable[str], simulator: Simulator
) -> str:
    """One client whose `numbers` forward to FORWARD_TO with recording; owned in the simulator."""
    client_id = create_client(base_url, admin_token)
    for number in numbers:
        assign(base_url, admin_token, client_id, number)
        simulator.own_number(number, base_url)
    return client_id


def create_client(base_url: str, admin_token: str) -> str:
    """A client whose calls forward to FORWARD_TO; its id."""
    reply = requests.post(
        f"{base_url}/api/clients",
        json={"name": "Bench Dental", "forwardTo": FORWARD_TO},
        headers={"Authorization": f"Bearer {admin_token}"},
        timeout=10,
    )
    if reply.status_code != 201:
        raise RuntimeError(f"creating the client failed: {reply.status_code} {reply.text}")
    client_id: str = reply.json()["id"]
    return client_id


def assign(base_url: str, admin_token: str, client_id: str, number: str) -> None:
    reply = requests.post(
        f"{base_url}/api/clients/{client_id}/numbers",
        json={"phoneNumber": number, "record": True, "recordingDisclaimer": "Recorded."},
        headers={"Authorization": f"Bearer {admin_token}"},
        timeout=10,
    )
    if reply.status_code != 201:
        raise RuntimeError(f"assigning {number} failed: {reply.status_code} {reply.text}")


def tracked_numbers(count: int, first: int = 100) -> list[str]:
    """`count` Oakland numbers for one run: +1510555<NNNN>."""
    return [f"+1510555{first + i:04d}" for i in range(count)]
