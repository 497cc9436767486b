"""Bearer-token checks shared by every management API.

For now the admin token (ADMIN_API_TOKEN) is the only principal; client API
keys join it with the numbers issue. Comparison is constant-time.
"""

from __future__ import annotations

import hmac

from flask import request

from switchboard.http import ApiError


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require_admin(admin_token: str) -> None:
    """Raise 401 without a token and 403 with a wrong one."""
    token = bearer_token()
    if token is None:
        raise ApiError(401, "unauthorized", "missing Authorization: Bearer <token>")
    if not hmac.compare_digest(token.encode(), admin_token.encode()):
        raise ApiError(403, "forbidden", "token not accepted")
