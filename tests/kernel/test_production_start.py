"""A production start with an unsafe setting stops at once, naming the setting.

Each service is started for real (`python -m services.<name>`, once through
the `switchboard` console script) with SWITCHBOARD_ENV=production (or unset,
production being the default) and an environment that is safe but for one
setting. Kafka and PostgreSQL point at ports nobody listens on: a refusal
at configuration time exits 2, while a service that got past its
configuration would exit 1 for the unreachable dependency.
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack import REPO_ROOT
from services.analytics.config import Config as AnalyticsConfig
from services.ingress.app import create_app as create_ingress
from services.ingress.app import runtime_of
from services.ingress.config import Config as IngressConfig
from services.recordings.config import DEV_LINK_SECRET
from services.recordings.config import Config as RecordingsConfig
from services.router.config import Config as RouterConfig
from switchboard.kafka import Topics
from switchboard.privacy import DEV_TOKEN_SECRET
from switchboard.settings import DEV_ADMIN_TOKEN, ConfigError
from tests.support import free_port

SERVICES = ("ingress", "router", "analytics", "recordings")
# Variables this file sets or clears; anything else in the environment is kept.
CONTROLLED = (
    "SWITCHBOARD_ENV",
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_REPLICATION_FACTOR",
    "KAFKA_MIN_INSYNC_REPLICAS",
    "DATABASE_URL",
    "RECORDINGS_DATABASE_URL",
    "CLICKHOUSE_URL",
    "ADMIN_API_TOKEN",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_VALIDATE_SIGNATURES",
    "TWILIO_API_BASE_URL",
    "RECORDINGS_LINK_SECRET",
    "RECORDINGS_ENCRYPTION_KEYS",
    "RECORDINGS_ENCRYPTION_KEY_ID",
    "RECORDINGS_S3_BUCKET",
    "PRIVACY_TOKEN_SECRET",
)


def safe_production_env(tmp: Path) -> dict[str, str]:
    """What a careful operator sets; Kafka and PostgreSQL are unreachable on purpose."""
    return {
        "SWITCHBOARD_ENV": "production",
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "DATABASE_URL": f"postgresql://nobody@127.0.0.1:{free_port()}/nothing",
        "CLICKHOUSE_URL": f"chdb://{tmp / 'chdb'}",
        "ADMIN_API_TOKEN": secrets.token_urlsafe(32),
        "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
        "TWILIO_AUTH_TOKEN": secrets.token_hex(16),
        "RECORDINGS_LINK_SECRET": secrets.token_urlsafe(32),
        "RECORDINGS_ENCRYPTION_KEYS": "k1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "PRIVACY_TOKEN_SECRET": secrets.token_urlsafe(32),
    }


@dataclass(frozen=True)
class Case:
    service: str
    setting: str
    value: str | None  # None: the setting is unset
    environment: str | None = "production"  # None: SWITCHBOARD_ENV unset
    console_script: bool = False

    @property
    def id(self) -> str:
        how = "unset" if self.value is None else self.value[:16]
        env = self.environment or "default-env"
        via = "-cli" if self.console_script else ""
        return f"{self.service}{via}-{self.setting}={how}-{env}"


CASES = [
    Case("ingress", "TWILIO_VALIDATE_SIGNATURES", "false"),
    Case("ingress", "TWILIO_VALIDATE_SIGNATURES", "false", environment=None),
    Case("router", "TWILIO_VALIDATE_SIGNATURES", "false"),
    *(Case(name, "ADMIN_API_TOKEN", DEV_ADMIN_TOKEN) for name in ("router", "analytics")),
    Case("recordings", "ADMIN_API_TOKEN", DEV_ADMIN_TOKEN, environment=None),
    *(Case(name, "ADMIN_API_TOKEN", "x" * 31) for name in ("router", "analytics", "recordings")),
    Case("router", "ADMIN_API_TOKEN", "x" * 31, console_script=True),
    Case("recordings", "RECORDINGS_LINK_SECRET", None),
    Case("recordings", "RECORDINGS_LINK_SECRET", None, environment=None),
    Case("recordings", "RECORDINGS_LINK_SECRET", DEV_LINK_SECRET),
    *(Case(name, "KAFKA_REPLICATION_FACTOR", "1") for name in SERVICES),
    Case("ingress", "KAFKA_REPLICATION_FACTOR", "2", environment=None),
    *(Case(name, "ROUTER_CLOCK_URL", "http://127.0.0.1:1/") for name in ("ingress", "router")),
    *(Case(name, "KAFKA_MIN_INSYNC_REPLICAS", "1") for name in SERVICES),
    *(Case(name, "PRIVACY_TOKEN_SECRET", None) for name in ("router", "analytics", "recordings")),
    Case("analytics", "PRIVACY_TOKEN_SECRET", DEV_TOKEN_SECRET, environment=None),
]


def start(case: Case, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in CONTROLLED}
    env["SWITCHBOARD_ENV_FILE"] = os.devnull
    env.update(safe_production_env(tmp))
    env.pop("SWITCHBOARD_ENV")
    if case.environment is not None:
        env["SWITCHBOARD_ENV"] = case.environment
    env.pop(case.setting, None)
    if case.value is not None:
        env[case.setting] = case.value
    command = (
        [str(Path(sys.executable).with_name("switchboard")), case.service]
        if case.console_script
        else [sys.executable, "-m", f"services.{case.service}"]
    )
    return subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def started(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every case started once, a few at a time (each is a fresh interpreter)."""
    tmp = tmp_path_factory.mktemp("production")
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(lambda case: start(case, tmp), CASES)
        return {case.id: result for case, result in zip(CASES, results, strict=True)}


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_unsafe_setting_stops_a_production_start_with_one_line_naming_it(
    started: dict[str, subprocess.CompletedProcess[str]], case: Case
) -> None:
    result = started[case.id]
    assert result.returncode == 2, result.stderr
    naming = [line for line in result.stderr.splitlines() if case.setting in line]
    assert len(naming) == 1, result.stderr
    label = case.service.replace("_", "-")
    assert naming[0].startswith(f"{label}: configuration error: {case.setting}")
    assert "refused in production" in naming[0]


