"""Object storage for recording media: a folder on disk by default, any S3-compatible bucket.

A copy is written first under a temporary "part" key (`.incoming/<sid>.<uuid>.part`),
verified there, then promoted to its final key: a rename in a folder, a
server-side copy in a bucket (where an object appears whole or not at all).
So a reader never sees a half-written recording and a worker killed mid-write
leaves only a part, which the next successful store of the same recording
(or the start-up sweep of old parts) removes. Final keys are deterministic
per recording, so storing the same recording twice writes the same object.

At rest, recordings are encrypted: a folder's files by `encryption.SealedStorage`
with our keys, a bucket's objects by the server (every write asks for
server-side encryption, so a bucket without a default policy still gets it).
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from services.recordings.config import Config, S3Settings

PARTS_PREFIX = ".incoming/"
CHUNK_BYTES = 64 * 1024


class StorageError(Exception):
    """The object store failed an operation (an infrastructure problem, retried)."""


class ObjectMissing(StorageError):
    """The object is not in the store."""


class IntegrityError(StorageError):
    """A stored recording cannot be read back as it was written (tampered, cut or keyless)."""


def media_key(recording_sid: str, call_sid: str, recorded_at: datetime, fmt: str) -> str:
    """Where a recording lives: by day, then by call, named for the recording."""
    return f"{recorded_at:%Y/%m/%d}/{call_sid}/{recording_sid}.{fmt}"


def new_part_key(recording_sid: str) -> str:
    return f"{PARTS_PREFIX}{recording_sid}.{uuid.uuid4().hex}.part"


class Storage(Protocol):
    def write_part(self, part_key: str, chunks: Iterable[bytes]) -> int: ...

    def promote(self, part_key: str, key: str) -> None: ...

    def size(self, key: str) -> int: ...

    def sha256(self, key: str) -> str: ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]: ...

    def delete(self, key: str) -> None: ...

    def discard_parts(self, recording_sid: str) -> int: ...

    def sweep_parts(self, older_than_seconds: float) -> int: ...

    def check(self) -> None: ...

    def describe(self) -> str: ...


class LocalFolderStorage:
    """Media files under one folder; promotion is an atomic rename on the same file system."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    def describe(self) -> str:
        return f"folder {self.root}"

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise StorageError(f"key escapes the storage folder: {key!r}")
        return path

    def check(self) -> None:
        try:
            (self.root / PARTS_PREFIX).mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StorageError(f"cannot create {self.root}: {err}") from err
        if not os.access(self.root, os.W_OK):
            raise StorageError(f"{self.root} is not writable")

    def write_part(self, part_key: str, chunks: Iterable[bytes]) -> int:
        path = self._path(part_key)
        written = 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
                    written += len(chunk)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as err:
            raise StorageError(f"cannot write {part_key}: {err}") from err
        return written

    def promote(self, part_key: str, key: str) -> None:
        source, target = self._path(part_key), self._path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
            _fsync_dir(target.parent)
        except FileNotFoundError as err:
            raise ObjectMissing(f"{part_key} is gone") from err
        except OSError as err:
            raise StorageError(f"cannot move {part_key} to {key}: {err}") from err

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError as err:
            raise ObjectMissing(key) from err

    def sha256(self, key: str) -> str:
        digest = hashlib.sha256()
        for chunk in self.read(key):
            digest.update(chunk)
        return digest.hexdigest()

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        path = self._path(key)
        try:
            handle = path.open("rb")
        except FileNotFoundError as err:
            raise ObjectMissing(key) from err
        return _file_chunks(handle, start, end)

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as err:
            raise StorageError(f"cannot delete {key}: {err}") from err

    def discard_parts(self, recording_sid: str) -> int:
        removed = 0
        for part in (self.root / PARTS_PREFIX).glob(f"{recording_sid}.*.part"):
            part.unlink(missing_ok=True)
            removed += 1
        return removed

    def sweep_parts(self, older_than_seconds: float) -> int:
        limit = time.time() - older_than_seconds
        removed = 0
        for part in (self.root / PARTS_PREFIX).glob("*.part"):
            try:
                if part.stat().st_mtime < limit:
                    part.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed


