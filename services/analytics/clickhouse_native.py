"""ClickHouse's Native format at a client's protocol revision, from chDB's revision-0 output.

A ClickHouse server writes Native over HTTP at the `client_protocol_version`
the client asks for: from revision 1 each block starts with its block info,
and from 54454 each column carries a "custom serialization" flag after its
type. chDB writes only revision 0, and clickhouse-go (Grafana's driver)
decodes at the revision it announced, so `at_revision` rewrites the blocks:
it walks each column's data by its type to find where the next column
starts, and adds the block info and the flags (always 0: plain serialization).
Types whose layout is not walked here raise `UnsupportedType`.
"""

from __future__ import annotations

import re

# Protocol revisions that change the layout of a Native block.
WITH_BLOCK_INFO = 1
WITH_CUSTOM_SERIALIZATION = 54454

# The block info a server writes: field 1 is_overflows=false, field 2 bucket_num=-1, end.
BLOCK_INFO = b"\x01\x00\x02\xff\xff\xff\xff\x00"

_FIXED = {
    "UInt8": 1,
    "Int8": 1,
    "Bool": 1,
    "Enum8": 1,
    "UInt16": 2,
    "Int16": 2,
    "Date": 2,
    "Enum16": 2,
    "BFloat16": 2,
    "UInt32": 4,
    "Int32": 4,
    "Float32": 4,
    "Date32": 4,
    "DateTime": 4,
    "IPv4": 4,
    "Decimal32": 4,
    "Time": 4,
    "UInt64": 8,
    "Int64": 8,
    "Float64": 8,
    "DateTime64": 8,
    "Decimal64": 8,
    "Time64": 8,
    "UInt128": 16,
    "Int128": 16,
    "UUID": 16,
    "IPv6": 16,
    "Decimal128": 16,
    "UInt256": 32,
    "Int256": 32,
    "Decimal256": 32,
}
_INDEX_WIDTHS = (1, 2, 4, 8)
_HAS_ADDITIONAL_KEYS = 1 << 9
_NAMED_ELEMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\s+(.+)$", re.DOTALL)


class UnsupportedType(ValueError):
    """A column type whose Native layout this module does not walk."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def varint(self) -> int:
        shift = result = 0
        while True:
            byte = self.data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result
            shift += 7

    def string(self) -> str:
        size = self.varint()
        start = self.pos
        self.pos += size
        return self.data[start : self.pos].decode()

    def uint64(self) -> int:
        value = int.from_bytes(self.data[self.pos : self.pos + 8], "little")
        self.pos += 8
        return value

    def skip(self, size: int) -> None:
        if self.pos + size > len(self.data):
            raise ValueError("Native data ends inside a column")
        self.pos += size


def split_type(text: str) -> tuple[str, list[str]]:
    """`Name(arg, arg)` as its name and its top-level arguments (raw text)."""
    text = text.strip()
    open_at = text.find("(")
    if open_at < 0 or not text.endswith(")"):
        return text, []
    args, depth, quote, start = [], 0, "", open_at + 1
    for index in range(open_at + 1, len(text) - 1):
        char = text[index]
        if quote:
            if char == "\\":
                continue
            if char == quote and text[index - 1] != "\\":
                quote = ""
        elif char in "'`\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            args.append(text[start:index].strip())
            start = index + 1
    args.append(text[start : len(text) - 1].strip())
    return text[:open_at].strip(), args


def _element_type(element: str) -> str:
    """A Tuple element's type, without the name of a named element (`a UInt8`)."""
    named = _NAMED_ELEMENT.match(element)
    if named and "(" not in element.split(None, 1)[0]:
        return named.group(1)
    return element


def _skip_column(reader: _Reader, type_text: str, rows: int) -> None:
    name, args = split_type(type_text)
    if name in _FIXED:
        reader.skip(_FIXED[name] * rows)
    elif name == "Decimal":
        precision = int(args[0])
        width = 4 if precision <= 9 else 8 if precision <= 18 else 16 if precision <= 38 else 32
        reader.skip(width * rows)
    elif name.startswith("Interval"):
        reader.skip(8 * rows)
    elif name == "String":
        for _ in range(rows):
            reader.skip(reader.varint())
    elif name == "FixedString":
        reader.skip(int(args[0]) * rows)
    elif name == "Nothing":
        reader.skip(rows)
    elif name == "Nullable":
        reader.skip(rows)
        _skip_column(reader, args[0], rows)
    elif name in ("Array", "Map"):
        total = 0
        for _ in range(rows):
            total = reader.uint64()
        inner = args[0] if name == "Array" else f"Tuple({args[0]}, {args[1]})"
        _skip_column(reader, inner, total)
    elif name == "Tuple":
        for element in args:
            _skip_column(reader, _element_type(element), rows)
    elif name == "SimpleAggregateFunction":
        _skip_column(reader, args[-1], rows)
    elif name == "LowCardinality":
        _skip_low_cardinality(reader, args[0], rows)
    else:
        raise UnsupportedType(f"the Native layout of {type_text} is not supported here")


def _skip_low_cardinality(reader: _Reader, inner: str, rows: int) -> None:
    """A LowCardinality column: its key version, then granules of dictionary and indexes."""
    if rows == 0:
        return
    reader.uint64()  # the shared dictionaries' key version
    dictionary_type = split_type(inner)[1][0] if split_type(inner)[0] == "Nullable" else inner
    while rows > 0:
        flags = reader.uint64()
        if flags & _HAS_ADDITIONAL_KEYS:
            _skip_column(reader, dictionary_type, reader.uint64())
        indexes = reader.uint64()
        reader.skip(_INDEX_WIDTHS[flags & 0xFF] * indexes)
        rows -= indexes


def at_revision(native: bytes, revision: int) -> bytes:
    """chDB's revision-0 Native `native` as a server writes it for a client at `revision`."""
    if revision < WITH_BLOCK_INFO or not native:
        return native
    reader = _Reader(native)
    out = bytearray()
    while reader.pos < len(native):
        out += BLOCK_INFO
        start = reader.pos
        columns = reader.varint()
        rows = reader.varint()
        out += native[start : reader.pos]
        for _ in range(columns):
            start = reader.pos
            reader.string()
            type_text = reader.string()
            out += native[start : reader.pos]
            if revision >= WITH_CUSTOM_SERIALIZATION:
                out.append(0)
            start = reader.pos
            if rows:
                _skip_column(reader, type_text, rows)
            out += native[start : reader.pos]
    return bytes(out)
