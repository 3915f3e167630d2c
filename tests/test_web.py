"""The pages the app serves itself load nothing from another host (offline GraphiQL)."""

from __future__ import annotations

import re

import httpx

URL = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


async def test_graphiql_loads_only_our_own_assets(client: httpx.AsyncClient) -> None:
    """Every script and stylesheet of the GraphiQL page is a /static URL that answers 200."""
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "unpkg" not in page.text
    assert "//" not in re.sub(r"<!--.*?-->", "", page.text, flags=re.S)
    urls = [u for u in URL.findall(page.text) if not u.startswith("data:")]
    assert any(u.endswith("graphiql.min.js") for u in urls)
    for url in urls:
        assert url.startswith("/static/"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 0


async def test_vendored_licenses_are_served_with_the_assets(client: httpx.AsyncClient) -> None:
    for name in ("LICENSE.graphiql", "LICENSE.react", "LICENSE.react-dom"):
        response = await client.get(f"/static/graphiql/{name}")
        assert response.status_code == 200
        assert "MIT" in response.text or "Permission is hereby granted" in response.text


async def test_static_refuses_paths_outside_the_folder(client: httpx.AsyncClient) -> None:
    response = await client.get("/static/../app.py")
    assert response.status_code == 404


async def test_admin_page_loads_only_our_own_assets(client: httpx.AsyncClient) -> None:
    """GET /admin: the dashboard's scripts (graphql-ws vendored) and styles are /static URLs."""
    page = await client.get("/admin")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self';" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    urls = [u for u in URL.findall(page.text) if not u.startswith("data:")]
    assert "/static/admin/vendor/graphql-ws.min.js" in urls
    for url in urls:
        assert url.startswith("/static/"), url
        assert (await client.get(url)).status_code == 200, url
    license_file = await client.get("/static/admin/vendor/LICENSE.graphql-ws.md")
    assert "Permission is hereby granted" in license_file.text
