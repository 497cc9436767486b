"""Where a report's PDF and HTML are kept: a folder on disk, or an S3-compatible bucket.

Keys are fixed per report (`<clientId>/<period>/<first day>/<report id>.pdf`),
so a retried build writes the same objects again. A folder's file is written
beside its final name and renamed into place, as a bucket's object appears
whole or not at all: a reader never sees half a document. Reports do not
carry callers' recordings, so unlike recordings they are not sealed with our
own keys; a bucket still gets server-side encryption.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from services.reporting.reports.config import ReportsConfig


class DocumentMissing(LookupError):
    """The stored document is not there (deleted, or never written)."""


class DocumentStore(Protocol):
    def put(self, key: str, content: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...

    def describe(self) -> str: ...


def document_key(client_id: str, period: str, first: str, report_id: str, ext: str) -> str:
    return f"{client_id}/{period}/{first}/{report_id}.{ext}"


class FolderDocuments:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def describe(self) -> str:
        return f"folder {self.root}"

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"document key outside the store: {key!r}")
        return path

    def put(self, key: str, content: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, part = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(part, path)
        except BaseException:
            Path(part).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise DocumentMissing(key) from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3Documents:
    def __init__(self, config: ReportsConfig, client: Any | None = None) -> None:
        import boto3

        assert config.s3_bucket is not None
        self.bucket = config.s3_bucket
        self.prefix = config.s3_prefix
        self.client = client or boto3.client(
            "s3", region_name=config.s3_region, endpoint_url=config.s3_endpoint_url
        )

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def put(self, key: str, content: bytes, content_type: str) -> None:
        self.client.put_object(
            Bucket=self.bucket,
            Key=self.prefix + key,
            Body=content,
            ContentType=content_type,
            ServerSideEncryption="AES256",
        )

    def get(self, key: str) -> bytes:
        try:
            reply = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
        except self.client.exceptions.NoSuchKey:
            raise DocumentMissing(key) from None
        body: bytes = reply["Body"].read()
        return body

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key)


def open_documents(config: ReportsConfig) -> DocumentStore:
    if config.s3_bucket:
        return S3Documents(config)
    return FolderDocuments(config.storage_dir)
