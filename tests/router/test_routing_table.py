"""The in-memory routing table stays fresh: NOTIFY, a periodic reload, reconnects."""

from __future__ import annotations

import psycopg
from flask import Flask

from services.router.app import runtime_of
from tests.router.actions import AppFactory, assign_number, create_client, route
from tests.support import wait_until

NUMBER = "+14155550100"
CLIENT_PHONE = "+14155559999"
LISTENING = "LISTEN%"


def learns(app: Flask, number: str) -> None:
    """Wait until `app`'s routing table holds `number` (TimeoutError after 10 s)."""
    table = runtime_of(app).table
    wait_until(lambda: table.lookup(number), timeout=10, message=f"routing table has {number}")


def wait_for_listeners(pg_url: str, count: int) -> None:
    """Wait until `count` routers hold a LISTEN connection on this database."""
    with psycopg.connect(pg_url, autocommit=True) as conn:

        def listening() -> bool:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND query LIKE %s",
                (LISTENING,),
            ).fetchone()
            return row is not None and row[0] >= count

        wait_until(listening, timeout=10, message=f"{count} routers listening")


def test_writer_routes_its_new_number_at_once(make_app: AppFactory) -> None:
    app = make_app()
    http = app.test_client()
    client = create_client(http, forwardTo=CLIENT_PHONE)
    assign_number(http, client["id"], phoneNumber=NUMBER)
    assert runtime_of(app).table.lookup(NUMBER) is not None
    assert b"<Dial" in route(http, "CA" + "1" * 32, NUMBER).data


def test_another_router_process_learns_a_new_number_through_notify(
    make_app: AppFactory, pg_url: str
) -> None:
    writer = make_app().test_client()
    # Its periodic reload is 300 s away: only the NOTIFY can bring the number in.
    reader = make_app()
    wait_for_listeners(pg_url, 2)
    assert runtime_of(reader).table.lookup(NUMBER) is None

    client = create_client(writer, forwardTo=CLIENT_PHONE)
    assign_number(writer, client["id"], phoneNumber=NUMBER)

    learns(reader, NUMBER)
    assert b"<Number" in route(reader.test_client(), "CA" + "2" * 32, NUMBER).data


def test_periodic_reload_picks_up_a_change_that_sent_no_notice(
    make_app: AppFactory, pg_url: str
) -> None:
    app = make_app(refresh_interval_seconds=0.5)
    client = create_client(app.test_client(), forwardTo=CLIENT_PHONE)
    wait_for_listeners(pg_url, 1)
    # A write that bypasses the store (a manual fix in psql) sends no NOTIFY.
    with psycopg.connect(pg_url) as conn:
        conn.execute(
            "INSERT INTO phone_numbers (phone_number, client_id, forward_to) VALUES (%s, %s, %s)",
            (NUMBER, client["id"], CLIENT_PHONE),
        )
    learns(app, NUMBER)


def test_refresher_listens_again_after_its_connection_is_killed(
    make_app: AppFactory, pg_url: str
) -> None:
    writer = make_app().test_client()
    reader = make_app()
    wait_for_listeners(pg_url, 2)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query LIKE %s",
            (LISTENING,),
        )

    client = create_client(writer, forwardTo=CLIENT_PHONE)
    assign_number(writer, client["id"], phoneNumber=NUMBER)

    learns(reader, NUMBER)
    # And it is listening again: a later number arrives by NOTIFY too.
    assign_number(writer, client["id"], phoneNumber="+14155550101")
    learns(reader, "+14155550101")
