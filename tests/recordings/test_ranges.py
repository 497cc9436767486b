"""Byte ranges: what an <audio> element asks for is served, nonsense gets 416."""

from __future__ import annotations

import pytest

from services.recordings.ranges import Span, Unsatisfiable, parse_range


@pytest.mark.parametrize(
    "header,span",
    [
        ("bytes=0-", Span(0, 99)),
        ("bytes=0-9", Span(0, 9)),
        ("bytes=10-19", Span(10, 19)),
        ("bytes=90-500", Span(90, 99)),
        ("bytes=-10", Span(90, 99)),
        ("bytes=-500", Span(0, 99)),
        ("bytes=99-99", Span(99, 99)),
        (" Bytes = 5-6 ".replace(" = ", "="), Span(5, 6)),
    ],
)
def test_one_range_is_served_as_that_span(header: str, span: Span) -> None:
    assert parse_range(header, 100) == span


@pytest.mark.parametrize("header", [None, "", "items=0-5", "bytes=0-1,5-6"])
def test_no_range_other_units_and_multiple_ranges_get_the_whole_file(header: str | None) -> None:
    assert parse_range(header, 100) is None


@pytest.mark.parametrize(
    "header",
    [
        "bytes=100-",
        "bytes=200-300",
        "bytes=9-5",
        "bytes=abc",
        "bytes=-0",
        "bytes=",
        "bytes=1-x",
    ],
)
def test_unsatisfiable_or_malformed_ranges_are_refused(header: str) -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(header, 100)


def test_content_range_names_the_span_and_the_full_size() -> None:
    span = Span(10, 19)
    assert span.length == 10
    assert span.content_range(100) == "bytes 10-19/100"
