"""Twilio simulator settings, read once from the environment at start-up.

TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN are the credentials the simulator
accepts on its REST API and signs its webhooks with, so the services point at
it with the same two variables they would use for Twilio.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from switchboard.settings import ConfigError, env_float, env_str

DEV_ACCOUNT_SID = "AC00000000000000000000000000000000"
DEV_AUTH_TOKEN = "dev-auth-token"
_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")


@dataclass(frozen=True)
class Config:
    account_sid: str
    auth_token: str
    bind: str
    public_url: str
    callback_delay: float = 0.0
    webhook_timeout: float = 15.0

    @classmethod
    def from_env(cls) -> Config:
        account_sid = env_str("TWILIO_ACCOUNT_SID", DEV_ACCOUNT_SID)
        if not _ACCOUNT_SID.match(account_sid):
            raise ConfigError(
                f"TWILIO_ACCOUNT_SID must be 'AC' and 32 hex digits, got {account_sid!r}"
            )
        bind = env_str("TWILIO_SIM_BIND", "127.0.0.1:8090")
        host, sep, port = bind.rpartition(":")
        if not sep or not port.isdigit():
            raise ConfigError(f"TWILIO_SIM_BIND must be host:port, got {bind!r}")
        if host in ("", "0.0.0.0", "::", "[::]"):
            host = "127.0.0.1"
        delay = env_float("TWILIO_SIM_CALLBACK_DELAY_SECONDS", 0.0)
        if delay < 0:
            raise ConfigError("TWILIO_SIM_CALLBACK_DELAY_SECONDS must not be negative")
        timeout = env_float("TWILIO_SIM_WEBHOOK_TIMEOUT_SECONDS", 15.0)
        if timeout <= 0:
            raise ConfigError("TWILIO_SIM_WEBHOOK_TIMEOUT_SECONDS must be positive")
        return cls(
            account_sid=account_sid,
            auth_token=env_str("TWILIO_AUTH_TOKEN", DEV_AUTH_TOKEN),
            bind=bind,
            public_url=env_str("TWILIO_SIM_PUBLIC_URL", f"http://{host}:{port}").rstrip("/"),
            callback_delay=delay,
            webhook_timeout=timeout,
        )
