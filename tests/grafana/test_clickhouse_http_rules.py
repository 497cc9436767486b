"""The ClickHouse endpoint's rules without an engine: which statements pass, errors, users."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from typing import Any

import pytest

from services.analytics.clickhouse_http import (
    ClickHouseError,
    ClickHouseHttpApp,
    Result,
    check_statement,
    settings_clause,
)
from services.analytics.clickhouse_native import at_revision, split_type
from services.analytics.config import ClickHouseHttp, Config
from switchboard.settings import ConfigError


@pytest.mark.parametrize(
    ("sql", "fmt"),
    [
        ("SELECT 1", None),
        ("  select 1;  ", None),
        ("WITH 1 AS a SELECT a FORMAT JSONEachRow", "JSONEachRow"),
        ("(SELECT 1) FORMAT Native SETTINGS max_threads = 1", "Native"),
        ("SHOW TABLES", None),
        ("DESCRIBE TABLE switchboard.call_facts", None),
        ("DESC switchboard.call_facts", None),
        ("EXISTS TABLE switchboard.call_facts", None),
        ("EXPLAIN SELECT 1", None),
        ("-- a comment\n/* and another */ SELECT 'a; b', format FROM t", None),
        ("SELECT ';DROP TABLE x' AS s -- trailing; comment", None),
    ],
)
def test_one_read_statement_passes_with_the_format_it_names(sql: str, fmt: str | None) -> None:
    statement = check_statement(sql, "grafana")
    assert statement.format == fmt
    assert not statement.sql.endswith(";")


@pytest.mark.parametrize(
    ("sql", "code", "says"),
    [
        ("INSERT INTO t VALUES (1)", 164, "grafana: Cannot execute query in readonly mode."),
        ("create table t (a UInt8) engine = Memory", 164, "readonly mode"),
        ("ALTER TABLE t DELETE WHERE 1", 164, "readonly mode"),
        ("OPTIMIZE TABLE t FINAL", 164, "readonly mode"),
        ("KILL QUERY WHERE 1", 164, "readonly mode"),
        ("SYSTEM SHUTDOWN", 164, "readonly mode"),
        ("USE other", 164, "readonly mode"),
        ("SET readonly = 0", 164, "Cannot modify 'readonly' setting in readonly mode."),
        ("set max_execution_time=1000", 164, "Cannot modify 'max_execution_time'"),
        ("SELECT 1; DROP TABLE t", 62, "Multi-statements are not allowed."),
        ("SELECT 1 INTO OUTFILE 'x'", 344, "INTO OUTFILE is not allowed."),
        ("  -- only a comment", 62, "Empty query."),
    ],
)
def test_anything_else_gets_a_readonly_servers_error(sql: str, code: int, says: str) -> None:
    with pytest.raises(ClickHouseError) as raised:
        check_statement(sql, "grafana")
    assert raised.value.code == code
    assert says in raised.value.message


def test_engine_errors_become_one_clickhouse_error_with_its_status() -> None:
    doubled = RuntimeError(
        "Code: 164. DB::Exception: Code: 164. DB::Exception: Cannot modify 'readonly' setting "
        "in readonly mode. (READONLY) (version 26.9.2.1). (READONLY)"
    )
    error = ClickHouseError.from_engine(doubled, "grafana")
    assert (error.code, error.name, error.status) == (164, "READONLY", 500)
    assert error.body("26.9.2.1") == (
        b"Code: 164. DB::Exception: Cannot modify 'readonly' setting in readonly mode. "
        b"(READONLY) (version 26.9.2.1)\n"
    )
    own = ClickHouseError.from_engine(
        RuntimeError("Code: 164. DB::Exception: default: Cannot execute query. (READONLY)"), "g"
    )
    assert own.message == "g: Cannot execute query."
    unknown = ClickHouseError.from_engine(
        RuntimeError(
            "Code: 60. DB::Exception: Unknown table expression identifier 'x'. (UNKNOWN_TABLE)"
        ),
        "g",
    )
    assert (unknown.code, unknown.status) == (60, 404)
    assert ClickHouseError(516, "AUTHENTICATION_FAILED", "").status == 403
    assert ClickHouseError(159, "TIMEOUT_EXCEEDED", "").status == 408


def test_settings_ride_as_a_quoted_clause_and_odd_names_are_unknown() -> None:
    assert settings_clause({}) == ""
    assert settings_clause({"max_threads": "1", "x": "a'b"}) == (
        "\nSETTINGS max_threads = '1', x = 'a\\'b'"
    )
    with pytest.raises(ClickHouseError) as raised:
        settings_clause({"a = 1, readonly": "0"})
    assert raised.value.code == 115


class Engine:
    """Stands for the chDB handle: records what it was asked to run."""

    display_name, version, timezone = "test", "26.9.2.1", "UTC"

    def __init__(self) -> None:
        self.ran: list[tuple[str, str, dict[str, str], str]] = []

    def run(
        self, sql: str, fmt: str, parameters: Mapping[str, str], database: str, user: str
    ) -> Result:
        self.ran.append((sql, fmt, dict(parameters), database))
        return Result(b"1\n", 1, 1, 1000)


def call(
    app: ClickHouseHttpApp, query: str = "", body: bytes = b"", environ: Mapping[str, Any] = {}
) -> tuple[str, dict[str, str], bytes]:
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answer["status"], answer["headers"] = status, dict(headers)

    base = {
        "PATH_INFO": "/",
        "REQUEST_METHOD": "POST" if body else "GET",
        "QUERY_STRING": query,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "REMOTE_ADDR": "127.0.0.1",
    }
    chunks = app({**base, **environ}, start_response)
    return answer["status"], answer["headers"], b"".join(chunks)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_the_user_is_checked_however_a_client_sends_it() -> None:
    engine = Engine()
    limits = ClickHouseHttp(bind="127.0.0.1:0", user="grafana", password="secret")
    app = ClickHouseHttpApp(engine, limits, "switchboard")  # type: ignore[arg-type]
    for environ, query in (
        ({"HTTP_AUTHORIZATION": basic("grafana", "secret")}, "query=SELECT+1"),
        (
            {"HTTP_X_CLICKHOUSE_USER": "grafana", "HTTP_X_CLICKHOUSE_KEY": "secret"},
            "query=SELECT+1",
        ),
        ({}, "query=SELECT+1&user=grafana&password=secret"),
    ):
        status, headers, body = call(app, query, environ=environ)
        assert (status, body) == ("200 OK", b"1\n")
        assert headers["X-ClickHouse-Format"] == "TabSeparated"
    for environ in (
        {"HTTP_AUTHORIZATION": basic("grafana", "wrong")},
        {"HTTP_AUTHORIZATION": basic("admin", "secret")},
        {},  # no credentials: the user `default`, who is unknown in production
    ):
        status, headers, body = call(app, "query=SELECT+1", environ=environ)
        assert status.startswith("403") and headers["X-ClickHouse-Exception-Code"] == "516"
        assert b"Authentication failed" in body
    assert call(app, "", environ={"PATH_INFO": "/ping"})[2] == b"Ok.\n"
    assert len(engine.ran) == 3


def test_in_development_loopback_reads_without_credentials_and_others_do_not() -> None:
    engine = Engine()
    limits = ClickHouseHttp(
        bind="127.0.0.1:0", user="grafana", password="secret", loopback_default_user=True
    )
    app = ClickHouseHttpApp(engine, limits, "switchboard")  # type: ignore[arg-type]
    assert call(app, "query=SELECT+1")[0] == "200 OK"
    assert call(app, "query=SELECT+1", environ={"REMOTE_ADDR": "10.0.0.8"})[0].startswith("403")


def test_parameters_settings_and_format_reach_the_engine_apart() -> None:
    engine = Engine()
    limits = ClickHouseHttp(bind="127.0.0.1:0", user="grafana", password="secret")
    app = ClickHouseHttpApp(engine, limits, "switchboard")  # type: ignore[arg-type]
    status, headers, _ = call(
        app,
        "database=other&default_format=JSON&param_n=41&max_threads=1&query_id=q1"
        "&wait_end_of_query=1&client_protocol_version=0",
        body=b"SELECT {n:UInt8} + 1",
        environ={"HTTP_AUTHORIZATION": basic("grafana", "secret")},
    )
    assert status == "200 OK"
    assert engine.ran == [
        ("SELECT {n:UInt8} + 1\nSETTINGS max_threads = '1'", "JSON", {"n": "41"}, "other")
    ]
    assert headers["X-ClickHouse-Query-Id"] == "q1"
    refused = call(
        app,
        "query=SELECT+1&compress=1",
        environ={"HTTP_AUTHORIZATION": basic("grafana", "secret")},
    )
    assert refused[0].startswith("501") and b"compress=1" in refused[2]
    assert headers["Content-Type"].startswith("application/json")


def test_native_gets_the_block_info_and_serialization_flags_of_the_clients_revision() -> None:
    # One block of chDB's revision 0: 2 columns, 1 row; `a` UInt8 = 1, `s` String = "x".
    block = b"\x02\x01\x01a\x05UInt8\x01\x01s\x06String\x01x"
    info = b"\x01\x00\x02\xff\xff\xff\xff\x00"
    assert at_revision(block, 0) == block
    assert at_revision(block, 54405) == info + block
    assert at_revision(block + block, 54460) == 2 * (
        info + b"\x02\x01\x01a\x05UInt8\x00\x01\x01s\x06String\x00\x01x"
    )
    assert split_type("Tuple(a UInt8, b Map(String, Array(Nullable(DateTime64(3, 'UTC')))))") == (
        "Tuple",
        ["a UInt8", "b Map(String, Array(Nullable(DateTime64(3, 'UTC'))))"],
    )


def test_the_endpoint_is_refused_without_a_password_or_beside_a_clickhouse_server() -> None:
    with pytest.raises(ConfigError, match="GRAFANA_CLICKHOUSE_PASSWORD"):
        Config(
            clickhouse_url="chdb:///tmp/x",
            admin_token="t",
            clickhouse_http=ClickHouseHttp(bind="127.0.0.1:8123"),
        )
    with pytest.raises(ConfigError, match="embedded chDB only"):
        Config(
            clickhouse_url="http://127.0.0.1:8123",
            admin_token="t",
            clickhouse_http=ClickHouseHttp(bind="127.0.0.1:8123", password="p"),
        )
    with pytest.raises(ConfigError, match="CLICKHOUSE_HTTP_BIND must be host:port"):
        Config(
            clickhouse_url="chdb:///tmp/x",
            admin_token="t",
            clickhouse_http=ClickHouseHttp(bind="8123", password="p"),
        )
