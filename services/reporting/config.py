"""The reporting service's configuration, read from the environment once at start-up.

`Config.from_env()` raises `ConfigError` naming the bad variable, so a
misconfigured process stops before it touches Kafka, PostgreSQL, SMTP or
Twilio. `KafkaSettings` is the part the faust app needs when its module is
imported (agents and tables are declared at import); it reads defaults only,
so importing never fails. Tests build `Config(...)` directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from switchboard import settings
from switchboard.kafka import Topics
from switchboard.privacy import DEV_TOKEN_SECRET, token_secret
from switchboard.settings import (
    ConfigError,
    env_float,
    env_int,
    env_str,
    is_production,
    require_in_production,
)

DEFAULT_BIND = "127.0.0.1:8085"
DEFAULT_GROUP_ID = "reporting"
# The partitions of call-events as `ensure_topics` creates them; faust's tables
# must have as many partitions as the topics they are built from.
DEFAULT_PARTITIONS = 3
# How often the open calls' states are swept (services/reporting/call_states.py).
DEFAULT_CALL_SWEEP_SECONDS = 600.0
SMTP_SCHEMES = ("smtp", "smtps", "smtp+starttls")
T = TypeVar("T")


@dataclass(frozen=True)
class KafkaSettings:
    """What the faust app is declared with: brokers, topic prefix, group id."""

    bootstrap: str = "127.0.0.1:9092"
    topic_prefix: str = "switchboard."
    group_id: str = DEFAULT_GROUP_ID
    partitions: int = DEFAULT_PARTITIONS
    replication_factor: int = 1

    @classmethod
    def from_env(cls) -> KafkaSettings:
        """Never raises: a bad value falls back to its default here, and `Config.from_env`
        (which runs first at start-up) refuses it with the variable's name."""
        try:
            production = is_production()
        except ConfigError:
            production = True
        defaults = cls(replication_factor=3 if production else 1)
        return cls(
            _or_default(env_str, "KAFKA_BOOTSTRAP_SERVERS", defaults.bootstrap),
            _or_default(env_str, "KAFKA_TOPIC_PREFIX", defaults.topic_prefix),
            _or_default(env_str, "REPORTING_GROUP_ID", defaults.group_id),
            _or_default(env_int, "REPORTING_PARTITIONS", defaults.partitions),
            _or_default(env_int, "KAFKA_REPLICATION_FACTOR", defaults.replication_factor),
        )


def call_sweep_seconds() -> float:
    """REPORTING_CALL_SWEEP_SECONDS for the sweep's timer, declared at import (never raises:
    `Config.from_env` refuses a bad value first)."""
    seconds = _or_default(env_float, "REPORTING_CALL_SWEEP_SECONDS", DEFAULT_CALL_SWEEP_SECONDS)
    return seconds if seconds > 0 else DEFAULT_CALL_SWEEP_SECONDS


def _or_default(read: Callable[[str, T], T], name: str, default: T) -> T:
    try:
        return read(name, default)
    except ConfigError:
        return default


