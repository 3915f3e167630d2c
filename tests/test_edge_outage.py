"""The GraphQL edge while PostgreSQL is unreachable (503, retryable) and the production
defaults (GraphiQL, introspection and field suggestions off unless named).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from gql_inventory.app import create_app
from gql_inventory.kit.outage import is_database_outage
from gql_inventory.models import Reservation
from gql_inventory.settings import Settings
from tests.support.catalog import Catalog
from tests.support.live import WAIT, LiveServer, eventually

LOCATIONS = "{ locations { name } }"
RESERVE = """mutation($input: ReserveStockInput!) { reserveStock(input: $input) {
  reservation { id } userErrors { code message } } }"""
MUG = {"input": {"lines": [{"sku": "MUG", "quantity": 1}]}}


async def post(client: httpx.AsyncClient, query: str, variables: Any = None) -> httpx.Response:
    return await client.post("/graphql", json={"query": query, "variables": variables or {}})


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    errors = response.json()["errors"]
    assert errors, response.text
    for error in errors:
        assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE", error
        assert error["extensions"]["retryAfter"] == 5


@pytest.fixture
async def dead_client() -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose database port refuses connections."""
    app = create_app(Settings(), database_url="postgresql://postgres@127.0.0.1:1/nowhere")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
    await app.state.services.close()


# ---------------------------------------------------------------- item 8: outages


async def test_unreachable_database_gives_503_with_retry_after(
    dead_client: httpx.AsyncClient,
) -> None:
    assert_unavailable(await post(dead_client, LOCATIONS))
    assert_unavailable(await post(dead_client, RESERVE, MUG))
    # What does not touch the database still works.
    ok = await post(dead_client, "{ __typename }")
    assert ok.status_code == 200
    assert ok.json() == {"data": {"__typename": "Query"}}


def test_outage_classifier() -> None:
    assert is_database_outage(ConnectionRefusedError(111, "refused"))
    assert is_database_outage(asyncpg.exceptions.AdminShutdownError("terminating connection"))
    wrapped = RuntimeError("outer")
    wrapped.__cause__ = asyncpg.exceptions.TooManyConnectionsError("too many")
    assert is_database_outage(wrapped)
    assert is_database_outage(sa_exc.TimeoutError("QueuePool limit reached"))
    assert is_database_outage(
        sa_exc.DBAPIError("SELECT 1", None, Exception("gone"), connection_invalidated=True)
    )
    assert not is_database_outage(sa_exc.DBAPIError("SELECT 1", None, Exception("bad sql")))
    assert not is_database_outage(asyncpg.exceptions.QueryCanceledError("statement timeout"))
    assert not is_database_outage(ValueError("a bug"))


def _as_role(url: str, role: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{role}@{host}", parts.path, parts.query, ""))


@pytest.fixture
async def locked_out_role(database_url: str) -> AsyncIterator[tuple[str, asyncpg.Connection]]:
    """A login role with the service's rights, and a superuser connection to lock it out."""
    role = f"edge_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f"CREATE ROLE {role} LOGIN")
    await admin.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
    await admin.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")
    try:
        yield role, admin
    finally:
        await admin.execute(f"ALTER ROLE {role} CONNECTION LIMIT -1")
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role
        )
        await admin.execute(f"DROP OWNED BY {role}")
        await admin.execute(f"DROP ROLE {role}")
        await admin.close()


async def test_requests_during_an_outage_get_503_never_a_masked_error(
    database_url: str,
    catalog: Catalog,
    engine: AsyncEngine,
    locked_out_role: tuple[str, asyncpg.Connection],
) -> None:
    """Requests run non-stop while the database drops every connection of the service
    and refuses new ones, then lets them back: each answer is data or a typed 503."""
    role, admin = locked_out_role
    app = create_app(Settings(), database_url=_as_role(database_url, role))
    transport = httpx.ASGITransport(app=app)
    answers: list[httpx.Response] = []
    stop = asyncio.Event()

    async def traffic(client: httpx.AsyncClient) -> None:
        while not stop.is_set():
            answers.append(await post(client, LOCATIONS))
            answers.append(await post(client, RESERVE, MUG))

    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        workers = [asyncio.create_task(traffic(client)) for _ in range(4)]
        try:
            await eventually(lambda: _seen(answers, 200), what="answers before the outage")
            await admin.execute(f"ALTER ROLE {role} CONNECTION LIMIT 0")
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role
            )
            outage_from = len(answers)
            await eventually(lambda: _seen(answers[outage_from:], 503), what="503s")
            await admin.execute(f"ALTER ROLE {role} CONNECTION LIMIT -1")
            back_from = len(answers)
            await eventually(lambda: _seen(answers[back_from:], 200, 10), what="recovery")
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*workers), WAIT)
    await app.state.services.close()

    for response in answers:
        if response.status_code == 503:
            assert_unavailable(response)
        else:
            assert response.status_code == 200, response.text
            assert "errors" not in response.json(), response.text
    assert sum(r.status_code == 503 for r in answers) > 0
    # Every reservation answered 200 exists (a 503 may come after a commit: retry safely
    # with an idempotency key).
    made = sum(
        1
        for r in answers
        if r.status_code == 200 and (r.json()["data"].get("reserveStock") or {}).get("reservation")
    )
    async with engine.connect() as conn:
        count = (await conn.execute(select(func.count()).select_from(Reservation))).scalar()
    assert made > 0
    assert count is not None
    assert count >= made


