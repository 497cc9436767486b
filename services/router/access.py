"""Client API keys: how they are made, kept and recognised (pure: no I/O).

A key is `sbk_` followed by 256 random bits (URL-safe base64). It is shown
once, when issued; the store keeps only its SHA-256, which is enough for a
key of that entropy (no salt or slow hash needed: there is nothing to guess),
plus a short hint so people can tell their keys apart. Looking a bearer token
up means hashing it and finding the hash among the keys not revoked.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.router.directory import iso_utc, optional_text, refuse_unknown

KEY_PREFIX = "sbk_"
KEY_BYTES = 32
MAX_KEY_LENGTH = 200
MAX_KEY_NAME = 100
HINT_LENGTH = len(KEY_PREFIX) + 4


@dataclass(frozen=True)
class IssuedKey:
    """A key just made: the secret (to show once), its hash and hint (to keep)."""

    key: str
    key_hash: str
    hint: str


@dataclass(frozen=True)
class ApiKey:
    """A key as the store keeps it: never the secret."""

    id: str
    client_id: str
    name: str | None
    hint: str
    created_at: datetime
    revoked_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "keyId": self.id,
            "clientId": self.client_id,
            "name": self.name,
            "hint": self.hint,
            "createdAt": iso_utc(self.created_at),
            "revokedAt": iso_utc(self.revoked_at) if self.revoked_at else None,
        }


def issue_key() -> IssuedKey:
    key = KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)
    return IssuedKey(key=key, key_hash=key_hash(key), hint=key[:HINT_LENGTH] + "...")


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def could_be_key(token: str) -> bool:
    """Cheap pre-check so arbitrary bearer tokens never reach the database."""
    return token.startswith(KEY_PREFIX) and len(token) <= MAX_KEY_LENGTH and token.isascii()


def parse_key_name(body: dict[str, Any]) -> str | None:
    """The optional label of a key being issued: {"name": "..."}."""
    refuse_unknown(body, ("name",))
    return optional_text("name", body.get("name"), MAX_KEY_NAME)
