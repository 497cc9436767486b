"""The irreversible token that stands for an erased caller's number in every store.

A caller's erasure replaces the number with `caller_token(secret, number)`:
an HMAC under a secret shared by the services (PRIVACY_TOKEN_SECRET), so the
same number always gives the same token (counts per caller stay right, and a
replayed event can be recognised) while nobody without the secret can turn a
token back into a number by hashing every possible phone number.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from functools import lru_cache

from switchboard.settings import env_str, require_in_production

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
TOKEN_PREFIX = "erased:"
# The development secret; production refuses to start with it (config checks).
DEV_TOKEN_SECRET = "switchboard-dev-privacy-token-secret"


def token_secret() -> str:
    """PRIVACY_TOKEN_SECRET; production refuses the public development value."""
    secret = env_str("PRIVACY_TOKEN_SECRET", DEV_TOKEN_SECRET)
    require_in_production(
        secret != DEV_TOKEN_SECRET, "PRIVACY_TOKEN_SECRET is not set (or is the development one)"
    )
    return secret


@lru_cache(maxsize=65536)
def caller_token(secret: str, number: str) -> str:
    """The token of `number`: never contains the number, the same for the same number."""
    digest = hmac.new(secret.encode(), number.encode(), hashlib.sha256).hexdigest()
    return TOKEN_PREFIX + digest[:32]
