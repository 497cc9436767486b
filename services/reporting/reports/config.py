"""The client reports' configuration, read from the environment once at start-up.

`ReportsConfig.from_env()` raises `ConfigError` naming the bad variable.
Tests build `ReportsConfig(...)` directly with their own infrastructure.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from switchboard import settings
from switchboard.kafka import Topics
from switchboard.settings import ConfigError, env_float, env_int, env_str


@dataclass(frozen=True)
class ReportsConfig:
    database_url: str
    admin_token: str
    analytics_url: str = "http://127.0.0.1:8083"
    router_url: str = "http://127.0.0.1:8082"
    kafka_bootstrap: str = "127.0.0.1:9092"
    topics: Topics = field(default_factory=Topics)
    group_id: str = "reporting-reports"
    smtp_url: str = "smtp://127.0.0.1:1025"
    mail_from: str = "Switchboard <reports@switchboard.localhost>"
    storage_dir: str = os.path.abspath(os.path.join(".run", "reports"))
    s3_bucket: str | None = None
    s3_prefix: str = "reports/"
    s3_region: str = "us-east-1"
    s3_endpoint_url: str | None = None
    # How often the scheduler looks for due reports, and how far back it catches up.
    interval_seconds: float = 60.0
    catch_up_days: int = 35
    # A claimed build that has not finished within the lease is someone else's to take.
    lease_seconds: float = 300.0
    retry_first_seconds: float = 60.0
    retry_most_seconds: float = 3600.0
    analytics_timeout_seconds: float = 30.0
    # Days alerts, deliveries and text-back calls are kept (0: only clients' retentionDays).
    retention_days: int = 0

    def __post_init__(self) -> None:
        if not self.database_url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("REPORTING_DATABASE_URL / DATABASE_URL must be a postgresql:// URL")
        if not self.admin_token:
            raise ConfigError("ADMIN_API_TOKEN is required but not set")
        for name, url in (("ANALYTICS_URL", self.analytics_url), ("ROUTER_URL", self.router_url)):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ConfigError(f"{name} must be an http(s) URL, got {url!r}")
        if urlsplit(self.smtp_url).scheme not in ("smtp", "smtps", "smtp+starttls"):
            raise ConfigError(
                f"SMTP_URL must be smtp://, smtps:// or smtp+starttls://, got {self.smtp_url!r}"
            )
        if self.interval_seconds <= 0 or self.lease_seconds <= 0:
            raise ConfigError("REPORTS_INTERVAL_SECONDS and REPORTS_LEASE_SECONDS must be > 0")
        if self.catch_up_days < 1:
            raise ConfigError(f"REPORTS_CATCH_UP_DAYS must be at least 1, got {self.catch_up_days}")
        if self.retention_days < 0:
            raise ConfigError(
                f"REPORTING_RETENTION_DAYS must be 0 (keep) or more, got {self.retention_days}"
            )

    @classmethod
    def from_env(cls) -> ReportsConfig:
        database_url = env_str("REPORTING_DATABASE_URL", "") or env_str("DATABASE_URL")
        return cls(
            database_url=database_url,
            admin_token=settings.admin_token(),
            analytics_url=env_str("ANALYTICS_URL", "http://127.0.0.1:8083").rstrip("/"),
            router_url=env_str("ROUTER_URL", "http://127.0.0.1:8082").rstrip("/"),
            kafka_bootstrap=env_str("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            topics=Topics.from_env(),
            # Beside the alerts' group by default, so a deployment that renames one renames both.
            group_id=env_str(
                "REPORTS_GROUP_ID", env_str("REPORTING_GROUP_ID", "reporting") + "-reports"
            ),
            smtp_url=env_str("SMTP_URL", "smtp://127.0.0.1:1025"),
            mail_from=env_str("REPORTING_EMAIL_FROM", cls.mail_from),
            storage_dir=os.path.abspath(env_str("REPORTS_STORAGE_DIR", ".run/reports")),
            s3_bucket=env_str("REPORTS_S3_BUCKET", "") or None,
            s3_prefix=env_str("REPORTS_S3_PREFIX", "reports/"),
            s3_region=env_str("REPORTS_S3_REGION", "us-east-1"),
            s3_endpoint_url=env_str("REPORTS_S3_ENDPOINT_URL", "") or None,
            interval_seconds=env_float("REPORTS_INTERVAL_SECONDS", 60.0),
            catch_up_days=env_int("REPORTS_CATCH_UP_DAYS", 35),
            lease_seconds=env_float("REPORTS_LEASE_SECONDS", 300.0),
            retry_first_seconds=env_float("REPORTS_RETRY_FIRST_SECONDS", 60.0),
            retry_most_seconds=env_float("REPORTS_RETRY_MOST_SECONDS", 3600.0),
            retention_days=env_int("REPORTING_RETENTION_DAYS", 0),
        )
