"""``/docs`` (Swagger UI) and ``/redoc`` from files shipped with the installation.

FastAPI's own pages load their scripts from a CDN: on an isolated floor network, or
a laptop without internet, they stayed blank. The same UIs are served here from the
``fastapi-offline`` package's copies, and ReDoc without web fonts.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

from api.problems import problem

router = APIRouter(include_in_schema=False)

ASSETS = "/docs/assets"
FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}


@router.get("/docs", response_class=HTMLResponse)
async def swagger_ui(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} · API",
        swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
    )


# ReDoc's bundle links its logo from its vendor's CDN; the page's policy keeps every
# request on this server (the logo is simply not shown).
REDOC_POLICY = (
    "default-src 'self'; script-src 'self' blob:; worker-src 'self' blob:; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'"
)


@router.get("/redoc", response_class=HTMLResponse)
async def redoc(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    page = get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} · API",
        redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS}/favicon.png",
        with_google_fonts=False,
    )
    page.headers["Content-Security-Policy"] = REDOC_POLICY
    return page


@router.get(ASSETS + "/{name}")
async def asset(name: Annotated[str, Path(max_length=40)]) -> Response:
    media = FILES.get(name)
    if media is None:
        return problem(404, f"no documentation asset {name!r}")
    body = resources.files("fastapi_offline").joinpath("static", name).read_bytes()
    return Response(
        body,
        media_type=media,
        headers={"Cache-Control": "max-age=86400", "X-Content-Type-Options": "nosniff"},
    )
