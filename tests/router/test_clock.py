"""Router's clock for business hours: real time, or the simulator's in development only.

With ROUTER_CLOCK_URL router reads "now" from the Twilio simulator's
GET /sim/clock, so moving the simulator's clock moves router's business
hours; production refuses the setting, and an unreadable clock falls back to
real time rather than failing a call.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests

from services.router.config import Config
from switchboard.clock import ClockUrl
from switchboard.settings import ConfigError
from tests.router.actions import AUTH, AppFactory, assign_number, create_client, route
from tests.support import free_port
from tests.twilio_sim.simulator import Simulator

SUNDAY_NIGHT = "2026-12-06T03:00:00Z"
MONDAY_MORNING = "2026-12-07T10:00:00Z"


@pytest.fixture
def sim_clock(simulator: Simulator) -> Iterator[str]:
    """The simulator's clock URL; the clock is real time again afterwards."""
    yield f"{simulator.base_url}/sim/clock"
    set_clock(simulator, None)


def set_clock(simulator: Simulator, moment: str | None) -> None:
    reply = requests.post(f"{simulator.base_url}/sim/clock", json={"now": moment}, timeout=10)
    assert reply.status_code == 200, reply.text


def router_env(monkeypatch: pytest.MonkeyPatch, environment: str) -> None:
    monkeypatch.setenv("SWITCHBOARD_ENV", environment)
    monkeypatch.setenv("DATABASE_URL", "postgresql://router@db:5432/router")
    monkeypatch.setenv("ADMIN_API_TOKEN", "a-production-admin-token-of-40-characters")
    monkeypatch.setenv("PRIVACY_TOKEN_SECRET", "a-production-privacy-secret-of-40-chars")
    monkeypatch.setenv("ROUTER_CLOCK_URL", "http://127.0.0.1:8085/sim/clock")


def test_production_refuses_a_clock_url(monkeypatch: pytest.MonkeyPatch) -> None:
    router_env(monkeypatch, "production")
    with pytest.raises(ConfigError, match="ROUTER_CLOCK_URL"):
        Config.from_env()


def test_development_reads_the_clock_url(monkeypatch: pytest.MonkeyPatch) -> None:
    router_env(monkeypatch, "development")
    assert Config.from_env().clock_url == "http://127.0.0.1:8085/sim/clock"
    monkeypatch.setenv("ROUTER_CLOCK_URL", "simulator:8085")
    with pytest.raises(ConfigError, match="ROUTER_CLOCK_URL"):
        Config.from_env()


def test_the_clock_reads_the_simulators_time(simulator: Simulator, sim_clock: str) -> None:
    set_clock(simulator, SUNDAY_NIGHT)
    now = ClockUrl(sim_clock)()
    assert now.tzinfo is not None
    # The simulated clock ticks on from the moment set.
    assert now.astimezone(UTC).date().isoformat() == "2026-12-06"


def test_an_unreadable_clock_is_real_time() -> None:
    before = datetime.now(UTC)
    now = ClockUrl(f"http://127.0.0.1:{free_port()}/sim/clock")()
    assert before <= now <= datetime.now(UTC)


def test_routing_judges_business_hours_by_the_simulated_clock(
    make_app: AppFactory, simulator: Simulator, sim_clock: str
) -> None:
    http = make_app(clock_url=sim_clock).test_client()
    client = create_client(http, forwardTo="+14155559999")
    assign_number(http, client["id"], phoneNumber="+14155550100")
    flow = {
        "businessHours": {"weekly": {"mon": [["09:00", "17:00"]]}},
        "ring": {"targets": [{"number": "+14155550101"}]},
        "afterHours": "voicemail",
    }
    assert http.put("/api/numbers/+14155550100/flow", json=flow, headers=AUTH).status_code == 200

    set_clock(simulator, SUNDAY_NIGHT)
    closed = route(http, "CA" + "1" * 32, "+14155550100")
    assert closed.status_code == 200
    assert "<Record" in closed.text and "<Dial" not in closed.text

    set_clock(simulator, MONDAY_MORNING)
    opened = route(http, "CA" + "2" * 32, "+14155550100")
    assert "<Dial" in opened.text and "+14155550101" in opened.text