def _file_chunks(handle: Any, start: int, end: int | None) -> Iterator[bytes]:
    with handle:
        handle.seek(start)
        left = None if end is None else end - start + 1
        while left is None or left > 0:
            chunk = handle.read(CHUNK_BYTES if left is None else min(CHUNK_BYTES, left))
            if not chunk:
                return
            if left is not None:
                left -= len(chunk)
            yield chunk


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class S3Storage:
    """Media objects in an S3-compatible bucket through boto3 (credentials from its usual chain)."""

    def __init__(self, settings: S3Settings, client: Any | None = None) -> None:
        import boto3
        from botocore.config import Config as BotoConfig

        self.settings = settings
        self.bucket = settings.bucket
        self.prefix = f"{settings.prefix}/" if settings.prefix else ""
        self.client = client or boto3.client(
            "s3",
            endpoint_url=settings.endpoint_url,
            region_name=settings.region,
            config=BotoConfig(
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
            ),
        )

    def describe(self) -> str:
        where = f" at {self.settings.endpoint_url}" if self.settings.endpoint_url else ""
        return f"s3://{self.bucket}/{self.prefix}{where}"

    def _encryption(self) -> dict[str, str]:
        """The server-side encryption every object is written with."""
        args = {"ServerSideEncryption": self.settings.server_side_encryption}
        if self.settings.kms_key_id:
            args["SSEKMSKeyId"] = self.settings.kms_key_id
        return args

    def _key(self, key: str) -> str:
        return self.prefix + key

    def _call(self, what: str, operation: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, operation)(**kwargs)
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                raise ObjectMissing(what) from err
            raise StorageError(f"{operation} {what}: {err}") from err
        except BotoCoreError as err:
            raise StorageError(f"{operation} {what}: {err}") from err

    def check(self) -> None:
        self._call(self.bucket, "head_bucket", Bucket=self.bucket)

    def write_part(self, part_key: str, chunks: Iterable[bytes]) -> int:
        # Spooled in memory up to a few MB (a few minutes of audio), on disk beyond.
        import tempfile

        with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
            written = 0
            for chunk in chunks:
                spool.write(chunk)
                written += len(chunk)
            spool.seek(0)
            self._call(
                part_key,
                "upload_fileobj",
                Fileobj=spool,
                Bucket=self.bucket,
                Key=self._key(part_key),
                ExtraArgs=self._encryption(),
            )
        return written

    def promote(self, part_key: str, key: str) -> None:
        self._call(
            key,
            "copy_object",
            Bucket=self.bucket,
            Key=self._key(key),
            CopySource={"Bucket": self.bucket, "Key": self._key(part_key)},
            **self._encryption(),
        )
        self.delete(part_key)

    def size(self, key: str) -> int:
        head = self._call(key, "head_object", Bucket=self.bucket, Key=self._key(key))
        return int(head["ContentLength"])

    def sha256(self, key: str) -> str:
        digest = hashlib.sha256()
        for chunk in self.read(key):
            digest.update(chunk)
        return digest.hexdigest()

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if start or end is not None:
            kwargs["Range"] = f"bytes={start}-{'' if end is None else end}"
        body = self._call(key, "get_object", **kwargs)["Body"]
        return _stream_chunks(body)

    def delete(self, key: str) -> None:
        self._call(key, "delete_object", Bucket=self.bucket, Key=self._key(key))

    def _parts(self, prefix: str) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
            yield from page.get("Contents", [])

    def discard_parts(self, recording_sid: str) -> int:
        removed = 0
        for item in self._parts(f"{PARTS_PREFIX}{recording_sid}."):
            self._call(item["Key"], "delete_object", Bucket=self.bucket, Key=item["Key"])
            removed += 1
        return removed

    def sweep_parts(self, older_than_seconds: float) -> int:
        limit = time.time() - older_than_seconds
        removed = 0
        for item in self._parts(PARTS_PREFIX):
            if item["LastModified"].timestamp() < limit:
                self._call(item["Key"], "delete_object", Bucket=self.bucket, Key=item["Key"])
                removed += 1
        return removed


def _stream_chunks(body: Any) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(CHUNK_BYTES)
    finally:
        body.close()


def open_storage(config: Config) -> Storage:
    if config.s3 is not None:
        return S3Storage(config.s3)
    # Imported here: encryption builds on this module's Storage and errors.
    from services.recordings.encryption import Keyring, SealedStorage

    keyring = Keyring(config.encryption_key_id, dict(config.encryption_keys))
    return SealedStorage(LocalFolderStorage(config.storage_dir), keyring)
