"""Pages the app serves itself: offline GraphiQL and the /admin dashboard.

Every script, stylesheet and font comes from ``gql_inventory/static`` (vendored npm
builds with their LICENSE files beside them; see ``static/VENDORED.md``), mounted at
``/static``: the pages load nothing from another host, so they work offline.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(str(files("gql_inventory") / "static"))


@cache
def graphiql_html() -> str:
    """The GraphiQL page (``static/graphiql/index.html``): only ``/static/...`` URLs."""
    return (STATIC_DIR / "graphiql" / "index.html").read_text(encoding="utf-8")


#: The dashboard may run only its own files and talk only to this server (https://www.w3.org/TR/CSP3/):
#: no inline script, nothing from another host, and no framing (clickjacking of its forms).
ADMIN_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


async def admin_page(_: Request) -> Response:
    """``GET /admin``: the back-office dashboard (``static/admin/index.html``), with a strict
    Content-Security-Policy (`ADMIN_CSP`). The admin token never reaches this route: the page
    keeps it in ``sessionStorage`` and sends it to ``/graphql`` only."""
    return FileResponse(
        STATIC_DIR / "admin" / "index.html",
        media_type="text/html",
        headers={
            "Content-Security-Policy": ADMIN_CSP,
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


def graphiql_response() -> HTMLResponse:
    """The GraphiQL page as a response (strawberry's own template loads from unpkg)."""
    return HTMLResponse(graphiql_html())


def web_routes() -> list[Route | Mount]:
    """``/admin`` and the ``/static`` mount."""
    return [
        Route("/admin", admin_page, methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
