"""Analytics configuration, read from the environment once at start-up.

A bad or missing value raises `ConfigError` naming the variable, so a
misconfigured process stops before it touches Kafka or ClickHouse.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from services.analytics.clients import LeadThresholds
from switchboard import privacy
from switchboard.kafka import Topics
from switchboard.privacy import DEV_TOKEN_SECRET
from switchboard.settings import (
    ConfigError,
    admin_token,
    env_bool,
    env_float,
    env_int,
    env_str,
    is_production,
)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def default_clickhouse_url() -> str:
    """The embedded engine in the project's run folder (see .gitignore's .run/)."""
    return "chdb://" + os.path.abspath(os.path.join(".run", "chdb"))


@dataclass(frozen=True)
class Prices:
    """Twilio prices for campaign cost and ROI, in USD.

    Defaults are the integration guide's illustrative prices; set the real
    ones of the account through ANALYTICS_PRICE_* variables.
    """

    number_monthly: float = 1.0
    inbound_per_min: float = 0.0085
    outbound_per_min: float = 0.013
    recording_per_min: float = 0.0025

    @classmethod
    def from_env(cls) -> Prices:
        return cls(
            number_monthly=env_float("ANALYTICS_PRICE_NUMBER_MONTHLY", 1.0),
            inbound_per_min=env_float("ANALYTICS_PRICE_INBOUND_PER_MIN", 0.0085),
            outbound_per_min=env_float("ANALYTICS_PRICE_OUTBOUND_PER_MIN", 0.013),
            recording_per_min=env_float("ANALYTICS_PRICE_RECORDING_PER_MIN", 0.0025),
        )

    def check(self) -> None:
        for name, value in self.__dict__.items():
            if value < 0:
                raise ConfigError(f"ANALYTICS_PRICE_{name.upper()} must not be negative")


@dataclass(frozen=True)
class ClickHouseHttp:
    """The read-only ClickHouse HTTP endpoint over the embedded chDB (analytics/clickhouse_http.py).

    Off unless `bind` is set; its one user may only read, within the limits.
    In development a request from loopback without credentials reads as the
    user `default`, as on a fresh ClickHouse server (`curl '...?query=SELECT 1'`).
    """

    bind: str = ""
    user: str = "grafana"
    password: str = ""
    max_execution_time: float = 10.0
    max_result_rows: int = 1_000_000
    max_memory_usage: int = 2_000_000_000
    loopback_default_user: bool = False

    @property
    def enabled(self) -> bool:
        return bool(self.bind)

    @classmethod
    def from_env(cls) -> ClickHouseHttp:
        return cls(
            bind=os.environ.get("CLICKHOUSE_HTTP_BIND", "").strip(),
            user=env_str("GRAFANA_CLICKHOUSE_USER", "grafana"),
            password=os.environ.get("GRAFANA_CLICKHOUSE_PASSWORD", ""),
            max_execution_time=env_float("CLICKHOUSE_HTTP_MAX_EXECUTION_TIME", 10.0),
            max_result_rows=env_int("CLICKHOUSE_HTTP_MAX_RESULT_ROWS", 1_000_000),
            max_memory_usage=env_int("CLICKHOUSE_HTTP_MAX_MEMORY_USAGE", 2_000_000_000),
            loopback_default_user=not is_production(),
        )

    def check(self, embedded: bool) -> None:
        if not self.enabled:
            return
        host, _, port = self.bind.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"CLICKHOUSE_HTTP_BIND must be host:port, got {self.bind!r}")
        if not embedded:
            raise ConfigError(
                "CLICKHOUSE_HTTP_BIND serves the embedded chDB only; with a ClickHouse server "
                "(CLICKHOUSE_URL=http...) point Grafana at that server and leave it unset"
            )
        if not _IDENTIFIER.match(self.user):
            raise ConfigError(
                f"GRAFANA_CLICKHOUSE_USER must be a plain identifier, got {self.user!r}"
            )
        if not self.password:
            raise ConfigError(
                "GRAFANA_CLICKHOUSE_PASSWORD is required when CLICKHOUSE_HTTP_BIND is set"
            )
        if self.max_execution_time <= 0 or self.max_result_rows < 1 or self.max_memory_usage < 1:
            raise ConfigError(
                "CLICKHOUSE_HTTP_MAX_EXECUTION_TIME, CLICKHOUSE_HTTP_MAX_RESULT_ROWS and "
                "CLICKHOUSE_HTTP_MAX_MEMORY_USAGE must be positive"
            )


@dataclass(frozen=True)
class Config:
    clickhouse_url: str
    admin_token: str
    kafka_bootstrap: str = "127.0.0.1:9092"
    clickhouse_database: str = "switchboard"
    topics: Topics = field(default_factory=Topics)
    bind: str = "127.0.0.1:8083"
    group_id: str = "analytics"
    # Each batch pays ~60 ms of fixed insert cost in chDB (call_facts' three views
    # most of it): 20,000 events a batch ingest about a third faster than 5,000
    # for ~30 MB more memory; 50,000 gained little more for ~400 MB (README).
    batch_size: int = 20_000
    batch_seconds: float = 0.5
    # Past this share of invalid messages within the last `invalid_window`
    # messages the consumer stops instead of draining the topic into the DLQ.
    max_invalid_ratio: float = 0.5
    invalid_window: int = 100
    # Client API keys are resolved through router's introspection endpoint.
    router_url: str = "http://127.0.0.1:8082"
    key_cache_seconds: float = 30.0
    prices: Prices = field(default_factory=Prices)
    lead_thresholds: LeadThresholds = field(default_factory=LeadThresholds)
    # Rows older than this many days are dropped by ClickHouse TTL; 0 keeps all.
    retention_days: int = 0
    # The secret of the tokens that stand for erased callers (switchboard.privacy).
    privacy_token_secret: str = DEV_TOKEN_SECRET
    clickhouse_http: ClickHouseHttp = field(default_factory=ClickHouseHttp)
    # Off (ANALYTICS_CONSUMER=off, or --api-only): this process only answers reads.
    run_consumer: bool = True

    def __post_init__(self) -> None:
        check_clickhouse_url(self.clickhouse_url)
        if not _IDENTIFIER.match(self.clickhouse_database):
            raise ConfigError(
                "CLICKHOUSE_DATABASE must be a plain identifier (letters, digits, _), "
                f"got {self.clickhouse_database!r}"
            )
        if not self.admin_token:
            raise ConfigError("ADMIN_API_TOKEN is required but not set")
        if self.batch_size < 1:
            raise ConfigError(f"ANALYTICS_BATCH_SIZE must be at least 1, got {self.batch_size}")
        if self.batch_seconds <= 0:
            raise ConfigError(f"ANALYTICS_BATCH_SECONDS must be positive, got {self.batch_seconds}")
        if not 0 < self.max_invalid_ratio <= 1:
            raise ConfigError(
                f"ANALYTICS_MAX_INVALID_RATIO must be in (0, 1], got {self.max_invalid_ratio}"
            )
        if self.invalid_window < 1:
            raise ConfigError(
                f"ANALYTICS_INVALID_WINDOW must be at least 1, got {self.invalid_window}"
            )
        host, _, port = self.bind.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"ANALYTICS_BIND must be host:port, got {self.bind!r}")
        router = urlsplit(self.router_url)
        if router.scheme not in ("http", "https") or not router.hostname:
            raise ConfigError(f"ROUTER_URL must be http(s)://host:port, got {self.router_url!r}")
        self.prices.check()
        lead = self.lead_thresholds
        if not 0 < lead.short_sec < lead.long_sec or lead.qualified_sec < 0:
            raise ConfigError(
                "ANALYTICS_LEAD_SHORT_SEC must be positive and below ANALYTICS_LEAD_LONG_SEC, "
                "ANALYTICS_LEAD_QUALIFIED_SEC not negative"
            )
        if self.retention_days < 0:
            raise ConfigError(
                f"ANALYTICS_RETENTION_DAYS must be 0 (keep all) or more, got {self.retention_days}"
            )
        self.clickhouse_http.check(self.embedded)

    @property
    def embedded(self) -> bool:
        """True when ClickHouse is chDB in this process (one process per folder)."""
        return self.clickhouse_url.startswith("chdb:")

    @classmethod
    def from_env(cls) -> Config:
        return cls(
            clickhouse_url=env_str("CLICKHOUSE_URL", default_clickhouse_url()),
            clickhouse_database=env_str("CLICKHOUSE_DATABASE", "switchboard"),
            admin_token=admin_token(),
            kafka_bootstrap=env_str("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            topics=Topics.from_env(),
            bind=env_str("ANALYTICS_BIND", "127.0.0.1:8083"),
            group_id=env_str("ANALYTICS_GROUP_ID", "analytics"),
            batch_size=env_int("ANALYTICS_BATCH_SIZE", 20_000),
            batch_seconds=env_float("ANALYTICS_BATCH_SECONDS", 0.5),
            max_invalid_ratio=env_float("ANALYTICS_MAX_INVALID_RATIO", 0.5),
            invalid_window=env_int("ANALYTICS_INVALID_WINDOW", 100),
            router_url=env_str("ROUTER_URL", "http://127.0.0.1:8082"),
            key_cache_seconds=env_float("ANALYTICS_KEY_CACHE_SECONDS", 30.0),
            prices=Prices.from_env(),
            lead_thresholds=LeadThresholds(
                short_sec=env_int("ANALYTICS_LEAD_SHORT_SEC", 30),
                long_sec=env_int("ANALYTICS_LEAD_LONG_SEC", 120),
                qualified_sec=env_int("ANALYTICS_LEAD_QUALIFIED_SEC", 30),
            ),
            retention_days=env_int("ANALYTICS_RETENTION_DAYS", 0),
            privacy_token_secret=privacy.token_secret(),
            clickhouse_http=ClickHouseHttp.from_env(),
            run_consumer=env_bool("ANALYTICS_CONSUMER", True),
        )


def check_clickhouse_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "chdb":
        if not parts.path.startswith("/") or parts.netloc:
            raise ConfigError(
                f"CLICKHOUSE_URL for chDB must be chdb:///absolute/folder, got {url!r}"
            )
        return
    if parts.scheme in ("http", "https", "clickhouse", "clickhouses") and parts.hostname:
        return
    raise ConfigError(
        f"CLICKHOUSE_URL must be chdb:///absolute/folder or http(s)://host:port, got {url!r}"
    )
