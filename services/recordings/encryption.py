"""Recordings encrypted at rest in the folder store: chunked AES-GCM with rotating keys.

A sealed file is a header, then the media in 64 KiB chunks, each encrypted on
its own so a Range request decrypts only the chunks it touches:

    magic "SBRECENC" | version (1) | chunk size (4) | key id length (1) | key id
    | nonce prefix (8) | file id (16) | chunk 0 | chunk 1 | ... | last chunk

Chunk i is AES-GCM under the key the header names, nonce = prefix + i (4
bytes), and associated data = the whole header + i + whether it is the last
chunk. So a changed byte anywhere, chunks swapped within or across files, or
a file cut short at a chunk boundary all fail authentication instead of
decrypting to garbage. The key id in the header lets keys rotate: new files
use the current key, old ones keep naming theirs. Files without the magic were
written before encryption and are served as they are, when they begin like the
media this service stores (a sealed file with a damaged magic does not).

`SealedStorage` wraps any `Storage` so the rest of the service keeps seeing
plaintext: sizes, hashes and byte ranges are the media's.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.recordings.storage import IntegrityError, Storage

MAGIC = b"SBRECENC"
VERSION = 1
CHUNK_BYTES = 64 * 1024
TAG_BYTES = 16
_FIXED = struct.Struct(">8sBIB")  # magic, version, chunk size, key id length
_PREFIX_BYTES = 8
_FILE_ID_BYTES = 16
HEADER_MAX = _FIXED.size + 255 + _PREFIX_BYTES + _FILE_ID_BYTES
KEY_SIZES = (16, 24, 32)
# How the media this service stores begins: WAV, MP3 with an ID3 tag, or a bare MPEG frame.
_PLAIN_MEDIA = (b"RIFF", b"ID3")


@dataclass(frozen=True)
class Keyring:
    """The keys files may be sealed with; new files are sealed with `current`."""

    current: str
    keys: Mapping[str, bytes]

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise ValueError(f"the current key id {self.current!r} has no key")
        for key_id, key in self.keys.items():
            if not key_id or len(key_id.encode()) > 255:
                raise ValueError(f"key id {key_id!r} must be 1 to 255 bytes")
            if len(key) not in KEY_SIZES:
                raise ValueError(f"key {key_id!r} must be 16, 24 or 32 bytes, got {len(key)}")


@dataclass(frozen=True)
class Header:
    key_id: str
    chunk_bytes: int
    nonce_prefix: bytes
    file_id: bytes
    raw: bytes

    @property
    def sealed_chunk(self) -> int:
        return self.chunk_bytes + TAG_BYTES

    def nonce(self, index: int) -> bytes:
        return self.nonce_prefix + struct.pack(">I", index)

    def associated(self, index: int, last: bool) -> bytes:
        return self.raw + struct.pack(">Q?", index, last)

    def plain_size(self, sealed_size: int) -> int:
        """The media's size from the sealed file's size (IntegrityError if none fits)."""
        body = sealed_size - len(self.raw)
        count = self.chunk_count(sealed_size)
        last = body - (count - 1) * self.sealed_chunk
        if body < TAG_BYTES or last < TAG_BYTES:
            raise IntegrityError("sealed file is cut short")
        return (count - 1) * self.chunk_bytes + last - TAG_BYTES

    def chunk_count(self, sealed_size: int) -> int:
        body = sealed_size - len(self.raw)
        return max(1, -(-body // self.sealed_chunk))


def new_header(key_id: str, chunk_bytes: int = CHUNK_BYTES) -> Header:
    encoded = key_id.encode()
    prefix, file_id = os.urandom(_PREFIX_BYTES), os.urandom(_FILE_ID_BYTES)
    raw = _FIXED.pack(MAGIC, VERSION, chunk_bytes, len(encoded)) + encoded + prefix + file_id
    return Header(key_id, chunk_bytes, prefix, file_id, raw)


def parse_header(data: bytes) -> Header | None:
    """The header at the start of `data`; None for a file written before encryption."""
    if not data.startswith(MAGIC):
        if not data.startswith(_PLAIN_MEDIA) and not (
            len(data) >= 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0
        ):
            raise IntegrityError("stored file is neither sealed nor plain media")
        return None
    if len(data) < _FIXED.size:
        raise IntegrityError("sealed file header is cut short")
    _, version, chunk_bytes, id_length = _FIXED.unpack_from(data)
    if version != VERSION:
        raise IntegrityError(f"sealed file has unknown format version {version}")
    if not 0 < chunk_bytes <= 16 * 1024 * 1024:
        raise IntegrityError("sealed file header is damaged")
    end = _FIXED.size + id_length + _PREFIX_BYTES + _FILE_ID_BYTES
    if len(data) < end:
        raise IntegrityError("sealed file header is cut short")
    at = _FIXED.size
    try:
        key_id = data[at : at + id_length].decode()
    except UnicodeDecodeError:
        raise IntegrityError("sealed file header is damaged") from None
    at += id_length
    prefix = data[at : at + _PREFIX_BYTES]
    file_id = data[at + _PREFIX_BYTES : end]
    return Header(key_id, chunk_bytes, prefix, file_id, data[:end])


def seal(
    keyring: Keyring, chunks: Iterable[bytes], chunk_bytes: int = CHUNK_BYTES
) -> Iterator[bytes]:
    """The sealed file's bytes for the media in `chunks`, header first."""
    header = new_header(keyring.current, chunk_bytes)
    aead = AESGCM(keyring.keys[keyring.current])
    yield header.raw
    pending = bytearray()
    index = 0
    for chunk in chunks:
        pending += chunk
        # A chunk is sealed only once more data follows, so the last one is known as last.
        while len(pending) > chunk_bytes:
            plain = bytes(pending[:chunk_bytes])
            del pending[:chunk_bytes]
            yield aead.encrypt(header.nonce(index), plain, header.associated(index, False))
            index += 1
    yield aead.encrypt(header.nonce(index), bytes(pending), header.associated(index, True))


