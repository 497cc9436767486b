"""Running the Twilio simulator for tests: `python -m services.twilio_sim` in a subprocess.

Other test suites use it the same way: start it with `running_simulator()`,
give the services its `base_url` and credentials, own numbers with
`own_number`, then play calls with `place_call` and wait for them with
`wait_for_call` (the call's log: every request sent, its reply and timing).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from twilio.rest import Client

from services.twilio_sim.redirect import SimulatorHttpClient

REPO = Path(__file__).resolve().parents[2]
ACCOUNT_SID = "AC" + "5e" * 16
AUTH_TOKEN = "simulator-test-token"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


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
        deadline = time.monotonic() + timeout
        while True:
            reply = requests.get(
                f"{self.base_url}/sim/calls/{call_sid}", params={"wait": 5}, timeout=15
            )
            reply.raise_for_status()
            play: dict[str, Any] = reply.json()
            if play["state"] == "finished":
                return play
            if time.monotonic() > deadline:
                raise AssertionError(f"call {call_sid} still playing: {play}")


@contextmanager
def running_simulator(
    account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN, env: dict[str, str] | None = None
) -> Iterator[Simulator]:
    port = free_port()
    child_env = {
        **os.environ,
        "TWILIO_SIM_BIND": f"127.0.0.1:{port}",
        "TWILIO_ACCOUNT_SID": account_sid,
        "TWILIO_AUTH_TOKEN": auth_token,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        **(env or {}),
    }
    base_url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.twilio_sim"],
            cwd=REPO,
            env=child_env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                if process.poll() is not None:
                    output.seek(0)
                    raise RuntimeError(
                        "twilio simulator exited: " + output.read().decode(errors="replace")
                    )
                try:
                    if requests.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("twilio simulator did not come up in 30 s")
                time.sleep(0.1)
            yield Simulator(base_url, account_sid, auth_token)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
