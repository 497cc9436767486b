"""`switchboard demo` (`make demo`): simulated calls through a running `make run`.

Sets up a few clients, each with a tracking number from router's pool (which
buys one from the Twilio simulator only when the pool has none), plays N
calls with a realistic mix of outcomes from a pool of callers (some call more
than once), waits until analytics has counted every call, and prints each
client's summary, shows a missed-call alert to the first client as the local
mail catcher kept it (`.run/mail/`), then has reporting build the first
client's report of this week and says where its PDF and HTML are. It speaks
HTTP to the public edge and to the simulator's control endpoint, like a user
would.

Running it again reuses the clients (found by name) and their numbers. The
simulator keeps its account in memory, so after `make run` restarted it no
longer holds numbers the deployment still has: the demo gives the account
each such number back (as a number the business owns) and re-points it, so
router configures it at Twilio again.
"""

from __future__ import annotations

import argparse
import email
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from devstack import REPO_ROOT

CLIENTS = (
    ("Smile Dental", "+14155559001", "415", "google-ads"),
    ("Rapid Plumbing", "+12125559002", "212", "yelp"),
    ("Baker & Lee Law", "+13125559003", "312", "billboard"),
)
ANALYTICS_WAIT_SECONDS = 60
ALERT_WAIT_SECONDS = 30
OUTCOMES = (("completed", 70), ("no-answer", 15), ("busy", 10), ("failed", 5))
CALLERS = (
    ("+12125550147", "NY"),
    ("+13105550123", "CA"),
    ("+17735550188", "IL"),
    ("+16175550142", "MA"),
    ("+12065550175", "WA"),
    ("+13055550111", "FL"),
    ("+15125550166", "TX"),
    ("+14045550199", "GA"),
    ("+17025550133", "NV"),
    ("+16025550122", "AZ"),
    ("+15035550177", "OR"),
    ("+13035550155", "CO"),
)


class DemoError(Exception):
    pass


@dataclass
class DemoClient:
    id: str
    name: str
    number: str


