"""analytics' read-only ClickHouse HTTP endpoint, through the clients Grafana and users bring.

One stack (as `make run` runs it) with simulated calls in it. Every panel
query of both dashboards, expanded as the Grafana plugin expands it, runs
through clickhouse-connect's HTTP client and through clickhouse-go v2 over
HTTP (tests/grafana/chgo, the driver inside the plugin); writes, DDL,
changes of the limits and queries past them are refused with ClickHouse's
own errors; and a second analytics process reading through the endpoint as
its ClickHouse server answers the API exactly as the first does.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
import requests
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from devstack.processes import free_port
from devstack.stack import Service, Stack
from services.analytics.facts import FINAL_STATUSES
from tests.analytics.grafana_macros import TimeRange, expand
from tests.e2e.conftest import ACCOUNT_SID, ADMIN, AUTH_TOKEN, System, number
from tests.support import wait_until

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((REPO / "deploy" / "grafana" / "dashboards").glob("*.json"))
CHGO = Path(__file__).resolve().parent / "chgo"
USER, PASSWORD = "grafana", "grafana-test-password"
MAX_ROWS = 20_000


@pytest.fixture(scope="module")
def system(
    kafka_bootstrap: str, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    stack = Stack(
        tmp_path_factory.mktemp("grafana"),
        kafka_bootstrap=kafka_bootstrap,
        postgres_url=postgres_url,
        services=("twilio_sim", "router", "analytics", "ingress"),
        env={
            "ADMIN_API_TOKEN": ADMIN,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "GRAFANA_CLICKHOUSE_USER": USER,
            "GRAFANA_CLICKHOUSE_PASSWORD": PASSWORD,
            "CLICKHOUSE_HTTP_MAX_RESULT_ROWS": str(MAX_ROWS),
            "CLICKHOUSE_HTTP_MAX_MEMORY_USAGE": "200000000",
        },
    )
    with stack:
        assert stack.edge is not None
        system = System(stack.edge, stack.services, stack.topics, stack.env)
        client_id = system.new_client("+14155553333")
        tracked = number()
        system.assign(client_id, tracked, campaign="spring-mailer")
        system.own_at_simulator(tracked)
        sids = []
        for caller, outcome, talk in (
            ("+12125550101", "completed", 95),
            ("+12125550102", "completed", 20),
            ("+13105550103", "no-answer", 0),
            ("+12125550101", "busy", 0),
        ):
            call: dict[str, Any] = {"from": caller, "to": tracked, "outcome": outcome}
            log = system.play(**call, talkSeconds=talk, ringSeconds=4)
            sids.append(log["callSid"])

        def decided() -> bool:
            return all(system.call(sid).get("status") in FINAL_STATUSES for sid in sids)

        wait_until(decided, timeout=20, message="every call decided in analytics")
        system.env["TEST_CLIENT_ID"] = client_id
        system.env["TEST_CALL_SID"] = sids[0]
        yield system


def endpoint(system: System) -> tuple[str, int]:
    host, _, port = system.env["CLICKHOUSE_HTTP_BIND"].rpartition(":")
    return host, int(port)


def url(system: System) -> str:
    host, port = endpoint(system)
    return f"http://{host}:{port}/"


@pytest.fixture(scope="module")
def connect_client(system: System) -> Iterator[Client]:
    host, port = endpoint(system)
    client = clickhouse_connect.get_client(
        host=host, port=port, username=USER, password=PASSWORD, database="switchboard"
    )
    yield client
    client.close()


@pytest.fixture(scope="session")
def chgo() -> Path:
    """tests/grafana/chgo built once per source version, cached in .cache/."""
    go = shutil.which("go") or next(
        (path for path in ("/usr/local/go/bin/go",) if os.path.exists(path)), None
    )
    if go is None:
        pytest.skip("Go is not installed: clickhouse-go cannot be built")
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum", "main.go"):
        digest.update((CHGO / name).read_bytes())
    binary = REPO / ".cache" / "chgo" / digest.hexdigest()[:16] / "chgo"
    if not binary.exists():
        binary.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [go, "build", "-mod=readonly", "-o", str(binary), "."],
            cwd=CHGO,
            check=True,
            timeout=900,
            env={**os.environ, "GOFLAGS": "-mod=readonly", "CGO_ENABLED": "0"},
        )
    return binary


def through_go(chgo: Path, system: System, queries: list[tuple[str, str]]) -> list[dict[str, Any]]:
    host, port = endpoint(system)
    request = {
        "addr": f"{host}:{port}",
        "user": USER,
        "password": PASSWORD,
        "database": "switchboard",
        "queries": [{"name": name, "sql": sql} for name, sql in queries],
    }
    done = subprocess.run(
        [str(chgo)], input=json.dumps(request), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    answers: list[dict[str, Any]] = json.loads(done.stdout)
    return answers


def window() -> TimeRange:
    now = datetime.now(UTC)
    return TimeRange(now - timedelta(days=2), now + timedelta(hours=1), interval_s=3600)


def panel_queries(client: Client) -> list[tuple[str, str, dict[str, Any]]]:
    """(dashboard/panel, SQL as the plugin sends it, target) for every panel of both dashboards."""
    found = []
    span = window()
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        variables: dict[str, str] = {}
        for variable in dashboard.get("templating", {}).get("list", []):
            if variable["type"] == "constant":
                variables[variable["name"]] = variable["query"]
            elif variable["type"] == "query":
                rows = client.query(expand(variable["query"], variables, span)).result_rows
                assert rows, f"{path.stem}: variable {variable['name']} has no value"
                variables[variable["name"]] = str(rows[0][0])
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                sql = expand(target["rawSql"], variables, span)
                assert "$" not in sql.replace("$__", ""), sql
                found.append((f"{path.stem}/{panel['title']}", sql, panel))
    return found


# The first build of tests/grafana/chgo (modules from the Go proxy, then compiling)
# takes minutes on a fresh machine; later runs find it in .cache/.
@pytest.mark.timeout(1200)
def test_every_panel_query_answers_alike_through_clickhouse_connect_and_clickhouse_go(
    system: System, connect_client: Client, chgo: Path
) -> None:
    queries = panel_queries(connect_client)
    assert len(queries) >= 20
    by_go = {
        answer["name"]: answer for answer in through_go(chgo, system, [q[:2] for q in queries])
    }
    for name, sql, panel in queries:
        result = connect_client.query(sql)
        rows = result.result_rows
        assert rows, f"{name}: no rows through clickhouse-connect"
        columns = list(result.column_names)
        for index, column in enumerate(columns):
            assert column in sql, f"{name}: column {column} is not one the panel's SQL names"
            assert any(row[index] not in (None, "") for row in rows), f"{name}: {column} empty"
        go = by_go[name]
        assert not go.get("error"), f"{name}: clickhouse-go: {go['error']}"
        assert go["columns"] == columns, name
        assert go["rows"] == len(rows), name
        assert all(go["filled"]), f"{name}: a column is empty through clickhouse-go"
        if panel["type"] == "timeseries":
            assert isinstance(rows[0][0], datetime), f"{name}: a time series starts with its time"
        if panel["type"] == "stat":
            assert len(rows) == 1, name
        overrides = panel.get("fieldConfig", {}).get("overrides", [])
        for override in overrides:
            if override["matcher"]["id"] == "byName":
                assert override["matcher"]["options"] in columns, name


def test_curl_answers_a_select_and_ping_answers_ok(system: System) -> None:
    curl = shutil.which("curl")
    target = f"{url(system)}?query=SELECT%201"
    if curl:
        answer = subprocess.run([curl, "-s", target], capture_output=True, text=True, timeout=30)
        assert answer.stdout == "1\n"
    else:
        assert requests.get(target, timeout=10).text == "1\n"
    assert requests.get(f"{url(system)}ping", timeout=10).text == "Ok.\n"


def test_answers_carry_the_headers_clients_read_in_the_format_asked_for(system: System) -> None:
    reply = requests.post(
        url(system),
        params={"default_format": "JSONEachRow", "param_n": "41", "database": "switchboard"},
        data="SELECT {n:UInt8} + 1 AS answer, currentDatabase() AS db",
        headers={"X-ClickHouse-User": USER, "X-ClickHouse-Key": PASSWORD},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    assert json.loads(reply.text) == {"answer": 42, "db": "switchboard"}
    assert reply.headers["X-ClickHouse-Format"] == "JSONEachRow"
    assert reply.headers["X-ClickHouse-Timezone"]
    assert reply.headers["X-ClickHouse-Server-Display-Name"]
    assert reply.headers["X-ClickHouse-Query-Id"]
    assert int(json.loads(reply.headers["X-ClickHouse-Summary"])["read_rows"]) >= 1
    assert reply.headers["Content-Type"].startswith("application/json")
    tsv = requests.get(
        url(system),
        params={"query": "SELECT 1 AS a, 'x' AS b FORMAT TabSeparatedWithNamesAndTypes"},
        auth=(USER, PASSWORD),
        timeout=10,
    )
    assert tsv.text == "a\tb\nUInt8\tString\n1\tx\n"
    assert tsv.headers["X-ClickHouse-Format"] == "TabSeparatedWithNamesAndTypes"


REFUSED = [
    ("insert", "INSERT INTO switchboard.audit_log (id) VALUES (1)", 164, "readonly mode"),
    ("ddl", "CREATE TABLE switchboard.x (a UInt8) ENGINE = Memory", 164, "readonly mode"),
    ("drop", "DROP TABLE switchboard.call_facts", 164, "readonly mode"),
    ("alter", "ALTER TABLE switchboard.call_facts DELETE WHERE 1", 164, "readonly mode"),
    ("set", "SET readonly = 0", 164, "Cannot modify 'readonly'"),
    ("settings", "SELECT 1 SETTINGS readonly = 0", 164, "Cannot modify 'readonly'"),
    ("limit", "SELECT 1 SETTINGS max_result_rows = 100000000", 164, "max_result_rows"),
    ("rows", f"SELECT number FROM system.numbers LIMIT {MAX_ROWS + 1}", 396, "max rows"),
    ("memory", "SELECT groupArray(number) FROM numbers(100000000)", 241, "memory limit"),
    ("outfile", "SELECT 1 INTO OUTFILE '/tmp/switchboard-outfile'", 344, "INTO OUTFILE"),
    ("file", "SELECT * FROM file('/etc/hostname', 'LineAsString')", 164, "readonly mode"),
    ("two", "SELECT 1; DROP TABLE switchboard.call_facts", 62, "Multi-statements"),
]


@pytest.mark.parametrize(
    ("sql", "code", "says"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_anything_but_a_read_within_the_limits_gets_clickhouses_error(
    system: System, connect_client: Client, sql: str, code: int, says: str
) -> None:
    reply = requests.post(url(system), data=sql, auth=(USER, PASSWORD), timeout=30)
    assert reply.status_code == (400 if code == 62 else 500), reply.text
    assert reply.headers["X-ClickHouse-Exception-Code"] == str(code)
    assert reply.text.startswith(f"Code: {code}. DB::Exception: "), reply.text
    assert says in reply.text and "(version " in reply.text
    with pytest.raises(DatabaseError) as raised:
        connect_client.query(sql)
    assert f"Code: {code}." in str(raised.value)


def test_a_setting_sent_as_a_parameter_cannot_lift_readonly_or_the_limits(
    system: System, chgo: Path
) -> None:
    for setting, value in (("readonly", "0"), ("max_execution_time", "100000")):
        reply = requests.get(
            url(system),
            params={"query": "SELECT 1", setting: value},
            auth=(USER, PASSWORD),
            timeout=10,
        )
        assert reply.status_code == 500 and f"Cannot modify '{setting}'" in reply.text
    limits = requests.get(
        url(system),
        params={
            "query": "SELECT name, value FROM system.settings WHERE name IN "
            "('readonly', 'max_result_rows', 'max_memory_usage') ORDER BY name FORMAT JSONEachRow"
        },
        auth=(USER, PASSWORD),
        timeout=10,
    )
    values = {row["name"]: row["value"] for row in map(json.loads, limits.text.splitlines())}
    assert values == {
        "max_memory_usage": "200000000",
        "max_result_rows": str(MAX_ROWS),
        "readonly": "1",
    }
    [go] = through_go(
        chgo, system, [("insert", "INSERT INTO switchboard.audit_log (id) VALUES (1)")]
    )
    assert go["errorCode"] == 164 and "readonly" in go["error"]


def test_a_wrong_password_gets_clickhouses_authentication_error(system: System) -> None:
    for auth, headers in (
        ((USER, "wrong"), {}),
        (None, {"X-ClickHouse-User": USER, "X-ClickHouse-Key": "x"}),
        (("default", ""), {}),
    ):
        reply = requests.get(
            url(system), params={"query": "SELECT 1"}, auth=auth, headers=headers, timeout=10
        )
        assert reply.status_code == 403
        assert reply.headers["X-ClickHouse-Exception-Code"] == "516"
        assert "Authentication failed" in reply.text
    host, port = endpoint(system)
    with pytest.raises(DatabaseError) as raised:
        clickhouse_connect.get_client(host=host, port=port, username=USER, password="wrong")
    assert "516" in str(raised.value)


def api_reads(client_id: str, call_sid: str) -> list[tuple[str, dict[str, str]]]:
    today = datetime.now(UTC).date()
    span = {"clientId": client_id, "from": str(today - timedelta(days=2)), "to": str(today)}
    reads = [
        ("/api/calls", {"clientId": client_id}),
        ("/api/calls", {**span, "status": "completed"}),
        ("/api/calls", {"clientId": client_id, "limit": "2"}),
        ("/api/calls", {"clientId": client_id, "format": "csv"}),
        ("/api/calls", {"clientId": client_id, "caller": "+12125550101"}),
        (f"/api/calls/{call_sid}", {}),
    ]
    for metric in (
        "summary",
        "durations",
        "peak-hours",
        "top-callers",
        "geography",
        "lead-quality",
        "campaigns",
        "missed-calls",
    ):
        reads.append((f"/api/analytics/{metric}", span))
    for interval in ("hour", "day", "month"):
        reads.append(("/api/analytics/timeseries", {**span, "interval": interval}))
    reads.append(("/api/analytics/summary", {}))
    return reads


def test_an_api_reading_through_the_endpoint_answers_exactly_as_the_one_owning_chdb(
    system: System, tmp_path: Path
) -> None:
    port = free_port()
    host, http_port = endpoint(system)
    replica = Service(
        "analytics",
        {
            **system.env,
            "CLICKHOUSE_URL": f"http://{USER}:{PASSWORD}@{host}:{http_port}",
            "CLICKHOUSE_HTTP_BIND": "",
            "ANALYTICS_CONSUMER": "off",
            "ANALYTICS_GROUP_ID": "analytics-replica",
        },
        port,
        tmp_path,
        bind_variable="ANALYTICS_BIND",
        log_file=tmp_path / "analytics-replica.log",
    ).start()
    try:
        first = system.services["analytics"].url
        headers = {"Authorization": f"Bearer {ADMIN}"}
        client_id, call_sid = system.env["TEST_CLIENT_ID"], system.env["TEST_CALL_SID"]
        for path, params in api_reads(client_id, call_sid):
            owner = requests.get(first + path, params=params, headers=headers, timeout=30)
            reader = requests.get(replica.url + path, params=params, headers=headers, timeout=30)
            assert owner.status_code == 200, (path, params, owner.text)
            assert (reader.status_code, reader.content) == (owner.status_code, owner.content), (
                path,
                params,
                reader.text[:500],
            )
        # The next page of a paged listing, by the cursor the owner gave.
        page = requests.get(
            first + "/api/calls",
            params={"clientId": client_id, "limit": "2"},
            headers=headers,
            timeout=30,
        ).json()
        assert page["nextCursor"]
        following = {"clientId": client_id, "limit": "2", "cursor": page["nextCursor"]}
        owner = requests.get(first + "/api/calls", params=following, headers=headers, timeout=30)
        reader = requests.get(
            replica.url + "/api/calls", params=following, headers=headers, timeout=30
        )
        assert owner.status_code == 200 and owner.json()["calls"]
        assert reader.content == owner.content
        # The audit up to now (the owner's listing writes what it buffered first).
        until = {"to": datetime.now(UTC).isoformat().replace("+00:00", "Z")}
        owner = requests.get(
            first + "/api/analytics/audit", params=until, headers=headers, timeout=30
        )
        reader = requests.get(
            replica.url + "/api/analytics/audit", params=until, headers=headers, timeout=30
        )
        assert owner.status_code == 200 and owner.json() == reader.json()
        assert "not audited" in replica.log_tail(200)
    finally:
        replica.stop()
