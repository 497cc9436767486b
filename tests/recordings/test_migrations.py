"""Migrations: numbered, recorded, in the service's own schema, safe to run twice."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import psycopg

from services.recordings import store


def test_migrations_apply_once_into_the_recordings_schema_and_a_second_run_changes_nothing(
    pg_url: str,
) -> None:
    first = store.apply_migrations(pg_url)
    assert first == [m.name for m in store.migrations()]
    assert store.apply_migrations(pg_url) == []
    assert store.applied_migrations(pg_url) == [(m.version, m.name) for m in store.migrations()]
    with psycopg.connect(pg_url) as conn:
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'recordings'"
            )
        }
        public = {
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        }
    assert {"recordings", "calls", "client_settings", "audit", "schema_migrations"} <= tables
    assert public == set(), "nothing outside the service's own schema"


def test_concurrent_start_ups_apply_each_migration_exactly_once(pg_url: str) -> None:
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: store.apply_migrations(pg_url), range(4)))
    assert sorted(len(r) for r in results) == [0, 0, 0, len(store.migrations())]