class Demo:
    def __init__(self, edge: str, simulator: str, token: str) -> None:
        self.edge = edge.rstrip("/")
        self.simulator = simulator.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        reply = self.session.request(method, self.edge + path, timeout=15, **kwargs)
        if reply.status_code >= 400:
            raise DemoError(f"{method} {path} answered {reply.status_code}: {reply.text[:300]}")
        return reply.json() if reply.content else None

    def check(self) -> None:
        for name, url in (("edge", self.edge), ("Twilio simulator", self.simulator)):
            try:
                requests.get(url + "/healthz", timeout=3).raise_for_status()
            except requests.RequestException as err:
                raise DemoError(
                    f"{name} at {url} is not answering ({err}); is `make run` up?"
                ) from None

    def set_up_client(
        self, name: str, forward_to: str, area_code: str, campaign: str
    ) -> DemoClient:
        """The demo client named `name` with its tracking number, made only if missing."""
        clients = self.api("GET", "/api/clients")["clients"]
        found = [c for c in clients if c["name"] == name]
        client = (
            found[0]
            if found
            else self.api("POST", "/api/clients", json={"name": name, "forwardTo": forward_to})
        )
        numbers = self.api("GET", f"/api/clients/{client['id']}/numbers")["numbers"]
        if numbers:
            number = numbers[0]
        else:
            number = self.api(
                "POST",
                f"/api/clients/{client['id']}/numbers",
                json={
                    "forwardTo": forward_to,
                    "areaCode": area_code,
                    "campaign": campaign,
                    "record": True,
                    "recordingDisclaimer": "This call may be recorded for quality purposes.",
                },
            )
        self.make_sure_twilio_holds(client["id"], number)
        return DemoClient(client["id"], name, number["phoneNumber"])

    def make_sure_twilio_holds(self, client_id: str, number: dict[str, Any]) -> None:
        """Give the simulated account back a number it forgot (the simulator restarted)."""
        phone = number["phoneNumber"]
        held = requests.get(f"{self.simulator}/sim/numbers/{quote(phone)}", timeout=15)
        if held.status_code == 200:
            return
        if held.status_code != 404:
            raise DemoError(f"simulator answered {held.status_code}: {held.text[:200]}")
        owned = requests.post(
            f"{self.simulator}/sim/numbers",
            json={
                "phoneNumber": phone,
                "voiceUrl": f"{self.edge}/api/twilio/webhook",
                "statusCallback": f"{self.edge}/api/twilio/status",
            },
            timeout=15,
        )
        if owned.status_code not in (200, 201):
            raise DemoError(f"simulator refused {phone}: {owned.status_code} {owned.text[:200]}")
        # Re-pointing the number has router configure it at Twilio again (fallback included).
        self.api(
            "PATCH",
            f"/api/clients/{client_id}/numbers/{quote(phone)}",
            json={"forwardTo": number["forwardTo"]},
        )
        print(f"  (the Twilio simulator had forgotten {phone}: it holds it again)")

    def build_report(self, client: DemoClient, wait: float = 30.0) -> dict[str, Any] | None:
        """The client's report of this week (UTC Monday on), built now by reporting.

        Reporting learns of a new client from router's events: until it has,
        it answers 404 for the client, so that is waited for. None when the
        edge finds no reporting service (a deployment without it).
        """
        today = datetime.now(UTC).date()
        body = {
            "clientId": client.id,
            "period": "week",
            "from": (today - timedelta(days=today.weekday())).isoformat(),
        }
        deadline = time.monotonic() + wait
        while True:
            reply = self.session.post(f"{self.edge}/api/reports", json=body, timeout=60)
            if reply.status_code in (200, 201):
                built: dict[str, Any] = reply.json()
                return built
            if reply.status_code == 503 and "service_unavailable" in reply.text:
                return None
            if reply.status_code != 404 or time.monotonic() > deadline:
                raise DemoError(f"POST /api/reports: {reply.status_code} {reply.text[:300]}")
            time.sleep(0.5)

    def email_missed_calls(self, client: DemoClient, address: str) -> None:
        """Add `address` to the client's missed-call alert and weekly report emails (the rest
        kept as set)."""
        path = f"/api/clients/{client.id}/notifications"
        settings = self.api("GET", path)
        missed = settings.setdefault("missedCall", {})
        reports = settings.setdefault("reports", {})
        if address not in missed.get("email", []) or address not in reports.get("email", []):
            missed["email"] = [*(e for e in missed.get("email", []) if e != address), address]
            reports["email"] = [*(e for e in reports.get("email", []) if e != address), address]
            reports["weekly"] = True
            self.api("PUT", path, json=settings)

    def reporting_runs(self) -> bool:
        """Whether a reporting service answers behind the edge (its admin view of deliveries)."""
        reply = self.session.get(
            f"{self.edge}/api/reporting/deliveries", params={"limit": 1}, timeout=15
        )
        return reply.status_code == 200

    def total_calls(self, client_id: str) -> int:
        summary = self.api("GET", "/api/analytics/summary", params={"clientId": client_id})
        return int(summary["totalCalls"])

    def play(self, to: str, rng: random.Random) -> str:
        caller, _ = rng.choice(CALLERS)
        outcome = rng.choices([o for o, _ in OUTCOMES], weights=[w for _, w in OUTCOMES])[0]
        body: dict[str, Any] = {
            "from": caller,
            "to": to,
            "outcome": outcome,
            "talkSeconds": int(rng.lognormvariate(4.3, 1.0)) + 5,
            "ringSeconds": rng.randint(3, 15),
        }
        reply = requests.post(self.simulator + "/sim/calls", json=body, timeout=15)
        if reply.status_code != 202:
            raise DemoError(f"simulator refused a call: {reply.status_code} {reply.text[:200]}")
        sid: str = reply.json()["callSid"]
        requests.get(f"{self.simulator}/sim/calls/{sid}", params={"wait": 20}, timeout=30)
        return sid


def latest_alert(maildir: Path, address: str, wait: float) -> tuple[Path, EmailMessage] | None:
    """The newest alert email to `address` in the mail catcher's Maildir, waiting for one."""
    deadline = time.monotonic() + wait
    while True:
        found = []
        for path in sorted((maildir / "new").glob("*"), key=lambda p: p.stat().st_mtime):
            with path.open("rb") as handle:
                message = email.message_from_binary_file(handle, policy=policy.default)
            if message["To"] == address and message["X-Switchboard-Call"]:
                found.append((path, message))
        if found:
            path, message = found[-1]
            return path, message  # type: ignore[return-value]
        if time.monotonic() > deadline:
            return None
        time.sleep(0.5)


