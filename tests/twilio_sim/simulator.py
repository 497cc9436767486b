"""Running the Twilio simulator for tests: `python -m services.twilio_sim` in a subprocess.

Other test suites use it the same way: start it with `running_simulator()`,
give the services its `base_url` and credentials, own numbers with
`own_number`, then play calls with `place_call` and wait for them with
`wait_for_call` (the call's log: every request sent, its reply and timing);
`set_clock`, `messages` and `text_from` drive the clock and SMS.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
from twilio.rest import Client

from services.twilio_sim.redirect import SimulatorHttpClient
from tests.support import ServiceProcess, wait_until

ACCOUNT_SID = "AC" + "5e" * 16
AUTH_TOKEN = "simulator-test-token"


@dataclass(frozen=True)
class Simulator:
    base_url: str
    account_sid: str
    auth_token: str

    def client(self, auth_token: str | None = None) -> Client:
        """twilio-python's own Client, talking to the simulator."""
        return Client(
            self.account_sid,
            auth_token or self.auth_token,
            http_client=SimulatorHttpClient(self.base_url),
        )

    def own_number(self, phone_number: str, voice_url: str, **extra: str) -> dict[str, Any]:
        reply = requests.post(
            f"{self.base_url}/sim/numbers",
            json={"phoneNumber": phone_number, "voiceUrl": voice_url, **extra},
            timeout=10,
        )
        reply.raise_for_status()
        body: dict[str, Any] = reply.json()
        return body

    def place_call(self, **call: Any) -> str:
        """POST /sim/calls (from, to, outcome, talkSeconds, ringSeconds...); the CallSid."""
        reply = requests.post(f"{self.base_url}/sim/calls", json=call, timeout=10)
        if reply.status_code != 202:
            raise AssertionError(f"/sim/calls answered {reply.status_code}: {reply.text}")
        sid: str = reply.json()["callSid"]
        return sid

    def wait_for_call(self, call_sid: str, timeout: float = 30.0) -> dict[str, Any]:
        """The call's log once it has finished."""

        def finished() -> dict[str, Any] | None:
            reply = requests.get(
                f"{self.base_url}/sim/calls/{call_sid}", params={"wait": 5}, timeout=15
            )
            reply.raise_for_status()
            play: dict[str, Any] = reply.json()
            return play if play["state"] == "finished" else None

        return wait_until(finished, timeout=timeout, message=f"call {call_sid} finished")

    def set_clock(self, now: str | None) -> dict[str, Any]:
        """POST /sim/clock: an ISO-8601 time with its zone, or None for real time."""
        reply = requests.post(f"{self.base_url}/sim/clock", json={"now": now}, timeout=10)
        reply.raise_for_status()
        body: dict[str, Any] = reply.json()
        return body

    def messages(self, **filters: str) -> list[dict[str, Any]]:
        """GET /sim/messages (filters: to, from): texts sent and received, oldest first."""
        reply = requests.get(f"{self.base_url}/sim/messages", params=filters, timeout=10)
        reply.raise_for_status()
        found: list[dict[str, Any]] = reply.json()["messages"]
        return found

    def text_from(self, phone: str, number: str, body: str) -> dict[str, Any]:
        """POST /sim/messages/inbound: `phone` texts `body` (STOP, START...) to `number`."""
        reply = requests.post(
            f"{self.base_url}/sim/messages/inbound",
            json={"from": phone, "to": number, "body": body},
            timeout=10,
        )
        reply.raise_for_status()
        message: dict[str, Any] = reply.json()
        return message


@contextmanager
def running_simulator(
    account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN, env: dict[str, str] | None = None
) -> Iterator[Simulator]:
    child_env = {"TWILIO_ACCOUNT_SID": account_sid, "TWILIO_AUTH_TOKEN": auth_token, **(env or {})}
    with ServiceProcess("twilio_sim", child_env, startup_timeout=30) as process:
        yield Simulator(process.url, account_sid, auth_token)
