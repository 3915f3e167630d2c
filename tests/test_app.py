"""HTTP surface: health, readiness, GraphiQL, the committed SDL snapshot."""

from __future__ import annotations

from pathlib import Path

import httpx

from gql_inventory.schema import print_sdl

ROOT = Path(__file__).resolve().parent.parent


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reaches_the_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_graphiql_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


def test_committed_sdl_matches_the_code() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == print_sdl(), "run: .venv/bin/gql-inventory schema > schema.graphql"