def _progress(label: str, done: int, total: int) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    print(
        f"\r  {label:<18} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
        end="",
        flush=True,
    )
    if done == total:
        print(flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="switchboard demo", description=__doc__)
    parser.add_argument("--calls", type=int, default=60, help="calls to play (default %(default)s)")
    parser.add_argument("--edge", default="http://127.0.0.1:8080")
    parser.add_argument("--simulator", default="http://127.0.0.1:8090")
    parser.add_argument("--token", default="dev-admin-token", help="ADMIN_API_TOKEN")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--maildir", type=Path, default=REPO_ROOT / ".run" / "mail", help="the mail catcher's"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.calls < 1 or args.calls > 10_000:
        parser.error("--calls must be between 1 and 10000")
    demo = Demo(args.edge, args.simulator, args.token)
    rng = random.Random(args.seed)
    try:
        demo.check()
        print("Setting up clients, each with a number from the pool (bought when it is empty):")
        clients = [demo.set_up_client(*spec) for spec in CLIENTS]
        for client in clients:
            print(f"  {client.name:<18} {client.number}  (client {client.id})")
        owner = "owner@" + clients[0].name.split()[0].lower() + ".example"
        demo.email_missed_calls(clients[0], owner)
        print(f"  {clients[0].name}'s missed calls and weekly reports are emailed to {owner}")
        # Calls of earlier runs are counted already: wait for this run's on top of them.
        before = {c.id: demo.total_calls(c.id) for c in clients}
        print(f"Playing {args.calls} simulated calls:")
        targets = [rng.choice(clients) for _ in range(args.calls)]
        seeds = [rng.random() for _ in targets]
        done = 0
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = [
                pool.submit(demo.play, client.number, random.Random(seed))
                for client, seed in zip(targets, seeds, strict=True)
            ]
            for future in as_completed(futures):
                future.result()
                done += 1
                _progress("calls played", done, args.calls)
        expected = {c.id: sum(1 for t in targets if t.id == c.id) for c in clients}
        deadline = time.monotonic() + ANALYTICS_WAIT_SECONDS
        counted = 0
        while True:
            summaries = {
                c.id: demo.api("GET", "/api/analytics/summary", params={"clientId": c.id})
                for c in clients
            }
            counted = sum(
                min(s["totalCalls"] - before[cid], expected[cid]) for cid, s in summaries.items()
            )
            _progress("calls in analytics", counted, args.calls)
            if counted == args.calls or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if counted != args.calls:
            print()
            raise DemoError(
                f"analytics counted {counted} of {args.calls} calls"
                f" within {ANALYTICS_WAIT_SECONDS} s"
            )
    except DemoError as err:
        print(f"\nswitchboard demo: {err}", file=sys.stderr)
        return 1
    print(f"\n  {'client':<18} {'calls':>5} {'answered':>8} {'missed':>6} {'talk min':>8}")
    for client in clients:
        s = summaries[client.id]
        print(
            f"  {client.name:<18} {s['totalCalls']:>5} {s['completed']:>8} {s['missed']:>6} "
            f"{s['totalDurationSec'] / 60:>8.1f}"
        )
    print(
        f"\nSee them: curl -H 'Authorization: Bearer {args.token}' "
        f"'{args.edge}/api/calls?clientId={clients[0].id}'"
    )
    alert = latest_alert(args.maildir, owner, ALERT_WAIT_SECONDS) if demo.reporting_runs() else None
    if alert is None:
        print(f"\nNo missed-call alert to {owner} in {args.maildir} (is reporting running?)")
    else:
        path, message = alert
        body = message.get_body(preferencelist=("plain",))
        print(f"\nA missed-call alert, as the mail catcher kept it ({path}):")
        print(f"  Subject: {message['Subject']}")
        for line in (body.get_content() if body else "").splitlines():  # type: ignore[union-attr]
            print(f"  {line}".rstrip())
    try:
        report = demo.build_report(clients[0])
    except DemoError as err:
        print(f"\nswitchboard demo: {err}", file=sys.stderr)
        return 1
    if report is None:
        print("\nNo report: the reporting service is not running behind this edge.")
        return 0
    print(
        f"\nThis week's report of {clients[0].name} (so far), built now: "
        f"{report['figures']['summary']['totalCalls']} calls, "
        f"{len(report['figures']['awaitingFollowUp'])} missed awaiting a follow-up, "
        f"emailed to {', '.join(report['recipients']) or 'nobody'}.\n"
        f"  {args.edge}/api/reports/{report['id']}.pdf and .html (with the admin token)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