async def _seen(answers: list[httpx.Response], status: int, times: int = 1) -> bool:
    return sum(r.status_code == status for r in answers) >= times


async def _pooled_backend_pids(app_engine: AsyncEngine, count: int) -> set[int]:
    """Fill the app's pool with `count` connections at once; the server pids behind them."""
    gate = asyncio.Event()
    pids: set[int] = set()

    async def hold() -> None:
        async with app_engine.connect() as conn:
            pids.add((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
            if len(pids) == count:
                gate.set()
            await gate.wait()

    await asyncio.wait_for(asyncio.gather(*(hold() for _ in range(count))), WAIT)
    return pids


async def test_a_killed_pooled_connection_is_answered_503_then_replaced(
    database_url: str, catalog: Catalog, engine: AsyncEngine
) -> None:
    """No pre-ping: every pooled connection of the app is killed while idle; the next
    request is answered properly (data, or a typed 503 with Retry-After, never a masked
    error), and the ones after it run on fresh connections."""
    async with _client_of(Settings(), database_url) as client:
        app_engine = client._transport.app.state.services.engine  # type: ignore[attr-defined]
        pids = await _pooled_backend_pids(app_engine, 4)
        assert (await post(client, LOCATIONS)).status_code == 200
        admin = await asyncpg.connect(database_url)
        try:
            killed = await admin.fetchval(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE pid = ANY($1::int[])) AS t",
                list(pids),
            )
        finally:
            await admin.close()
        assert killed == len(pids)
        for query, variables in [(LOCATIONS, None), (RESERVE, MUG)]:
            first = await post(client, query, variables)
            if first.status_code == 503:
                assert_unavailable(first)
            else:
                assert first.status_code == 200, first.text
                assert "errors" not in first.json(), first.text
        for query, variables in [(LOCATIONS, None), (RESERVE, MUG)] * 3:
            answer = await post(client, query, variables)
            assert answer.status_code == 200, answer.text
            assert "errors" not in answer.json(), answer.text
        async with app_engine.connect() as conn:
            now = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert now not in pids


# ---------------------------------------------------------------- item 9: production


@asynccontextmanager
async def _client_of(settings: Settings, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, database_url=database_url)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
    await app.state.services.close()


INTROSPECT = "{ __schema { queryType { name } } }"
TYPO = "{ locatons { name } }"


async def test_production_turns_development_aids_off(database_url: str) -> None:
    async with _client_of(Settings(environment="production"), database_url) as client:
        graphiql = await client.get("/graphql", headers={"Accept": "text/html"})
        assert graphiql.status_code == 404
        body = (await post(client, INTROSPECT)).json()
        assert body["data"] is None
        assert "introspection has been disabled" in body["errors"][0]["message"]
        typo = (await post(client, TYPO)).json()["errors"][0]["message"]
        assert "locatons" in typo
        assert "Did you mean" not in typo
        assert (await post(client, "{ __typename }")).json() == {"data": {"__typename": "Query"}}


async def test_production_aids_can_be_turned_on_by_name(database_url: str) -> None:
    settings = Settings(environment="production", introspection=True, graphiql=True)
    async with _client_of(settings, database_url) as client:
        graphiql = await client.get("/graphql", headers={"Accept": "text/html"})
        assert graphiql.status_code == 200
        body = (await post(client, INTROSPECT)).json()
        assert body == {"data": {"__schema": {"queryType": {"name": "Query"}}}}
        assert "Did you mean" not in (await post(client, TYPO)).json()["errors"][0]["message"]


async def test_development_keeps_them_on(database_url: str) -> None:
    async with _client_of(Settings(), database_url) as client:
        assert (await client.get("/graphql", headers={"Accept": "text/html"})).status_code == 200
        assert "errors" not in (await post(client, INTROSPECT)).json()
        assert "Did you mean" in (await post(client, TYPO)).json()["errors"][0]["message"]


async def test_startup_log_says_which_aids_are_on(database_url: str, tmp_path: Path) -> None:
    server = LiveServer(database_url, tmp_path / "server.log", ENVIRONMENT="production")
    server.env.pop("GRAPHIQL")
    server.env["INTROSPECTION"] = "true"
    await server.start()
    await server.stop()
    started = next(line for line in server.log().splitlines() if "app.started" in line)
    assert "environment=production" in started
    assert "graphiql=False" in started
    assert "introspection=True" in started
    assert "field_suggestions=False" in started