@dataclass(frozen=True)
class Config:
    database_url: str
    admin_token: str
    smtp_url: str = "smtp://127.0.0.1:1025"
    bind: str = DEFAULT_BIND
    kafka_bootstrap: str = "127.0.0.1:9092"
    topics: Topics = field(default_factory=Topics)
    group_id: str = DEFAULT_GROUP_ID
    email_from: str = "Switchboard <alerts@switchboard.localhost>"
    sms_from: str = ""
    twilio_account_sid: str = "AC" + "0" * 32
    twilio_auth_token: str = ""
    twilio_api_base_url: str = "https://api.twilio.com"
    recordings_url: str = "http://127.0.0.1:8084"
    public_base_url: str = "http://127.0.0.1:8080"
    # How long a missed call on a number that can take voicemail waits for one.
    voicemail_wait_seconds: float = 60.0
    # How long a voicemail waits to be stored (for its link) before the alert goes without.
    voicemail_link_wait_seconds: float = 60.0
    retry_base_seconds: float = 2.0
    retry_max_seconds: float = 3600.0
    give_up_seconds: float = 86400.0
    send_timeout_seconds: float = 10.0
    dispatch_interval_seconds: float = 1.0
    clock_file: Path | None = None
    # An open call's state older than this is dropped: a Twilio call lasts 4 h by
    # default and 24 h at the most, so its end will not come any more.
    call_state_max_hours: float = 24.0
    call_sweep_seconds: float = DEFAULT_CALL_SWEEP_SECONDS
    # Turns a state's caller into the token a caller.erased event names.
    privacy_token_secret: str = DEV_TOKEN_SECRET

    def __post_init__(self) -> None:
        if not self.database_url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("REPORTING_DATABASE_URL / DATABASE_URL must be a postgresql:// URL")
        scheme = urlsplit(self.smtp_url).scheme
        if scheme not in SMTP_SCHEMES or not urlsplit(self.smtp_url).hostname:
            raise ConfigError(
                f"SMTP_URL must be smtp://, smtps:// or smtp+starttls://host[:port], "
                f"got {self.smtp_url!r}"
            )
        for name, value in (
            ("REPORTING_RETRY_BASE_SECONDS", self.retry_base_seconds),
            ("REPORTING_RETRY_MAX_SECONDS", self.retry_max_seconds),
            ("REPORTING_GIVE_UP_SECONDS", self.give_up_seconds),
            ("REPORTING_SEND_TIMEOUT_SECONDS", self.send_timeout_seconds),
            ("REPORTING_DISPATCH_INTERVAL_SECONDS", self.dispatch_interval_seconds),
            ("REPORTING_CALL_STATE_MAX_HOURS", self.call_state_max_hours),
            ("REPORTING_CALL_SWEEP_SECONDS", self.call_sweep_seconds),
        ):
            if value <= 0:
                raise ConfigError(f"{name} must be above 0, got {value}")
        if self.voicemail_wait_seconds < 0 or self.voicemail_link_wait_seconds < 0:
            raise ConfigError("REPORTING_VOICEMAIL_WAIT_SECONDS values must not be negative")

    @classmethod
    def from_env(cls) -> Config:
        database_url = env_str("REPORTING_DATABASE_URL", "") or env_str("DATABASE_URL")
        clock = env_str("REPORTING_CLOCK_FILE", "")
        require_in_production(not clock, "REPORTING_CLOCK_FILE is set")
        smtp_url = env_str("SMTP_URL", "")
        require_in_production(bool(smtp_url), "SMTP_URL is not set")
        partitions = env_int("REPORTING_PARTITIONS", DEFAULT_PARTITIONS)
        if partitions < 1:
            raise ConfigError(f"REPORTING_PARTITIONS must be at least 1, got {partitions}")
        kafka = KafkaSettings.from_env()
        return cls(
            database_url=database_url,
            admin_token=settings.admin_token(),
            smtp_url=smtp_url or "smtp://127.0.0.1:1025",
            bind=env_str("REPORTING_BIND", DEFAULT_BIND),
            kafka_bootstrap=kafka.bootstrap,
            topics=Topics.from_env(),
            group_id=kafka.group_id,
            email_from=env_str("REPORTING_EMAIL_FROM", cls.email_from),
            sms_from=env_str("REPORTING_SMS_FROM", "") or env_str("TWILIO_PHONE_NUMBER", ""),
            twilio_account_sid=env_str("TWILIO_ACCOUNT_SID", cls.twilio_account_sid),
            twilio_auth_token=env_str("TWILIO_AUTH_TOKEN", ""),
            twilio_api_base_url=env_str("TWILIO_API_BASE_URL", "https://api.twilio.com"),
            recordings_url=env_str("RECORDINGS_URL", "http://127.0.0.1:8084"),
            public_base_url=settings.public_base_url(),
            voicemail_wait_seconds=env_float("REPORTING_VOICEMAIL_WAIT_SECONDS", 60.0),
            voicemail_link_wait_seconds=env_float("REPORTING_VOICEMAIL_LINK_WAIT_SECONDS", 60.0),
            retry_base_seconds=env_float("REPORTING_RETRY_BASE_SECONDS", 2.0),
            retry_max_seconds=env_float("REPORTING_RETRY_MAX_SECONDS", 3600.0),
            give_up_seconds=env_float("REPORTING_GIVE_UP_SECONDS", 86400.0),
            send_timeout_seconds=env_float("REPORTING_SEND_TIMEOUT_SECONDS", 10.0),
            dispatch_interval_seconds=env_float("REPORTING_DISPATCH_INTERVAL_SECONDS", 1.0),
            clock_file=Path(clock) if clock else None,
            call_state_max_hours=env_float("REPORTING_CALL_STATE_MAX_HOURS", 24.0),
            call_sweep_seconds=env_float(
                "REPORTING_CALL_SWEEP_SECONDS", DEFAULT_CALL_SWEEP_SECONDS
            ),
            privacy_token_secret=token_secret(),
        )
