"""Reading configuration from the environment, once, with clear failures.

Every service builds a frozen dataclass from these helpers at start-up. A bad
value raises `ConfigError` naming the variable, so a misconfigured process
stops before it serves anything. A `.env` file in the working directory is
read first (variables already set win).

SWITCHBOARD_ENV says where a process runs: `production` (the default when
unset) or `development` (`make run`, the tests, the benchmarks). Settings that
are convenient locally but unsafe in front of real callers are refused in
production through `require_in_production`, at start-up, before any
connection is made.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from dotenv import load_dotenv

_loaded = False

DEVELOPMENT = "development"
PRODUCTION = "production"
# The admin token `make run` and the README use: known to everyone, so never
# acceptable where real clients' data lives.
DEV_ADMIN_TOKEN = "dev-admin-token"
MIN_ADMIN_TOKEN_LENGTH = 32


class ConfigError(Exception):
    """A configuration variable is missing or malformed."""


def load_env_file() -> None:
    global _loaded
    if not _loaded:
        load_dotenv(os.environ.get("SWITCHBOARD_ENV_FILE", ".env"), override=False)
        _loaded = True


def env_str(name: str, default: str | None = None) -> str:
    load_env_file()
    value = os.environ.get(name)
    if value is None or value == "":
        if default is None:
            raise ConfigError(f"{name} is required but not set")
        return default
    return value


def env_int(name: str, default: int) -> int:
    raw = env_str(name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


def env_float(name: str, default: float) -> float:
    raw = env_str(name, str(default))
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None


def env_bool(name: str, default: bool) -> bool:
    raw = env_str(name, "true" if default else "false").strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def public_base_url() -> str:
    """The public scheme://host[:port][/prefix] that Twilio calls.

    PUBLIC_BASE_URL wins; otherwise it is derived from TWILIO_WEBHOOK_URL (the
    guide's variable, the full URL of the voice webhook) by cutting the
    `/api/twilio/...` path; otherwise the local edge.
    """
    explicit = env_str("PUBLIC_BASE_URL", "")
    if explicit:
        return explicit.rstrip("/")
    webhook = env_str("TWILIO_WEBHOOK_URL", "")
    if webhook:
        parts = urlsplit(webhook)
        if not parts.scheme or not parts.netloc:
            raise ConfigError(f"TWILIO_WEBHOOK_URL must be an absolute URL, got {webhook!r}")
        path = parts.path
        cut = path.find("/api/twilio/")
        prefix = path[:cut] if cut >= 0 else path
        return f"{parts.scheme}://{parts.netloc}{prefix}".rstrip("/")
    return "http://127.0.0.1:8080"


def environment() -> str:
    """SWITCHBOARD_ENV: `development` or `production` (the default when unset)."""
    value = env_str("SWITCHBOARD_ENV", PRODUCTION).strip().lower()
    if value not in (DEVELOPMENT, PRODUCTION):
        raise ConfigError(f"SWITCHBOARD_ENV must be development or production, got {value!r}")
    return value


def is_production() -> bool:
    return environment() == PRODUCTION


def require_in_production(safe: bool, problem: str) -> None:
    """Refuse an unsafe setting in production; `problem` names the variable.

    Unsafe settings stay possible in development (curl tests without
    signatures, the well-known dev token), so they must be refused where
    real calls arrive rather than removed.
    """
    if not safe and is_production():
        raise ConfigError(
            f"{problem}: refused in production "
            "(SWITCHBOARD_ENV=production, the default when unset; development is for local runs)"
        )


def admin_token() -> str:
    """ADMIN_API_TOKEN; in production neither the development token nor a short one."""
    token = env_str("ADMIN_API_TOKEN")
    require_in_production(token != DEV_ADMIN_TOKEN, "ADMIN_API_TOKEN is the development token")
    require_in_production(
        len(token) >= MIN_ADMIN_TOKEN_LENGTH,
        f"ADMIN_API_TOKEN must be at least {MIN_ADMIN_TOKEN_LENGTH} characters, "
        f"got {len(token)}",
    )
    return token
