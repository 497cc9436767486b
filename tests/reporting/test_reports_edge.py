"""The edge routes the reports' paths (and the alert deliveries) to reporting, and documents them.

The edge runs from deploy/nginx/switchboard.conf.template in front of tiny
HTTP servers that answer with their own name (tests/devstack/test_edge.py's).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import schemathesis
from schemathesis.core.result import Ok

from devstack.apidocs import combined_document
from services.reporting.openapi import document
from tests.devstack.test_edge import echo_edge


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with echo_edge(tmp_path_factory.mktemp("edge")) as url:
        yield url


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/reports"),
        ("GET", "/api/reports?clientId=c1"),
        ("POST", "/api/reports"),
        ("GET", "/api/reports/0b7e4c1e-3d4f-4e8a-9c1b-2a6f0e5d7c3b"),
        ("GET", "/api/reports/0b7e4c1e-3d4f-4e8a-9c1b-2a6f0e5d7c3b.pdf"),
        ("GET", "/api/reports/0b7e4c1e-3d4f-4e8a-9c1b-2a6f0e5d7c3b.html"),
        ("GET", "/api/reporting/deliveries"),
    ],
)
def test_report_paths_reach_reporting(edge: str, method: str, path: str) -> None:
    reply = requests.request(method, edge + path, timeout=5)
    assert reply.status_code == 200
    assert reply.json()["upstream"] == "reporting"
    assert reply.json()["path"] == path


def test_a_path_next_to_the_reports_is_not_exposed(edge: str) -> None:
    assert requests.get(edge + "/api/reportsx", timeout=5).status_code == 404


def test_reportings_document_is_valid_and_in_the_edges(edge: str) -> None:
    own = document()
    results = list(schemathesis.openapi.from_dict(own).get_all_operations())
    assert results and all(isinstance(result, Ok) for result in results)
    served = requests.get(edge + "/api/openapi.json", timeout=5).json()
    assert set(own["paths"]) <= set(served["paths"])
    assert served == combined_document()
    assert {"Report", "ReportFigures", "ReportBuild"} <= set(served["components"]["schemas"])
