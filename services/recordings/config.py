"""The recordings service's configuration, read from the environment once at start-up.

`Config.from_env()` raises `ConfigError` naming the bad variable, so a
misconfigured process stops before it touches Kafka, PostgreSQL, storage or
Twilio. Tests build `Config(...)` directly with their own infrastructure.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from switchboard import privacy, settings
from switchboard.kafka import Topics
from switchboard.privacy import DEV_TOKEN_SECRET
from switchboard.settings import (
    ConfigError,
    env_bool,
    env_float,
    env_int,
    env_str,
    public_base_url,
    require_in_production,
)

DEFAULT_BIND = "127.0.0.1:8084"
MEDIA_FORMATS = ("wav", "mp3")
_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
S3_ENCRYPTIONS = ("AES256", "aws:kms")
# The folder store's key in development when RECORDINGS_ENCRYPTION_KEYS is unset:
# fixed (so a `make run` folder stays readable across restarts) and public, so
# production requires keys of its own.
DEV_ENCRYPTION_KEY_ID = "dev"
DEV_ENCRYPTION_KEY = hashlib.sha256(b"switchboard development recordings key").digest()


# The link-signing key in development when RECORDINGS_LINK_SECRET is unset: fixed, so
# links survive a restart of `make run`. Production requires a secret of its own
# (never one derived from the admin token, whose leak would then forge links too).
DEV_LINK_SECRET = "switchboard-development-link-secret"


def link_secret(admin_token: str) -> str:
    """RECORDINGS_LINK_SECRET; in production set, and neither the dev secret nor the admin token."""
    secret = env_str("RECORDINGS_LINK_SECRET", "")
    require_in_production(bool(secret), "RECORDINGS_LINK_SECRET is not set")
    require_in_production(
        secret != DEV_LINK_SECRET, "RECORDINGS_LINK_SECRET is the development secret"
    )
    require_in_production(
        secret != admin_token, "RECORDINGS_LINK_SECRET must not be the ADMIN_API_TOKEN"
    )
    return secret or DEV_LINK_SECRET


@dataclass(frozen=True)
class S3Settings:
    bucket: str
    endpoint_url: str | None = None
    region: str = "us-east-1"
    prefix: str = ""
    # Asked for on every write, whatever the bucket's default encryption is.
    server_side_encryption: str = "AES256"
    kms_key_id: str | None = None

    def __post_init__(self) -> None:
        if self.server_side_encryption not in S3_ENCRYPTIONS:
            raise ConfigError(
                "RECORDINGS_S3_SERVER_SIDE_ENCRYPTION must be AES256 or aws:kms, "
                f"got {self.server_side_encryption!r}"
            )
        if self.kms_key_id and self.server_side_encryption != "aws:kms":
            raise ConfigError(
                "RECORDINGS_S3_KMS_KEY_ID needs RECORDINGS_S3_SERVER_SIDE_ENCRYPTION=aws:kms"
            )


def encryption_keys(raw: str) -> tuple[tuple[str, bytes], ...]:
    """RECORDINGS_ENCRYPTION_KEYS, `id:base64key,id:base64key`, as (id, key) pairs."""
    pairs = []
    for item in raw.split(","):
        key_id, sep, encoded = item.strip().partition(":")
        if not sep or not _KEY_ID.match(key_id):
            raise ConfigError(
                "RECORDINGS_ENCRYPTION_KEYS must be id:base64key pairs separated by commas, "
                "ids of letters, digits, '.', '_' or '-'"
            )
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"RECORDINGS_ENCRYPTION_KEYS: key {key_id!r} is not base64") from None
        pairs.append((key_id, key))
    return tuple(pairs)


@dataclass(frozen=True)
class Config:
    database_url: str
    admin_token: str
    twilio_account_sid: str
    twilio_auth_token: str
    link_secret: str
    kafka_bootstrap: str = "127.0.0.1:9092"
    topics: Topics = field(default_factory=Topics)
    bind: str = DEFAULT_BIND
    router_url: str = "http://127.0.0.1:8082"
    public_base_url: str = "http://127.0.0.1:8080"
    # None: requests go where Twilio's URLs point (api.twilio.com); set, every
    # REST and media request goes to this scheme://host instead (the simulator).
    twilio_api_base_url: str | None = None
    media_format: str = "wav"
    storage_dir: str = os.path.abspath(os.path.join(".run", "recordings"))
    s3: S3Settings | None = None
    # The folder store's keys as (key id, AES key) pairs, and the id new files are
    # sealed with; older ids stay here for as long as files sealed with them exist.
    encryption_keys: tuple[tuple[str, bytes], ...] = ((DEV_ENCRYPTION_KEY_ID, DEV_ENCRYPTION_KEY),)
    encryption_key_id: str = DEV_ENCRYPTION_KEY_ID
    link_ttl_seconds: int = 900
    retention_interval_seconds: float = 3600.0
    # Used for clients whose settings never arrived; 0 keeps recordings until deleted.
    default_retention_days: int = 0
    default_delete_from_twilio: bool = False
    group_id: str = "recordings"
    download_attempts: int = 4
    download_backoff_seconds: float = 1.0
    download_timeout_seconds: float = 30.0
    publish_timeout_seconds: float = 10.0
    # The secret of the tokens that stand for erased callers (switchboard.privacy).
    privacy_token_secret: str = DEV_TOKEN_SECRET

    def __post_init__(self) -> None:
        if not self.database_url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("RECORDINGS_DATABASE_URL / DATABASE_URL must be a postgresql:// URL")
        if not self.admin_token:
            raise ConfigError("ADMIN_API_TOKEN is required but not set")
        if not _ACCOUNT_SID.match(self.twilio_account_sid):
            raise ConfigError(
                "TWILIO_ACCOUNT_SID must be 'AC' and 32 hex digits, "
                f"got {self.twilio_account_sid!r}"
            )
        if not self.twilio_auth_token:
            raise ConfigError("TWILIO_AUTH_TOKEN is required but not set")
        if len(self.link_secret) < 16:
            raise ConfigError("RECORDINGS_LINK_SECRET must be at least 16 characters")
        host, sep, port = self.bind.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ConfigError(f"RECORDINGS_BIND must be host:port, got {self.bind!r}")
        if self.twilio_api_base_url is not None:
            parts = urlsplit(self.twilio_api_base_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ConfigError(
                    f"TWILIO_API_BASE_URL must be an http(s) URL, got {self.twilio_api_base_url!r}"
                )
        ids = [key_id for key_id, _ in self.encryption_keys]
        if len(set(ids)) != len(ids):
            raise ConfigError("RECORDINGS_ENCRYPTION_KEYS names a key id twice")
        for key_id, key in self.encryption_keys:
            if len(key) not in (16, 24, 32):
                raise ConfigError(
                    f"RECORDINGS_ENCRYPTION_KEYS: key {key_id!r} must be 16, 24 or 32 bytes "
                    f"(AES-128/192/256), got {len(key)}"
                )
        if self.encryption_key_id not in ids:
            raise ConfigError(
                f"RECORDINGS_ENCRYPTION_KEY_ID {self.encryption_key_id!r} is not one of the "
                f"RECORDINGS_ENCRYPTION_KEYS ({', '.join(ids)})"
            )
        if self.media_format not in MEDIA_FORMATS:
            raise ConfigError(
                f"RECORDINGS_MEDIA_FORMAT must be wav or mp3, got {self.media_format!r}"
            )
        if not 1 <= self.link_ttl_seconds <= 7 * 24 * 3600:
            raise ConfigError("RECORDINGS_LINK_TTL_SECONDS must be between 1 and 604800")
        if self.retention_interval_seconds <= 0:
            raise ConfigError("RECORDINGS_RETENTION_INTERVAL_SECONDS must be positive")
        if self.default_retention_days < 0:
            raise ConfigError("RECORDINGS_DEFAULT_RETENTION_DAYS must be 0 (keep) or more")
        if not 1 <= self.download_attempts <= 20:
            raise ConfigError("RECORDINGS_DOWNLOAD_ATTEMPTS must be between 1 and 20")
        if self.download_backoff_seconds < 0:
            raise ConfigError("RECORDINGS_DOWNLOAD_BACKOFF_SECONDS must not be negative")
        if self.download_timeout_seconds <= 0:
            raise ConfigError("RECORDINGS_DOWNLOAD_TIMEOUT_SECONDS must be positive")

    @property
    def storage_kind(self) -> str:
        return "s3" if self.s3 is not None else "folder"

    @classmethod
    def from_env(cls) -> Config:
        database_url = env_str("RECORDINGS_DATABASE_URL", "") or env_str("DATABASE_URL")
        admin_token = settings.admin_token()
        bucket = env_str("RECORDINGS_S3_BUCKET", "")
        s3 = None
        if bucket:
            s3 = S3Settings(
                bucket=bucket,
                endpoint_url=env_str("RECORDINGS_S3_ENDPOINT_URL", "") or None,
                region=env_str("RECORDINGS_S3_REGION", "us-east-1"),
                prefix=env_str("RECORDINGS_S3_PREFIX", "").strip("/"),
                server_side_encryption=env_str("RECORDINGS_S3_SERVER_SIDE_ENCRYPTION", "AES256"),
                kms_key_id=env_str("RECORDINGS_S3_KMS_KEY_ID", "") or None,
            )
        raw_keys = env_str("RECORDINGS_ENCRYPTION_KEYS", "")
        # Only the folder store encrypts with our keys; a bucket encrypts server-side.
        require_in_production(
            bool(raw_keys) or s3 is not None,
            "RECORDINGS_ENCRYPTION_KEYS is not set (the recordings folder is encrypted at rest "
            "with these keys: id:base64key,...; 32 random bytes each)",
        )
        keys = (
            encryption_keys(raw_keys)
            if raw_keys
            else ((DEV_ENCRYPTION_KEY_ID, DEV_ENCRYPTION_KEY),)
        )
        current = env_str("RECORDINGS_ENCRYPTION_KEY_ID", "")
        if not current:
            if len(keys) > 1:
                raise ConfigError(
                    "RECORDINGS_ENCRYPTION_KEY_ID must name the current key when "
                    "RECORDINGS_ENCRYPTION_KEYS holds several"
                )
            current = keys[0][0]
        return cls(
            database_url=database_url,
            admin_token=admin_token,
            twilio_account_sid=env_str("TWILIO_ACCOUNT_SID"),
            twilio_auth_token=env_str("TWILIO_AUTH_TOKEN"),
            link_secret=link_secret(admin_token),
            kafka_bootstrap=env_str("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            topics=Topics.from_env(),
            bind=env_str("RECORDINGS_BIND", DEFAULT_BIND),
            router_url=env_str("ROUTER_URL", "http://127.0.0.1:8082").rstrip("/"),
            public_base_url=public_base_url(),
            twilio_api_base_url=env_str("TWILIO_API_BASE_URL", "").rstrip("/") or None,
            media_format=env_str("RECORDINGS_MEDIA_FORMAT", "wav").lower(),
            storage_dir=os.path.abspath(
                env_str("RECORDINGS_STORAGE_DIR", os.path.join(".run", "recordings"))
            ),
            s3=s3,
            link_ttl_seconds=env_int("RECORDINGS_LINK_TTL_SECONDS", 900),
            retention_interval_seconds=env_float("RECORDINGS_RETENTION_INTERVAL_SECONDS", 3600.0),
            default_retention_days=env_int("RECORDINGS_DEFAULT_RETENTION_DAYS", 0),
            default_delete_from_twilio=env_bool("RECORDINGS_DELETE_FROM_TWILIO_DEFAULT", False),
            group_id=env_str("RECORDINGS_GROUP_ID", "recordings"),
            privacy_token_secret=privacy.token_secret(),
            download_attempts=env_int("RECORDINGS_DOWNLOAD_ATTEMPTS", 4),
            download_backoff_seconds=env_float("RECORDINGS_DOWNLOAD_BACKOFF_SECONDS", 1.0),
            download_timeout_seconds=env_float("RECORDINGS_DOWNLOAD_TIMEOUT_SECONDS", 30.0),
            encryption_keys=keys,
            encryption_key_id=current,
        )
