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
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_ASSETS = "/docs/assets"
FAVICON = "/favicon.ico"


def assets_dir() -> Path:
    """The folder of swagger-ui-bundle.js and swagger-ui.css inside fastapi-offline."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def add_docs(app: FastAPI) -> None:
    """Mount the assets and add /docs; the app must be made with docs_url=None (and redoc_url=None)."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=assets_dir()), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=FAVICON,
        )
