"""The edge's own files: the services' OpenAPI documents merged, and Swagger UI to browse them.

nginx cannot merge JSON, so the merge happens before the edge starts:
`write_api_docs` writes `api/openapi.json` (every service's document joined
by switchboard.openapi.merge) and `api/docs/` (a page and Swagger UI's
assets, copied from the swagger-ui-bundle package, so the page loads nothing
from elsewhere) into a folder the edge serves as is. `start_nginx` does it in
its prefix; a deployment runs `python -m devstack.apidocs <folder>` at image
build and points the edge's `public` folder there (deploy/README.md).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import swagger_ui_bundle

from services.analytics.openapi import document as analytics_document
from services.ingress.openapi import document as ingress_document
from services.recordings.openapi import document as recordings_document
from services.reporting.openapi import document as reporting_document
from services.router.openapi import document as router_document
from switchboard.openapi import Document, merge

# Swagger UI's files the page needs (the bundle carries its presets and plugins).
ASSETS = ("swagger-ui.css", "index.css", "swagger-ui-bundle.js", "favicon-32x32.png")

PAGE = """<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>Switchboard API</title>
    <link rel="stylesheet" type="text/css" href="/api/docs/swagger-ui.css">
    <link rel="stylesheet" type="text/css" href="/api/docs/index.css">
    <link rel="icon" type="image/png" href="/api/docs/favicon-32x32.png" sizes="32x32">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="/api/docs/swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="/api/docs/switchboard-docs.js" charset="UTF-8"></script>
  </body>
</html>
"""

# validatorUrl null: Swagger UI would otherwise send the document to swagger.io's validator.
INITIALIZER = """window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/api/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
};
"""


def combined_document() -> Document:
    """Every service's document as one, as the edge serves it at /api/openapi.json."""
    return merge(
        [
            ingress_document(),
            router_document(),
            analytics_document(),
            recordings_document(),
            reporting_document(),
        ],
        "Switchboard API",
        "Twilio's webhooks (ingress); clients, their Twilio numbers and the number pool, "
        "client API keys, the audit log, a caller's erasure and export, buying numbers and "
        "placing outbound calls (router); the call list, export and metrics (analytics); "
        "recordings, their signed media links, deletion and erasure (recordings); weekly and "
        "monthly client reports and alert deliveries (reporting). Send "
        "`Authorization: Bearer <token>`: the admin token manages everything, a client API "
        'key sees only its client. Errors are JSON: {"error": {"code", "message"}}.',
    )


def write_api_docs(root: Path) -> None:
    """Write api/openapi.json and api/docs/ (page and assets) below `root`."""
    api = root / "api"
    docs = api / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    (api / "openapi.json").write_text(json.dumps(combined_document(), indent=1))
    source = Path(swagger_ui_bundle.swagger_ui_path)
    for name in ASSETS:
        shutil.copyfile(source / name, docs / name)
    (docs / "index.html").write_text(PAGE)
    (docs / "switchboard-docs.js").write_text(INITIALIZER)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m devstack.apidocs <folder>", file=sys.stderr)
        return 2
    write_api_docs(Path(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
