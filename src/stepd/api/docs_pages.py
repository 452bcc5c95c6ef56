"""`/docs` (Swagger UI) and `/redoc`, served from this server alone.

FastAPI's own pages load Swagger UI from a CDN and start it with an inline script; a
server on a closed network shows a blank page, and a Content-Security-Policy without
'unsafe-inline' scripts blocks it. Here the files come from the `fastapi-offline`
package (Swagger UI 5, which reads OpenAPI 3.1; `swagger-ui-bundle` ships Swagger UI 4,
which refuses 3.1 documents) and the start-up script is a static file of ours.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_URL = "/docs/static"
VENDOR = Path(str(files("fastapi_offline") / "static"))
OURS = Path(__file__).resolve().parent / "docs_static"

SWAGGER_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} · API</title>
<link rel="stylesheet" href="{static}/vendor/swagger-ui.css">
<link rel="icon" href="{static}/vendor/favicon.png">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi}"></div>
<script src="{static}/vendor/swagger-ui-bundle.js"></script>
<script src="{static}/swagger-init.js"></script>
</body>
</html>
"""

REDOC_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} · API reference</title>
<link rel="icon" href="{static}/vendor/favicon.png">
</head>
<body>
<redoc spec-url="{openapi}"></redoc>
<script src="{static}/vendor/redoc.standalone.js"></script>
</body>
</html>
"""


def install(app: FastAPI, *, openapi_url: str = "/openapi.json") -> None:
    """Serve `/docs`, `/redoc` and their files (the app is made with docs_url=None)."""
    app.mount(f"{STATIC_URL}/vendor", StaticFiles(directory=VENDOR), name="docs-vendor")
    app.mount(STATIC_URL, StaticFiles(directory=OURS), name="docs-static")
    fields = {"title": app.title, "static": STATIC_URL, "openapi": openapi_url}
    swagger = SWAGGER_PAGE.format(**fields)
    redoc = REDOC_PAGE.format(**fields)

    @app.get("/docs", include_in_schema=False)
    async def swagger_page() -> HTMLResponse:
        return HTMLResponse(swagger)

    @app.get("/redoc", include_in_schema=False)
    async def redoc_page() -> HTMLResponse:
        return HTMLResponse(redoc)
