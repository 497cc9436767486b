"""Crafted Range headers and JSON bodies get a 4xx (or the file), never a 500.

`str.isdigit` and `int` take "²" and "٣", and `int` refuses numbers past
4,300 digits: `bytes=\\xb2-` once ended in a 500. Byte positions are ASCII
digits only now, and one longer than any file size is past the end. The
media route and the erasure route (JSON) run in the real recordings app
on a real stored recording; hypothesis draws the Range headers from
tests/fuzz/bad_input.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from hypothesis import given

from services.recordings.app import Runtime, create_app
from services.recordings.ranges import Span, Unsatisfiable, parse_range
from tests.fuzz.bad_input import crafted_ranges, deeply_nested_bodies
from tests.fuzz.conftest import FUZZ
from tests.recordings import recording_events as ev
from tests.recordings.conftest import ADMIN, Sim
from tests.recordings.seeding import stored_recording

ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}
CRAFTED = [
    "bytes=\xb2-",
    "bytes=\xb2-\xb3",
    "bytes=-\xb9",
    "bytes=٣-5",
    "bytes=0-٣",
    "bytes=-٣",
    "bytes=３-5",
    "bytes=99999999999999999999999-",
    "bytes=9" + "9" * 5000 + "-",
    "bytes=" + "1" * 5000 + "-" + "2" * 5000,
]


@pytest.mark.parametrize("header", CRAFTED)
def test_non_ascii_or_huge_positions_are_unsatisfiable(header: str) -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(header, 100)


@pytest.mark.parametrize(
    ("header", "span"),
    [
        ("bytes=0-99999999999999999999999", Span(0, 99)),
        ("bytes=0-" + "9" * 5000, Span(0, 99)),
        ("bytes=-" + "9" * 5000, Span(0, 99)),
        ("bytes=" + "0" * 40 + "5-9", Span(5, 9)),
    ],
)
def test_a_huge_end_or_suffix_is_clamped_to_the_file(header: str, span: Span) -> None:
    assert parse_range(header, 100) == span


@pytest.fixture
def http(runtime: Runtime) -> Iterator[FlaskClient]:
    app = create_app(runtime.config, run_worker=False, run_housekeeping=False, runtime=runtime)
    yield app.test_client()


@pytest.fixture
def media_url(runtime: Runtime, sim: Sim, http: FlaskClient) -> tuple[str, int]:
    recording = stored_recording(runtime, sim, ev.new_client_id())
    reply = http.get(f"/api/twilio/recording/{recording.call_sid}", headers=ADMIN_HEADERS)
    assert reply.status_code == 200, reply.get_json()
    parts = urlsplit(reply.get_json()["recordings"][0]["playbackUrl"])
    return f"{parts.path}?{parts.query}", int(recording.bytes or 0)


@pytest.mark.parametrize("header", CRAFTED)
def test_crafted_ranges_on_the_media_route_are_416(
    http: FlaskClient, media_url: tuple[str, int], header: str
) -> None:
    url, size = media_url
    reply = http.get(url, headers={"Range": header})
    assert reply.status_code == 416
    assert reply.headers["Content-Range"] == f"bytes */{size}"


def test_fuzzed_ranges_on_the_media_route_never_get_a_5xx(
    http: FlaskClient, media_url: tuple[str, int]
) -> None:
    url, size = media_url

    @FUZZ
    @given(crafted_ranges())
    def served_or_refused(header: str) -> None:
        reply = http.get(url, headers={"Range": header})
        assert reply.status_code in (200, 206, 416), (header, reply.status_code)
        if reply.status_code == 206:
            first, last = reply.headers["Content-Range"].split(" ")[1].split("/")[0].split("-")
            assert 0 <= int(first) <= int(last) < size

    served_or_refused()


def test_deeply_nested_erasure_bodies_are_400(http: FlaskClient) -> None:
    path = f"/api/clients/{ev.new_client_id()}/recordings/erasure"

    @FUZZ
    @given(deeply_nested_bodies())
    def refused(body: bytes) -> None:
        reply = http.post(
            path, data=body, headers={**ADMIN_HEADERS, "Content-Type": "application/json"}
        )
        assert reply.status_code == 400, (body[:100], reply.data[:300])
        assert reply.get_json()["error"]["code"] == "invalid_body"

    refused()
