"""The edge serves the merged OpenAPI document and a Swagger UI page built only from its own files.

A real nginx from deploy/nginx/switchboard.conf.template, started as `make
run` starts it, in front of upstreams that would answer with their name: the
documents must come from the edge itself, the page must reference nothing
but the edge's own assets (no CDN), and each of those must be there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from services.analytics.openapi import analytics_paths
from services.ingress.openapi import ingress_paths
from services.recordings.openapi import recordings_paths
from services.router.openapi import router_paths
from tests.devstack.test_edge import echo_edge

LOCAL_ASSET = re.compile(r"""(?:src|href)="([^"]*)\"""")
CONTENT_TYPES = {
    ".js": "application/javascript",
    ".css": "text/css",
    ".png": "image/png",
}


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with echo_edge(tmp_path_factory.mktemp("edge")) as url:
        yield url


def test_the_edge_serves_every_services_paths_in_one_document(edge: str) -> None:
    reply = requests.get(edge + "/api/openapi.json", timeout=5)
    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("application/json")
    document = reply.json()
    assert "upstream" not in document  # the edge's own file, not a service's answer
    assert document["openapi"].startswith("3.")
    for paths in (ingress_paths(), router_paths(), analytics_paths(), recordings_paths()):
        assert set(paths) <= set(document["paths"])
    assert "Error" in document["components"]["schemas"]


@pytest.mark.parametrize("path", ["/api/docs", "/api/docs/"])
def test_the_docs_page_loads_only_the_edges_own_assets_and_each_is_there(
    edge: str, path: str
) -> None:
    page = requests.get(edge + path, timeout=5)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert 'id="swagger-ui"' in page.text
    assets = LOCAL_ASSET.findall(page.text)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
    assert any(asset.endswith("swagger-ui.css") for asset in assets)
    for asset in assets:
        assert asset.startswith("/api/docs/"), f"{asset} is not served by the edge"
        reply = requests.get(edge + asset, timeout=5)
        assert reply.status_code == 200, asset
        suffix = Path(asset).suffix
        assert reply.headers["Content-Type"].startswith(CONTENT_TYPES[suffix]), asset
    # Nothing fetched from elsewhere at run time: the page reads the edge's document.
    initializer = requests.get(edge + "/api/docs/switchboard-docs.js", timeout=5).text
    assert 'url: "/api/openapi.json"' in initializer
    assert "validatorUrl: null" in initializer
    assert "http" not in page.text + initializer
