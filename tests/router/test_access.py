"""Client API keys: made with enough entropy, kept only as a hash (pure)."""

from __future__ import annotations

import hashlib

import pytest

from services.router.access import could_be_key, issue_key, key_hash, parse_key_name
from switchboard.http import ApiError


def test_issued_key_is_prefixed_random_and_kept_as_its_sha256() -> None:
    first, second = issue_key(), issue_key()
    assert first.key.startswith("sbk_")
    assert len(first.key) >= 4 + 43
    assert first.key != second.key
    assert first.key_hash == hashlib.sha256(first.key.encode()).hexdigest()
    assert first.key_hash == key_hash(first.key)
    assert first.key not in first.hint
    assert first.hint.startswith(first.key[:8])


@pytest.mark.parametrize(
    ("token", "plausible"),
    [("sbk_abc", True), ("test-admin-token", False), ("sbk_" + "a" * 500, False), ("sbk_é", False)],
)
def test_only_plausible_keys_are_looked_up(token: str, plausible: bool) -> None:
    assert could_be_key(token) is plausible


def test_key_name_is_optional_short_text() -> None:
    assert parse_key_name({}) is None
    assert parse_key_name({"name": " reporting "}) == "reporting"
    for body in ({"name": "x" * 101}, {"name": 5}, {"label": "x"}):
        with pytest.raises(ApiError):
            parse_key_name(body)
