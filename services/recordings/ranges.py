"""HTTP byte ranges for media responses (pure: a Range header and a size in, a span out).

Browsers seek in an <audio> element with `Range: bytes=<start>-[<end>]` and
ask for the tail with `bytes=-<n>`. One range is served as 206 with
Content-Range; a request for several ranges gets the whole file (200), which
RFC 9110 allows. A range that is malformed or starts past the end is
`Unsatisfiable` (416, with `Content-Range: bytes */<size>`). Other units are
ignored. Positions are ASCII digits only (`str.isdigit` and `int` also take
"²" or "٣"); a position too long to be a real offset counts as past any end.
"""

from __future__ import annotations

from dataclasses import dataclass

# More digits than any file size has: read as "past the end" instead of
# converting an arbitrarily long number (int() refuses past 4,300 digits).
MAX_POSITION_DIGITS = 18
BEYOND_ANY_END = 10**MAX_POSITION_DIGITS


class Unsatisfiable(Exception):
    """The Range header cannot be served for this representation (416)."""


@dataclass(frozen=True)
class Span:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


def parse_range(header: str | None, size: int) -> Span | None:
    """The one span to serve, or None for the whole representation."""
    if header is None or not header.strip():
        return None
    unit, sep, spec = header.strip().partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts:
        raise Unsatisfiable("empty byte range set")
    spans = [_one(part, size) for part in parts]
    if len(spans) > 1:
        return None
    return spans[0]


def _one(part: str, size: int) -> Span:
    first, sep, last = part.partition("-")
    if not sep:
        raise Unsatisfiable(f"malformed byte range {part!r}")
    first, last = first.strip(), last.strip()
    if first == "":
        suffix = _position(last)
        if suffix is None or suffix == 0:
            raise Unsatisfiable(f"malformed suffix range {part!r}")
        if size == 0:
            raise Unsatisfiable("empty representation")
        return Span(max(0, size - suffix), size - 1)
    start = _position(first)
    end = _position(last) if last else size - 1
    if start is None or end is None:
        raise Unsatisfiable(f"malformed byte range {part!r}")
    if start >= size:
        raise Unsatisfiable(f"byte range starts past the end ({size} bytes)")
    if end < start:
        raise Unsatisfiable(f"byte range ends before it starts: {part!r}")
    return Span(start, min(end, size - 1))


def _position(text: str) -> int | None:
    """A byte position written in ASCII digits, or None when it is not one."""
    if not text or not text.isascii() or not text.isdigit():
        return None
    if len(text.lstrip("0")) > MAX_POSITION_DIGITS:
        return BEYOND_ANY_END
    return int(text)
