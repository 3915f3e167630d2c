"""The service behind a real PgBouncer in transaction mode (Debian's, without
prepared-statement support): `DB_STATEMENT_CACHE=false` with concurrent reserves and
reads, and LISTEN/NOTIFY kept on a direct connection (`BROADCAST_URL`).

PgBouncer here has two server connections per database, so the requests' transactions
hop between them: a statement prepared by name on one is unknown on the other, and two
clients preparing the same asyncpg name on one collide.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bench.server import Processes
from cluster.stack import PgBouncer, free_port
from gql_inventory.live.pubsub import LISTEN_APPLICATION_NAME
from gql_inventory.stock.invariants import find_violations
from tests.support.catalog import make_catalog
from tests.support.live import (
    ADMIN_TOKEN,
    STOCK_CHANGED,
    WAIT,
    GraphQLWS,
    ServerFactory,
    reserve_on,
    wait_hub_at,
    wait_positioned,
)

pytestmark = pytest.mark.cluster

RESERVE = """mutation($sku: String!, $key: String) {
  reserveStock(input: {lines: [{sku: $sku, quantity: 1}], idempotencyKey: $key}) {
    reservation { id } userErrors { code } } }"""
#: The ledger is always read from SQL (the stock figures may come from memory).
READ = """query($sku: String!) { variant(sku: $sku) { available }
  stockMovements(sku: $sku, first: 5) { edges { node { id } } } }"""


@pytest.fixture
async def pooled_url(database_url: str) -> AsyncIterator[str]:
    """The test database through PgBouncer (transaction mode, 2 server connections)."""
    processes = Processes()
    bouncer = PgBouncer(processes, database_url, free_port(), pool_size=2)
    await bouncer.start()
    try:
        yield bouncer.url(urlsplit(database_url).path.strip("/"))
    finally:
        processes.stop_all()
        bouncer.remove_files()


async def _post(http: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def test_reserves_and_reads_through_pgbouncer_in_transaction_mode(
    pooled_url: str,
    servers: ServerFactory,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
) -> None:
    async with sessions.begin() as session:
        await make_catalog(session)
    server = await servers.start(
        DATABASE_URL=pooled_url,
        DB_STATEMENT_CACHE="false",
        BROADCAST_URL="memory://",  # LISTEN needs a session of its own: not through PgBouncer
        RESERVE_BATCH_MAX="4",
        DB_POOL_SIZE="4",
    )
    skus = ["SHIRT-S", "SHIRT-M", "MUG"]
    async with httpx.AsyncClient(base_url=server.http_url, timeout=WAIT) as http:

        async def reserve(n: int) -> dict[str, Any]:
            sku = skus[n % len(skus)]
            data, _ = await asyncio.gather(
                _post(http, RESERVE, {"sku": sku, "key": str(uuid.uuid4())}),
                _post(http, READ, {"sku": sku}),
            )
            payload: dict[str, Any] = data["reserveStock"]
            return payload

        payloads = await asyncio.gather(*(reserve(n) for n in range(60)))
    held = [p for p in payloads if p["reservation"] is not None]
    refused = [p for p in payloads if p["reservation"] is None]
    assert held
    assert refused  # SHIRT-M (3 units) sells out
    assert {e["code"] for p in refused for e in p["userErrors"]} == {"INSUFFICIENT_STOCK"}
    async with engine.connect() as conn:
        assert await find_violations(conn) == []
        count = (await conn.exec_driver_sql("SELECT count(*) FROM reservations")).scalar_one()
    assert count == len(held)


async def test_events_cross_processes_by_listen_on_a_direct_connection(
    pooled_url: str,
    database_url: str,
    servers: ServerFactory,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
) -> None:
    """Requests through PgBouncer, LISTEN/NOTIFY on PostgreSQL directly (`BROADCAST_URL`)."""
    async with sessions.begin() as session:
        await make_catalog(session)
    env = {
        "DATABASE_URL": pooled_url,
        "DB_STATEMENT_CACHE": "false",
        "BROADCAST_URL": database_url,
        "LIVE_POLL_SECONDS": "60",  # anything delivered came by NOTIFY, not the ledger poll
        "BROADCAST_HEARTBEAT_SECONDS": "5",
    }
    first = await servers.start(**env)
    second = await servers.start(**env)
    top = await wait_positioned(engine)
    for server in (first, second):
        await wait_hub_at(server, top)
    catch_ups = await second.metric("gql_inventory_ledger_catch_ups_total")
    async with GraphQLWS.connect(second.ws_url) as client:
        op = await client.subscribe(STOCK_CHANGED, {"after": await second.stock_cursor()})
        made = await reserve_on(first, ("MUG", 2))  # committed through PgBouncer
        assert made["userErrors"] == [], made
        (event,) = await client.events(op, 1)
    assert (event["sku"], event["reservedDelta"]) == ("MUG", 2)
    assert await second.metric("gql_inventory_ledger_catch_ups_total") == catch_ups
    async with engine.connect() as conn:
        listening = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND application_name = :name"
                ),
                {"name": LISTEN_APPLICATION_NAME},
            )
        ).scalar_one()
    assert listening == 2  # one direct LISTEN connection per process
