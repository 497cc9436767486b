"""The Grafana provisioning, and every dashboard panel's SQL run against the real schema.

Each panel query is expanded the way the ClickHouse plugin expands it
(tests/analytics/grafana_macros.py), with the dashboard's variables resolved
as Grafana would (query variables by running their own query), and run on
chDB over the known data set of test_metrics_api. A query that fails, comes
back without rows, or has a column with no value in any row fails the test.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.analytics.consumer import write
from services.analytics.store import Store
from tests.analytics import call_scripts as script
from tests.analytics.grafana_macros import MacroError, TimeRange, expand
from tests.analytics.test_metrics_api import seed

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
PLUGIN = "grafana-clickhouse-datasource"
WINDOW = TimeRange(
    datetime(2024, 4, 1, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC), interval_s=3600
)


def load(path: Path) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(path.read_text())
    return body


def targets(dashboard: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (panel["title"], target)
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def test_expansion_follows_the_plugin() -> None:
    window = TimeRange(
        datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, 0, 0, 1, 500000, tzinfo=UTC), 0
    )
    sql = expand(
        "SELECT $__timeInterval(t) FROM x WHERE $__timeFilter(t) AND c IN (${c:singlequote})"
        " AND $__conditionalAll(d IN ($d), $d) AND $__dateFilter(day) AND $__unknown",
        {"c": "acme", "d": "All"},
        window,
    )
    assert sql == (
        "SELECT toStartOfInterval(toDateTime(t), INTERVAL 1 second) FROM x WHERE "
        "t >= toDateTime(1714521600) AND t <= toDateTime(1714608001) AND c IN ('acme')"
        " AND 1=1 AND day >= toDate('2024-05-01') AND day <= toDate('2024-05-02') AND $__unknown"
    )
    assert expand("$__timeFilter_ms(t) $__toTime_ms $__interval_s", {}, window) == (
        "t >= fromUnixTimestamp64Milli(1714521600000) AND t <= fromUnixTimestamp64Milli("
        "1714608001500) fromUnixTimestamp64Milli(1714608001500) 1"
    )
    assert expand("$__conditionalAll(d IN ($d), $d)", {"d": ["a", "b"]}, window) == (
        "d IN ('a','b')"
    )
    assert expand("$__timeGroup(t, 5m)", {}, window) == (
        "toStartOfInterval(toDateTime(t), INTERVAL 300 second)"
    )
    with pytest.raises(MacroError):
        expand("$__timeFilter(a, b)", {}, window)


def test_provisioning_points_grafana_at_clickhouse() -> None:
    [datasource] = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "clickhouse.yaml").read_text()
    )["datasources"]
    assert datasource["type"] == PLUGIN
    assert {"host", "port", "protocol", "defaultDatabase", "username"} <= set(
        datasource["jsonData"]
    )
    assert datasource["jsonData"]["protocol"] in ("http", "native")
    assert "password" in datasource["secureJsonData"]
    [provider] = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "switchboard.yaml").read_text()
    )["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]
    assert {path.stem for path in DASHBOARDS} == {"global", "client"}
    for path in DASHBOARDS:
        dashboard = load(path)
        assert dashboard["uid"] and dashboard["title"]
        assert targets(dashboard), path.name
        for title, target in targets(dashboard):
            assert target["datasource"] == {"type": PLUGIN, "uid": datasource["uid"]}, title
            assert target["editorType"] == "sql" and target["refId"], title
            assert target["format"] in (0, 1, 2), title
            assert target["queryType"] in ("table", "timeseries", "logs"), title
            assert target["rawSql"].strip(), title


def resolve_variables(dashboard: dict[str, Any], store: Store) -> dict[str, str]:
    """Variables in order: constants as given, query variables from their first row."""
    values: dict[str, str] = {}
    for variable in dashboard.get("templating", {}).get("list", []):
        name = variable["name"]
        if name == "database":
            values[name] = store.database
        elif variable["type"] == "constant":
            values[name] = variable["query"]
        elif variable["type"] == "query":
            rows = store._query(expand(variable["query"], values, WINDOW))
            assert rows, f"variable {name} has no value"
            values[name] = str(rows[0][0])
    return values


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_panel_query_runs_with_data_in_every_column(path: Path, store: Store) -> None:
    seed(store)
    store.record_conversion("acme", "A2", 250.0)
    dashboard = load(path)
    variables = resolve_variables(dashboard, store)
    if path.stem == "client":
        assert (variables["client"], variables["tz"]) == ("acme", "America/New_York")
    for title, target in targets(dashboard):
        sql = expand(target["rawSql"], variables, WINDOW)
        assert "$" not in sql.replace("$__", ""), f"{title}: unexpanded variable in {sql}"
        with store._lock:
            result = store._client.query(sql)
        rows = result.result_rows
        assert rows, f"{title}: no rows"
        for index, column in enumerate(result.column_names):
            values = [row[index] for row in rows]
            assert any(v is not None and v != "" for v in values), (
                f"{title}: column {column} is empty"
            )


def panel_rows(path: Path, store: Store, title: str) -> list[dict[str, Any]]:
    """The rows of the dashboard panel `title`, by column name."""
    dashboard = load(path)
    variables = resolve_variables(dashboard, store)
    [target] = [target for name, target in targets(dashboard) if name == title]
    with store._lock:
        result = store._client.query(expand(target["rawSql"], variables, WINDOW))
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def test_a_voicemail_shows_on_both_dashboards_as_missed_and_as_voicemail(store: Store) -> None:
    seed(store)
    global_board, client_board = (
        GRAFANA / "dashboards" / "global.json",
        GRAFANA / "dashboards" / "client.json",
    )
    missed_before = panel_rows(global_board, store, "Missed calls")[0]["missed"]
    client_missed_before = panel_rows(client_board, store, "Missed")[0]["missed"]
    write(store, script.voicemail_call("CAvoicemail", datetime(2024, 5, 2, 15, tzinfo=UTC), "acme"))

    assert panel_rows(global_board, store, "Missed calls")[0]["missed"] == missed_before + 1
    by_hour = panel_rows(global_board, store, "Calls by hour")
    assert sum(row["voicemail"] for row in by_hour) == 1
    by_client = panel_rows(global_board, store, "Calls by client")
    assert sum(row["voicemail"] for row in by_client) == 1
    recent = panel_rows(global_board, store, "Recent missed calls")
    assert [row["status"] for row in recent].count("voicemail") == 1

    assert panel_rows(client_board, store, "Missed")[0]["missed"] == client_missed_before + 1
    assert sum(row["voicemail"] for row in panel_rows(client_board, store, "Volume")) == 1
    outcomes = {row["status"]: row["calls"] for row in panel_rows(client_board, store, "Outcomes")}
    assert outcomes["voicemail"] == 1
    [call] = [
        row
        for row in panel_rows(client_board, store, "Recent calls")
        if row["callSid"] == "CAvoicemail"
    ]
    assert (call["status"], call["recording"]) == ("voicemail", "/api/twilio/recording/CAvoicemail")
