"""Signed media links: only an untouched link within its lifetime opens the media."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from services.recordings import links

SECRET = "s" * 32
SID = "RE" + "a" * 32


def _args(link: links.MediaLink, secret: str = SECRET) -> dict[str, str]:
    return link.query(secret)


def test_a_fresh_link_verifies_and_says_how_to_serve_it() -> None:
    link = links.mint(SECRET, SID, "attachment", "admin", now=1000, ttl=900)
    assert link.expires == 1900
    verified = links.verify(SECRET, SID, _args(link), now=1899)
    assert verified == link


def test_a_link_stops_working_when_it_expires() -> None:
    link = links.mint(SECRET, SID, "inline", "admin", now=1000, ttl=900)
    with pytest.raises(links.InvalidLink, match="expired"):
        links.verify(SECRET, SID, _args(link), now=1900)


@pytest.mark.parametrize(
    "field,value",
    [
        ("exp", "999999999999"),
        ("disposition", "attachment"),
        ("by", "client:other:key:k1"),
        ("sig", "0" * 64),
    ],
)
def test_changing_any_part_of_a_link_breaks_it(field: str, value: str) -> None:
    link = links.mint(SECRET, SID, "inline", "admin", now=1000, ttl=900)
    args = _args(link)
    args[field] = value
    with pytest.raises(links.InvalidLink):
        links.verify(SECRET, SID, args, now=1001)


def test_a_link_for_one_recording_does_not_open_another() -> None:
    link = links.mint(SECRET, SID, "inline", "admin", now=1000, ttl=900)
    with pytest.raises(links.InvalidLink, match="signature"):
        links.verify(SECRET, "RE" + "b" * 32, _args(link), now=1001)


def test_a_link_signed_with_another_secret_is_rejected() -> None:
    link = links.mint("x" * 32, SID, "inline", "admin", now=1000, ttl=900)
    with pytest.raises(links.InvalidLink):
        links.verify(SECRET, SID, _args(link, "x" * 32), now=1001)


@pytest.mark.parametrize(
    "args", [{}, {"exp": "soon", "disposition": "inline", "by": "a", "sig": "x"}]
)
def test_a_malformed_link_is_rejected_not_crashed_on(args: dict[str, str]) -> None:
    with pytest.raises(links.InvalidLink):
        links.verify(SECRET, SID, args, now=1)


def test_link_url_carries_the_media_path_and_every_signed_field() -> None:
    link = links.mint(SECRET, SID, "inline", "client:c1:key:k1", now=1000, ttl=60)
    url = link.url("https://calls.example.com/", SECRET)
    parts = urlsplit(url)
    assert parts.path == f"/api/recordings/media/{SID}"
    assert links.verify(SECRET, SID, dict(parse_qsl(parts.query)), now=1001) == link


def test_link_whose_signature_has_non_ascii_characters_is_refused_not_an_error() -> None:
    minted = links.mint("secret", "RE1", "inline", "admin", 1000.0, 60)
    args = {**minted.query("secret"), "sig": "s\u0080c\u00ee"}
    with pytest.raises(links.InvalidLink, match="signature"):
        links.verify("secret", "RE1", args, 1001.0)
