"""/docs and /redoc from the service itself: Swagger UI and ReDoc assets shipped in a package, no CDN.

Off unless EHRSUM_API_DOCS is on; then the pages, their assets and /openapi.json are public (they describe
the API and hold no data) and the page asks for nothing outside the service (no validator badge, no fonts).
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"
OPENAPI_URL = "/openapi.json"
PAGES = frozenset({"/docs", "/redoc", OPENAPI_URL})
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"


def is_docs_path(path: str) -> bool:
    """Whether a path is one of the documentation pages or their assets."""
    return path in PAGES or path.startswith(f"{ASSETS}/")


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI at /docs and ReDoc at /redoc from local assets."""
    app.mount(ASSETS, StaticFiles(directory=ASSETS_DIR), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=OPENAPI_URL,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
            # Swagger UI would otherwise send the document to a public validator for its badge.
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": False},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=OPENAPI_URL,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS}/favicon.png",
            with_google_fonts=False,
        )
