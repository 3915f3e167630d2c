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


async def admin_page(_: Request) -> Response:
    """``GET /admin``: the back-office dashboard (``static/admin/index.html``)."""
    return FileResponse(STATIC_DIR / "admin" / "index.html", media_type="text/html")


def graphiql_response() -> HTMLResponse:
    """The GraphiQL page as a response (strawberry's own template loads from unpkg)."""
    return HTMLResponse(graphiql_html())


def web_routes() -> list[Route | Mount]:
    """``/admin`` and the ``/static`` mount."""
    return [
        Route("/admin", admin_page, methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
