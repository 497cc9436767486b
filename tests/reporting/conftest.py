"""Reporting's test databases: migrated as the service migrates its own at start."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from services.reporting.store import apply_migrations
from tests.databases import fresh_database


@contextmanager
def reporting_database(postgres_url: str) -> Iterator[str]:
    """A fresh database with reporting's schema, dropped on the way out."""
    with fresh_database(postgres_url) as dsn:
        apply_migrations(dsn)
        yield dsn


@pytest.fixture(scope="module")
def reporting_db(postgres_url: str) -> Iterator[str]:
    """One migrated reporting database for the module; tests keep apart by their numbers."""
    with reporting_database(postgres_url) as dsn:
        yield dsn
