"""The router's configuration, read from the environment once at start-up.

`Config.from_env()` fails with a `ConfigError` naming the bad variable, so a
misconfigured router stops before it answers a single call. Tests build
`Config(...)` directly with the URLs of their own infrastructure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from services.router.dialing import (
    DEFAULT_COUNTRY,
    DEFAULT_DAILY_OUTBOUND_CAP,
    account_country,
    parse_countries,
)
from services.router.directory import E164
from services.router.management import DEFAULT_PURGE_GRACE_DAYS
from services.router.twiml import NOT_IN_SERVICE
from services.router.webhooks import message_twimlet
from switchboard import privacy, settings
from switchboard.clock import clock_url_from_env
from switchboard.kafka import Topics
from switchboard.privacy import DEV_TOKEN_SECRET
from switchboard.settings import (
    ConfigError,
    env_bool,
    env_float,
    env_int,
    env_str,
    public_base_url,
)

DEFAULT_BIND = "127.0.0.1:8082"
DEFAULT_KAFKA = "127.0.0.1:9092"
# What a caller of a number in the pool hears when Twilio cannot reach this
# deployment at all: what the deployment would say, from Twilio's own Message
# twimlet, which needs no server of ours. (Assigned numbers fall back to the
# Forward twimlet dialing their client's phone: webhooks.py.)
DEFAULT_VOICE_FALLBACK_URL = message_twimlet(NOT_IN_SERVICE)


@dataclass(frozen=True)
class Config:
    database_url: str
    admin_token: str
    kafka_bootstrap: str = DEFAULT_KAFKA
    topics: Topics = field(default_factory=Topics)
    bind: str = DEFAULT_BIND
    public_base_url: str = "http://127.0.0.1:8080"
    dial_timeout_seconds: int = 20
    # Ingress gives the router ROUTER_TIMEOUT_SECONDS (1.5 s by default) for the
    # whole answer, so waiting for Kafka must stay well below that.
    publish_timeout_seconds: float = 1.0
    refresh_interval_seconds: float = 30.0
    # Without credentials the Twilio endpoints answer 503 twilio_not_configured.
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    # Twilio's fetch of an outbound call's TwiML must carry X-Twilio-Signature
    # (TWILIO_VALIDATE_SIGNATURES, as ingress; development may turn it off).
    validate_signatures: bool = True
    # Where the twilio library sends its requests instead of api.twilio.com.
    twilio_api_base_url: str | None = None
    twilio_timeout_seconds: float = 10.0
    # The Voice Fallback URL of numbers in the pool (TWILIO_VOICE_FALLBACK_URL).
    voice_fallback_url: str = DEFAULT_VOICE_FALLBACK_URL
    outbox_interval_seconds: float = 2.0
    # How often the Twilio sync looks for due work besides being woken by
    # changes, and the longest it waits before retrying a number Twilio refused.
    twilio_sync_interval_seconds: float = 5.0
    twilio_sync_max_backoff_seconds: float = 600.0
    # A caller's erasure and export (privacy.py): the token secret shared with
    # analytics, and the services router asks over HTTP.
    privacy_token_secret: str = DEV_TOKEN_SECRET
    ingress_url: str = "http://127.0.0.1:8081"
    analytics_url: str = "http://127.0.0.1:8083"
    recordings_url: str = "http://127.0.0.1:8084"
    reporting_url: str = "http://127.0.0.1:8085"
    privacy_timeout_seconds: float = 30.0
    # The account's main number (TWILIO_PHONE_NUMBER): any client may call from
    # it, and outbound calls without a fromNumber do.
    main_number: str | None = None
    # Days after a client's deletion before its calls and recordings are purged.
    purge_grace_days: int = DEFAULT_PURGE_GRACE_DAYS
    # Toll fraud: the countries forwardTo and outbound calls may reach
    # (ROUTER_ALLOWED_COUNTRIES, default the country of TWILIO_PHONE_NUMBER,
    # else US), and the outbound calls a client may place per UTC day unless
    # its own dailyOutboundCap says otherwise (ROUTER_DAILY_OUTBOUND_CAP).
    allowed_countries: frozenset[str] = frozenset({DEFAULT_COUNTRY})
    daily_outbound_cap: int = DEFAULT_DAILY_OUTBOUND_CAP
    # SWITCHBOARD_ENV=development: a client's alert webhook may be http and may
    # point at private addresses (local receivers in make run and the tests).
    development: bool = False
    # Development only (ROUTER_CLOCK_URL): where business hours read the time,
    # e.g. the Twilio simulator's GET /sim/clock; None: real time (clock.py).
    clock_url: str | None = None

    @property
    def twilio_configured(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token)

    @classmethod
    def from_env(cls) -> Config:
        database_url = env_str("DATABASE_URL")
        if not database_url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("DATABASE_URL must be a postgresql:// URL")
        admin_token = settings.admin_token()
        bind = env_str("ROUTER_BIND", DEFAULT_BIND)
        host, sep, port = bind.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ConfigError(f"ROUTER_BIND must be host:port, got {bind!r}")
        dial_timeout = env_int("DIAL_TIMEOUT_SECONDS", 20)
        if not 5 <= dial_timeout <= 600:
            raise ConfigError(
                f"DIAL_TIMEOUT_SECONDS must be 5..600 (Twilio's range), got {dial_timeout}"
            )
        publish_timeout = env_float("ROUTER_PUBLISH_TIMEOUT_SECONDS", 1.0)
        if publish_timeout <= 0:
            raise ConfigError("ROUTER_PUBLISH_TIMEOUT_SECONDS must be positive")
        refresh_interval = env_float("ROUTER_REFRESH_SECONDS", 30.0)
        if refresh_interval <= 0:
            raise ConfigError("ROUTER_REFRESH_SECONDS must be positive")
        account_sid = env_str("TWILIO_ACCOUNT_SID", "") or None
        auth_token = env_str("TWILIO_AUTH_TOKEN", "") or None
        if bool(account_sid) != bool(auth_token):
            raise ConfigError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set together")
        validate = env_bool("TWILIO_VALIDATE_SIGNATURES", True)
        settings.require_in_production(
            validate, "TWILIO_VALIDATE_SIGNATURES=false turns off X-Twilio-Signature checks"
        )
        api_base = env_str("TWILIO_API_BASE_URL", "") or None
        if api_base is not None:
            http_url("TWILIO_API_BASE_URL", api_base)
        fallback = env_str("TWILIO_VOICE_FALLBACK_URL", DEFAULT_VOICE_FALLBACK_URL)
        http_url("TWILIO_VOICE_FALLBACK_URL", fallback)
        main_number = env_str("TWILIO_PHONE_NUMBER", "") or None
        if main_number is not None and not E164.fullmatch(main_number):
            raise ConfigError(f"TWILIO_PHONE_NUMBER must be an E.164 number, got {main_number!r}")
        default_country = account_country(main_number)
        try:
            allowed_countries = parse_countries(
                env_str("ROUTER_ALLOWED_COUNTRIES", default_country)
            )
        except ValueError as err:
            raise ConfigError(f"ROUTER_ALLOWED_COUNTRIES: {err}") from None
        daily_cap = env_int("ROUTER_DAILY_OUTBOUND_CAP", DEFAULT_DAILY_OUTBOUND_CAP)
        if daily_cap < 0:
            raise ConfigError(f"ROUTER_DAILY_OUTBOUND_CAP must be 0 or more, got {daily_cap}")
        grace = env_int("ROUTER_CLIENT_PURGE_GRACE_DAYS", DEFAULT_PURGE_GRACE_DAYS)
        if grace < 0:
            raise ConfigError(f"ROUTER_CLIENT_PURGE_GRACE_DAYS must be 0 or more, got {grace}")
        clock_url = clock_url_from_env()
        return cls(
            database_url=database_url,
            admin_token=admin_token,
            kafka_bootstrap=env_str("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_KAFKA),
            topics=Topics.from_env(),
            bind=bind,
            public_base_url=public_base_url(),
            dial_timeout_seconds=dial_timeout,
            publish_timeout_seconds=publish_timeout,
            refresh_interval_seconds=refresh_interval,
            twilio_account_sid=account_sid,
            twilio_auth_token=auth_token,
            validate_signatures=validate,
            twilio_api_base_url=api_base.rstrip("/") if api_base else None,
            voice_fallback_url=fallback,
            allowed_countries=allowed_countries,
            daily_outbound_cap=daily_cap,
            privacy_token_secret=privacy.token_secret(),
            purge_grace_days=grace,
            ingress_url=service_url("INGRESS_URL", "http://127.0.0.1:8081"),
            analytics_url=service_url("ANALYTICS_URL", "http://127.0.0.1:8083"),
            recordings_url=service_url("RECORDINGS_URL", "http://127.0.0.1:8084"),
            reporting_url=service_url("REPORTING_URL", "http://127.0.0.1:8085"),
            main_number=main_number,
            development=settings.environment() == settings.DEVELOPMENT,
            clock_url=clock_url,
        )


def service_url(name: str, default: str) -> str:
    """Another service's base URL from `name`, checked, without a trailing slash."""
    return http_url(name, env_str(name, default)).rstrip("/")


def http_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an http(s) URL, got {value!r}")
    return value