def _use(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name in CONTROLLED:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def _build_every_config() -> None:
    IngressConfig.from_env()
    RouterConfig.from_env()
    AnalyticsConfig.from_env()
    RecordingsConfig.from_env()


def test_safe_production_settings_pass_every_service_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The base of the cases above is safe: each refusal comes from its one setting."""
    _use(monkeypatch, safe_production_env(tmp_path))
    _build_every_config()
    # Production's own defaults are the safe ones.
    topics = IngressConfig.from_env().topics
    assert (topics.replication_factor, topics.min_insync_replicas) == (3, 2)
    monkeypatch.delenv("SWITCHBOARD_ENV")
    _build_every_config()


def test_development_allows_what_production_refuses(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = safe_production_env(tmp_path)
    env.pop("RECORDINGS_LINK_SECRET")
    _use(monkeypatch, env)
    monkeypatch.setenv("TWILIO_VALIDATE_SIGNATURES", "false")
    monkeypatch.setenv("ADMIN_API_TOKEN", DEV_ADMIN_TOKEN)
    with pytest.raises(ConfigError, match="TWILIO_VALIDATE_SIGNATURES"):
        IngressConfig.from_env()

    monkeypatch.setenv("SWITCHBOARD_ENV", "development")
    _build_every_config()
    topics = IngressConfig.from_env().topics
    assert (topics.replication_factor, topics.min_insync_replicas) == (1, 1)
    assert IngressConfig.from_env().validate_signatures is False


def test_an_unknown_environment_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _use(monkeypatch, safe_production_env(tmp_path))
    monkeypatch.setenv("SWITCHBOARD_ENV", "staging")
    with pytest.raises(ConfigError, match="SWITCHBOARD_ENV must be development or production"):
        RouterConfig.from_env()


def test_link_secret_is_never_derived_from_the_admin_token(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = safe_production_env(tmp_path)
    env.pop("RECORDINGS_LINK_SECRET")
    _use(monkeypatch, {**env, "SWITCHBOARD_ENV": "development"})
    first = RecordingsConfig.from_env().link_secret
    monkeypatch.setenv("ADMIN_API_TOKEN", secrets.token_urlsafe(32))
    assert RecordingsConfig.from_env().link_secret == first == DEV_LINK_SECRET

    monkeypatch.setenv("SWITCHBOARD_ENV", "production")
    token = os.environ["ADMIN_API_TOKEN"]
    monkeypatch.setenv("RECORDINGS_LINK_SECRET", token)
    with pytest.raises(ConfigError, match="RECORDINGS_LINK_SECRET must not be the ADMIN_API_TOKEN"):
        RecordingsConfig.from_env()


@pytest.mark.parametrize("checked", [True, False])
def test_ingress_readyz_reports_whether_signatures_are_checked(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path, checked: bool
) -> None:
    config = IngressConfig(
        kafka_bootstrap=kafka_bootstrap,
        topics=topics,
        auth_token="test-auth-token",
        validate_signatures=checked,
        public_base="https://calls.example.com",
        router_url=f"http://127.0.0.1:{free_port()}",
        router_timeout=0.5,
        publish_timeout=2.0,
        spool_dir=str(tmp_path / "spool"),
        bind="127.0.0.1:0",
        # Ready once its routing copy is built, which it waits for before serving.
        copy_wait=15.0,
    )
    app = create_ingress(config)
    try:
        reply = app.test_client().get("/readyz")
    finally:
        runtime_of(app).close()
    assert reply.status_code == 200
    assert reply.get_json()["signatureChecks"] is checked