def open_chunk(aead: AESGCM, header: Header, index: int, last: bool, sealed: bytes) -> bytes:
    try:
        return aead.decrypt(header.nonce(index), sealed, header.associated(index, last))
    except InvalidTag:
        raise IntegrityError(f"chunk {index} fails authentication") from None


class SealedStorage:
    """A `Storage` whose objects are sealed on write and opened on read."""

    def __init__(self, inner: Storage, keyring: Keyring) -> None:
        self.inner = inner
        self.keyring = keyring

    def describe(self) -> str:
        return f"{self.inner.describe()}, encrypted (key {self.keyring.current})"

    def check(self) -> None:
        self.inner.check()

    def write_part(self, part_key: str, chunks: Iterable[bytes]) -> int:
        written = 0

        def counted() -> Iterator[bytes]:
            nonlocal written
            for chunk in chunks:
                written += len(chunk)
                yield chunk

        self.inner.write_part(part_key, seal(self.keyring, counted()))
        return written

    def promote(self, part_key: str, key: str) -> None:
        self.inner.promote(part_key, key)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def discard_parts(self, recording_sid: str) -> int:
        return self.inner.discard_parts(recording_sid)

    def sweep_parts(self, older_than_seconds: float) -> int:
        return self.inner.sweep_parts(older_than_seconds)

    def _header(self, key: str) -> Header | None:
        return parse_header(b"".join(self.inner.read(key, 0, HEADER_MAX - 1)))

    def size(self, key: str) -> int:
        sealed_size = self.inner.size(key)
        header = self._header(key)
        return sealed_size if header is None else header.plain_size(sealed_size)

    def sha256(self, key: str) -> str:
        digest = hashlib.sha256()
        for chunk in self._open(key, 0, None, verify_first=False):
            digest.update(chunk)
        return digest.hexdigest()

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The media's bytes start..end (inclusive), every chunk they touch verified first.

        Verifying before the first byte is handed out costs a second decryption
        but lets the caller answer a clear error instead of a body that breaks
        off (or, worse, garbage) halfway.
        """
        return self._open(key, start, end, verify_first=True)

    def _open(self, key: str, start: int, end: int | None, verify_first: bool) -> Iterator[bytes]:
        header = self._header(key)
        if header is None:
            return self.inner.read(key, start, end)
        secret = self.keyring.keys.get(header.key_id)
        if secret is None:
            raise IntegrityError(f"sealed with key {header.key_id!r}, which is not configured")
        sealed_size = self.inner.size(key)
        size = header.plain_size(sealed_size)
        last_byte = size - 1 if end is None else min(end, size - 1)
        aead = AESGCM(secret)
        count = header.chunk_count(sealed_size)
        if size == 0 or start > last_byte:
            first = last = count - 1  # still authenticate: an empty span of a sealed file
        else:
            first, last = start // header.chunk_bytes, last_byte // header.chunk_bytes
        if verify_first:
            for _ in self._chunks(key, header, aead, count, first, last):
                pass
        return self._span(key, header, aead, count, first, last, start, last_byte)

    def _chunks(
        self, key: str, header: Header, aead: AESGCM, count: int, first: int, last: int
    ) -> Iterator[tuple[int, bytes]]:
        base = len(header.raw)
        stop = base + (last + 1) * header.sealed_chunk - 1
        pending = bytearray()
        index = first
        for piece in self.inner.read(key, base + first * header.sealed_chunk, stop):
            pending += piece
            while len(pending) >= header.sealed_chunk and index <= last:
                sealed = bytes(pending[: header.sealed_chunk])
                del pending[: header.sealed_chunk]
                yield index, open_chunk(aead, header, index, index == count - 1, sealed)
                index += 1
        if index == last and pending:
            yield index, open_chunk(aead, header, index, index == count - 1, bytes(pending))
            index += 1
        if index <= last:
            raise IntegrityError("sealed file is cut short")

    def _span(
        self,
        key: str,
        header: Header,
        aead: AESGCM,
        count: int,
        first: int,
        last: int,
        start: int,
        last_byte: int,
    ) -> Iterator[bytes]:
        for index, plain in self._chunks(key, header, aead, count, first, last):
            offset = index * header.chunk_bytes
            piece = plain[max(0, start - offset) : max(0, last_byte - offset + 1)]
            if piece:
                yield piece
