"""ingress settings, read once from the environment at start-up."""

from __future__ import annotations

from dataclasses import dataclass

from switchboard.clock import clock_url_from_env
from switchboard.kafka import Topics
from switchboard.settings import (
    ConfigError,
    env_bool,
    env_float,
    env_int,
    env_str,
    public_base_url,
    require_in_production,
)

# Below gunicorn's worker timeout (switchboard/serve.py), which restarts a worker that
# has not started serving by then.
MAX_COPY_WAIT = 25.0


@dataclass(frozen=True)
class Config:
    kafka_bootstrap: str
    topics: Topics
    auth_token: str
    validate_signatures: bool
    public_base: str | None
    router_url: str
    router_timeout: float
    publish_timeout: float
    spool_dir: str
    bind: str
    # Guards the internal spool erasure router calls; empty turns that endpoint off.
    admin_token: str = ""
    # Stands in for the AccountSid of an unsigned local test webhook (checks off).
    account_sid: str = ""
    # How long a forwarded call rings, as router dials it (DIAL_TIMEOUT_SECONDS), for
    # calls answered from the routing copy while router is down.
    dial_timeout: int = 20
    # How long a starting worker waits for its routing copy before it serves anyway
    # (under gunicorn's worker timeout); 0 serves at once, /readyz says when it is built.
    copy_wait: float = 0.0
    # Development only: where call flows' "now" is read (switchboard/clock.py); None: real time.
    clock_url: str | None = None

    @classmethod
    def from_env(cls) -> Config:
        validate = env_bool("TWILIO_VALIDATE_SIGNATURES", True)
        require_in_production(
            validate, "TWILIO_VALIDATE_SIGNATURES=false turns off X-Twilio-Signature checks"
        )
        token = env_str("TWILIO_AUTH_TOKEN", "")
        if validate and not token:
            raise ConfigError(
                "TWILIO_AUTH_TOKEN is required to check X-Twilio-Signature "
                "(set TWILIO_VALIDATE_SIGNATURES=false only for local curl tests)"
            )
        # Without a configured public base, the proxy's forwarded headers say
        # which URL Twilio requested.
        configured = env_str("PUBLIC_BASE_URL", "") or env_str("TWILIO_WEBHOOK_URL", "")
        base = public_base_url() if configured else None
        dial_timeout = env_int("DIAL_TIMEOUT_SECONDS", 20)
        if not 5 <= dial_timeout <= 600:
            raise ConfigError(f"DIAL_TIMEOUT_SECONDS must be 5..600, got {dial_timeout}")
        copy_wait = env_float("INGRESS_ROUTING_COPY_WAIT_SECONDS", 20.0)
        if not 0 <= copy_wait <= MAX_COPY_WAIT:
            raise ConfigError(
                f"INGRESS_ROUTING_COPY_WAIT_SECONDS must be 0..{MAX_COPY_WAIT:.0f}"
                f" (a worker that takes longer to start is restarted), got {copy_wait}"
            )
        clock_url = clock_url_from_env()
        return cls(
            clock_url=clock_url,
            kafka_bootstrap=env_str("KAFKA_BOOTSTRAP_SERVERS"),
            topics=Topics.from_env(),
            auth_token=token,
            validate_signatures=validate,
            public_base=base,
            router_url=env_str("ROUTER_URL", "http://127.0.0.1:8082").rstrip("/"),
            router_timeout=env_float("ROUTER_TIMEOUT_SECONDS", 1.5),
            publish_timeout=env_float("INGRESS_PUBLISH_TIMEOUT_SECONDS", 2.0),
            spool_dir=env_str("INGRESS_SPOOL_DIR", ".run/spool"),
            bind=env_str("INGRESS_BIND", "127.0.0.1:8081"),
            admin_token=env_str("ADMIN_API_TOKEN", ""),
            account_sid=env_str("TWILIO_ACCOUNT_SID", ""),
            dial_timeout=dial_timeout,
            copy_wait=copy_wait,
        )
