"""Group commit of reserveStock through a real server (`serve`'s app under uvicorn, group
commit on by default): 500 buyers over many HTTP connections for 100 units, and the
ledger rows of batched reservations reaching a stockChanged subscriber."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.support.catalog import Catalog, make_location, make_product
from tests.support.invariants import assert_invariants
from tests.support.live import (
    STOCK_CHANGED,
    WAIT,
    GraphQLWS,
    ServerFactory,
    wait_positioned,
)
from tests.support.scenarios import (
    assert_history_sound,
    fetch_one,
    levels_of,
    movement_counts,
)

Sessions = async_sessionmaker[AsyncSession]

RESERVE = """mutation($sku: String!) { reserveStock(input: {lines: [{sku: $sku, quantity: 1}]}) {
  reservation { id status lines { quantity } } userErrors { code sku field } } }"""


async def stock_hot(sessions: Sessions, stock: dict[str, int]) -> None:
    catalog = Catalog()
    async with sessions.begin() as session:
        catalog.locations["Main"] = await make_location(session, "Main", priority=10, default=True)
        catalog.locations["Store"] = await make_location(session, "Store", priority=20)
        catalog.locations["Back"] = await make_location(session, "Back", priority=30)
        await make_product(session, catalog, "hot", "Hot", [("HOT", "Default Title", 100, stock)])


@pytest.mark.parametrize(
    "stock",
    [{"Main": 100}, {"Main": 40, "Store": 35, "Back": 25}],
    ids=["one-location", "three-locations"],
)
async def test_500_buyers_race_for_100_units_over_http(
    servers: ServerFactory, sessions: Sessions, engine: AsyncEngine, stock: dict[str, int]
) -> None:
    await stock_hot(sessions, stock)
    server = await servers.start()
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=server.http_url, timeout=WAIT, limits=limits) as client:

        async def buy() -> dict[str, Any]:
            response = await client.post(
                "/graphql", json={"query": RESERVE, "variables": {"sku": "HOT"}}
            )
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            assert "errors" not in body, body
            payload: dict[str, Any] = body["data"]["reserveStock"]
            return payload

        payloads = await asyncio.gather(*(buy() for _ in range(500)))

    won = [p["reservation"] for p in payloads if p["reservation"] is not None]
    refused = [p["userErrors"] for p in payloads if p["reservation"] is None]
    assert len(won) == 100
    assert len({r["id"] for r in won}) == 100
    assert all(r["status"] == "ACTIVE" and r["lines"] == [{"quantity": 1}] for r in won)
    expected = [
        {"code": "INSUFFICIENT_STOCK", "sku": "HOT", "field": ["input", "lines", "0", "quantity"]}
    ]
    assert all(errors == expected for errors in refused), refused
    levels = await levels_of(sessions, "HOT")
    assert [(lv.location, lv.on_hand, lv.reserved) for lv in levels] == [
        (name, units, units) for name, units in stock.items()
    ]
    assert await movement_counts(sessions, "HOT") == {"RECEIPT": len(stock), "RESERVATION": 100}
    held = await fetch_one(
        sessions,
        """SELECT count(DISTINCT r.id) AS reservations, count(rl.id) AS lines,
                  sum(rl.quantity) AS units,
                  count(DISTINCT m.txid) AS transactions
             FROM reservations r
             JOIN reservation_lines rl ON rl.reservation_id = r.id
             JOIN stock_movements m ON m.reference = 'reservation:' || r.id::text
            WHERE r.status = 'ACTIVE'""",
    )
    assert (held.reservations, held.lines, held.units) == (100, 100, 100)
    assert held.transactions < 100  # buyers shared commits: group commit was in use
    await assert_history_sound(sessions, "HOT")
    await assert_invariants(sessions)
    await wait_positioned(engine)


async def test_batched_reservations_reach_a_stock_subscriber(
    servers: ServerFactory, sessions: Sessions, engine: AsyncEngine
) -> None:
    await stock_hot(sessions, {"Main": 30})
    server = await servers.start()
    await wait_positioned(engine)
    after = await server.stock_cursor()
    async with GraphQLWS.connect(server.ws_url) as ws:
        op = await ws.subscribe(STOCK_CHANGED, {"skus": ["HOT"], "after": after})
        async with httpx.AsyncClient(base_url=server.http_url, timeout=WAIT) as client:
            responses = await asyncio.gather(
                *(
                    client.post("/graphql", json={"query": RESERVE, "variables": {"sku": "HOT"}})
                    for _ in range(20)
                )
            )
        assert all(r.json()["data"]["reserveStock"]["userErrors"] == [] for r in responses)
        events = await ws.events(op, 20)

    assert [e["kind"] for e in events] == ["RESERVATION"] * 20
    assert [(e["reservedDelta"], e["reserved"], e["onHand"]) for e in events] == [
        (1, n, 30) for n in range(1, 21)
    ]
    assert [e["version"] for e in events] == list(range(2, 22))  # the receipt was version 1
    await assert_invariants(sessions)
