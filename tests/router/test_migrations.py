"""Router migrations on a real PostgreSQL: forward-only, recorded, safe to repeat."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import psycopg

from services.router import store


def table_names(pg_url: str) -> set[str]:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    return {name for (name,) in rows}


def test_migrations_create_the_tables_and_record_each_file(pg_url: str) -> None:
    applied = store.apply_migrations(pg_url)
    assert applied == [m.name for m in store.migrations()]
    assert {"clients", "phone_numbers", "schema_migrations"} <= table_names(pg_url)
    assert store.applied_migrations(pg_url) == [(m.version, m.name) for m in store.migrations()]


def test_migrations_run_twice_are_harmless(pg_url: str) -> None:
    store.apply_migrations(pg_url)
    assert store.apply_migrations(pg_url) == []
    assert store.applied_migrations(pg_url) == [(m.version, m.name) for m in store.migrations()]


def test_concurrent_migration_runs_apply_each_file_once(pg_url: str) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: store.apply_migrations(pg_url), range(4)))
    names = [name for result in results for name in result]
    assert sorted(names) == sorted(m.name for m in store.migrations())
    assert len(store.applied_migrations(pg_url)) == len(store.migrations())


def test_migration_files_are_numbered_in_order() -> None:
    versions = [m.version for m in store.migrations()]
    assert versions == sorted(versions)
    assert versions[0] == 1
