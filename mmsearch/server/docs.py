"""`/docs` (Swagger UI), served from this server alone so that it works on an offline machine.

FastAPI's own docs pages load their JavaScript and CSS from a CDN. This is FastAPI's "self-hosting JavaScript
and CSS for docs" recipe instead: the default pages are turned off (`docs_url=None`, `redoc_url=None`), and /docs
points at the copy of Swagger UI that the `fastapi-offline` package vendors, mounted under DOCS_ASSETS. The
assets are public (they hold nothing of the index); /docs and `/openapi.json` follow the server's token rule like
every API route. There is no /redoc: ReDoc still fetches its logo from its CDN.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_ASSETS = "/docs/assets"
FAVICON = "/favicon.ico"
DOCS_INIT = "/static/docs.js"  # SwaggerUIBundle({url: "/openapi.json", ...}): FastAPI's page does this inline
# FastAPI's get_swagger_ui_html starts Swagger UI with an inline <script>, which the server's strict CSP blocks.
DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link type="text/css" rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" href="{favicon}">
<title>{title}</title>
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{init}"></script>
</body>
</html>
"""


def assets_dir() -> Path:
    """The folder of swagger-ui-bundle.js and swagger-ui.css inside fastapi-offline."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def add_docs(app: FastAPI) -> None:
    """Mount the assets and add /docs; the app must be made with docs_url=None (and redoc_url=None)."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=assets_dir()), name="docs-assets")

    page = DOCS_PAGE.format(title=f"{app.title} API", assets=DOCS_ASSETS, favicon=FAVICON, init=DOCS_INIT)

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return HTMLResponse(page)
