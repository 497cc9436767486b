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
    assert {
        "clients",
        "phone_numbers",
        "owned_numbers",
        "api_keys",
        "audit_log",
        "event_outbox",
        "schema_migrations",
    } <= table_names(pg_url)
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


def test_numbers_assigned_before_0002_route_as_before_and_join_the_inventory(
    pg_url: str,
) -> None:
    [first, *_] = store.migrations()
    with psycopg.connect(pg_url) as conn:
        conn.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute(first.sql.encode())
        conn.execute("INSERT INTO schema_migrations (version, name) VALUES (1, %s)", (first.name,))
        row = conn.execute(
            "INSERT INTO clients (name, forward_to) VALUES ('Old', '+14155559999') RETURNING id"
        ).fetchone()
        assert row is not None
        client_id = row[0]
        conn.execute(
            "INSERT INTO phone_numbers (phone_number, client_id, forward_to, record,"
            " recording_disclaimer) VALUES ('+14155550100', %s, '+14155559999', true, 'Hi.'),"
            " ('+14155550101', %s, '+14155559999', false, NULL)",
            (client_id, client_id),
        )

    assert store.apply_migrations(pg_url) == [m.name for m in store.migrations()[1:]]

    db = store.Store(store.open_pool(pg_url))
    try:
        routed = {a.phone_number: (a.record, a.recording_disclaimer) for a in db.all_assignments()}
        held = [n.phone_number for n in db.owned_numbers("assigned")]
    finally:
        db.close()
    assert routed == {"+14155550100": (True, "Hi."), "+14155550101": (False, None)}
    assert held == ["+14155550100", "+14155550101"]
