"""Where reports' documents are kept: a folder, or a real S3-compatible server (moto_server)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from services.reporting.reports.config import ReportsConfig
from services.reporting.reports.files import (
    DocumentMissing,
    DocumentStore,
    FolderDocuments,
    S3Documents,
    document_key,
    open_documents,
)
from tests.recordings.test_storage import s3_endpoint  # noqa: F401 (a fixture)

KEY = document_key("client-1", "week", "2026-03-02", str(uuid.uuid4()), "pdf")


def config(**overrides: object) -> ReportsConfig:
    return ReportsConfig(
        database_url="postgresql://localhost/x",
        admin_token="t",
        **overrides,  # type: ignore[arg-type]
    )


@pytest.fixture(params=["folder", "s3"])
def documents(request: pytest.FixtureRequest, tmp_path: Path) -> DocumentStore:
    if request.param == "folder":
        return open_documents(config(storage_dir=str(tmp_path / "reports")))
    endpoint = request.getfixturevalue("s3_endpoint")
    monkeypatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    bucket = f"reports-{uuid.uuid4().hex[:12]}"
    store = open_documents(config(s3_bucket=bucket, s3_endpoint_url=endpoint))
    assert isinstance(store, S3Documents)
    store.client.create_bucket(Bucket=bucket)
    return store


def test_a_document_written_twice_reads_back_as_the_last(documents: DocumentStore) -> None:
    documents.put(KEY, b"%PDF first", "application/pdf")
    documents.put(KEY, b"%PDF second", "application/pdf")
    assert documents.get(KEY) == b"%PDF second"


def test_a_missing_document_says_so(documents: DocumentStore) -> None:
    with pytest.raises(DocumentMissing):
        documents.get("client-1/week/2026-03-02/nothing.pdf")


def test_the_folder_leaves_no_part_behind_and_refuses_keys_outside_it(tmp_path: Path) -> None:
    folder = FolderDocuments(tmp_path / "reports")
    folder.put(KEY, b"x", "application/pdf")
    assert [p.name for p in (tmp_path / "reports").rglob("*") if p.is_file()] == [Path(KEY).name]
    with pytest.raises(ValueError, match="outside"):
        folder.put("../escape.pdf", b"x", "application/pdf")


def test_a_deleted_document_is_missing_and_deleting_it_again_is_harmless(
    documents: DocumentStore,
) -> None:
    documents.put(KEY, b"%PDF", "application/pdf")
    documents.delete(KEY)
    documents.delete(KEY)
    with pytest.raises(DocumentMissing):
        documents.get(KEY)
