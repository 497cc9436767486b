"""The missed-call text-back's own settings, read from the environment at start-up.

Twilio's account is reporting's `Config`; these are what only the text-back
reads. `from_env` raises `ConfigError` naming the bad variable, and
`__main__` calls it before anything starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from switchboard.privacy import DEV_TOKEN_SECRET, token_secret
from switchboard.settings import ConfigError, env_float, env_int


@dataclass(frozen=True)
class TextBackConfig:
    # Alerts older than this (a backlog after an outage) text nobody.
    max_age: timedelta = timedelta(hours=24)
    send_attempts: int = 3
    retry_seconds: float = 2.0
    # Turns an erased caller's number into the token their ledger rows now hold.
    privacy_token_secret: str = DEV_TOKEN_SECRET

    @classmethod
    def from_env(cls) -> TextBackConfig:
        config = cls(
            max_age=timedelta(hours=env_int("REPORTING_TEXTBACK_MAX_AGE_HOURS", 24)),
            send_attempts=env_int("REPORTING_TEXTBACK_SEND_ATTEMPTS", 3),
            retry_seconds=env_float("REPORTING_TEXTBACK_RETRY_SECONDS", 2.0),
            privacy_token_secret=token_secret(),
        )
        if config.max_age <= timedelta(0):
            raise ConfigError("REPORTING_TEXTBACK_MAX_AGE_HOURS must be above 0")
        if config.send_attempts < 1:
            raise ConfigError("REPORTING_TEXTBACK_SEND_ATTEMPTS must be at least 1")
        if config.retry_seconds < 0:
            raise ConfigError("REPORTING_TEXTBACK_RETRY_SECONDS must not be negative")
        return config
