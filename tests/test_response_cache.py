"""The response cache on a running app (docs/adr/0012-read-response-cache.md).

The app's lifespan runs (relay, hub, read model); requests go through ASGI. "Another
process" is the test's own engine, heard by the app's hub only through the ledger.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import Receive, Scope, Send

from gql_inventory.app import create_app
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.models import MovementKind, Variant
from gql_inventory.readmodel.reads import ReadModel
from gql_inventory.response_cache.asgi import ResponseCache
from gql_inventory.response_cache.operations import READ_FIELDS, ReadOperations
from gql_inventory.services import Services
from gql_inventory.settings import Settings
from gql_inventory.stock.ledger import apply_movement
from tests.support.catalog import Catalog
from tests.support.invariants import assert_invariants
from tests.support.live import eventually

VARIANT = (
    "query($sku: String!) { variant(sku: $sku) { sku title lowStockThreshold available "
    "stockLevels { location { name } available version } } }"
)
READS = [
    (VARIANT, {"sku": "MUG"}),
    (
        "query($s: [String!]!) { variants(skus: $s) { sku available isLowStock } }",
        {"s": ["MUG", "CAP"]},
    ),
    (
        "{ products(first: 2) { edges { cursor node { handle totalAvailable "
        "variants { sku available } } } pageInfo { hasNextPage endCursor } } }",
        None,
    ),
    ("{ locations { name priority isDefault } }", None),
]
RESERVE = (
    'mutation { reserveStock(input: {lines: [{sku: "MUG", quantity: 1}]}) { userErrors { code } } }'
)
ADMIN = {"Authorization": "Bearer admin-secret"}


def _count(result: str) -> float:
    return (
        REGISTRY.get_sample_value("gql_inventory_response_cache_total", {"result": result}) or 0.0
    )


@dataclass
class Running:
    client: httpx.AsyncClient
    uncached: httpx.AsyncClient  # the same view, straight (no cache in front)
    services: Services
    cache: ResponseCache | None

    @property
    def reads(self) -> ReadModel:
        assert self.services.live is not None
        assert self.services.live.reads is not None
        return self.services.live.reads

    async def post(
        self, query: str, variables: Any = None, *, admin: bool = False
    ) -> httpx.Response:
        body = {"query": query, "variables": variables}
        response = await self.client.post("/graphql", json=body, headers=ADMIN if admin else {})
        assert response.status_code == 200, response.text
        return response

    async def available(self, sku: str) -> int:
        data = (await self.post(VARIANT, {"sku": sku})).json()
        assert "errors" not in data, data
        return int(data["data"]["variant"]["available"])


@pytest.fixture
async def running(
    request: pytest.FixtureRequest, database_url: str, catalog: Catalog
) -> AsyncIterator[Running]:
    values: dict[str, Any] = {
        "admin_tokens": ["admin-secret"],
        "live_poll_seconds": 0.2,
        "expiry_interval_seconds": 0,
        "pending_payment_check_interval_seconds": 0,
        **getattr(request, "param", {}),
    }
    app = create_app(Settings(**values), database_url=database_url)
    services: Services = app.state.services
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        straight = httpx.ASGITransport(app=app.state.graphql)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
            httpx.AsyncClient(transport=straight, base_url="http://testserver") as uncached,
        ):
            run = Running(client, uncached, services, app.state.response_cache)
            if services.live is not None and services.live.reads is not None:
                reads = services.live.reads

                async def trusted() -> bool:
                    return reads.tag() is not None

                await eventually(trusted, what="the read model to be trusted")
            yield run


async def _receipt_elsewhere(
    running: Running,
    sessions: async_sessionmaker[AsyncSession],
    variant_id: int,
    units: int,
) -> None:
    """`units` received at the variant's first level by another engine (the app's hub
    hears it through the ledger only); returns once the hub has dispatched it."""
    async with running.services.engine.connect() as conn:
        level_id = (
            await conn.execute(
                text("SELECT id FROM stock_levels WHERE variant_id = :v ORDER BY id LIMIT 1"),
                {"v": variant_id},
            )
        ).scalar_one()
    epoch = running.reads.epoch
    async with sessions.begin() as session:
        await apply_movement(
            UnitOfWork(session, actor="import"),
            level_id=level_id,
            kind=MovementKind.RECEIPT,
            on_hand_delta=units,
        )

    async def dispatched() -> bool:
        return running.reads.epoch > epoch

    await eventually(dispatched, what="the hub to dispatch the receipt")


async def _same_three_ways(
    run: Running, query: str, variables: Any, admin: bool, *, kept: bool = False
) -> bytes:
    """Miss (a hit when `kept`: still fresh from before), then hit, then the view without
    the cache: the same status, headers, bytes."""
    headers = ADMIN if admin else {}
    body = {"query": query, "variables": variables}
    hits = _count("hit")
    miss = await run.client.post("/graphql", json=body, headers=headers)
    hit = await run.client.post("/graphql", json=body, headers=headers)
    straight = await run.uncached.post("/graphql", json=body, headers=headers)
    assert _count("hit") == hits + (2 if kept else 1)
    assert miss.status_code == hit.status_code == straight.status_code == 200
    assert miss.content == hit.content == straight.content
    assert miss.headers.raw == hit.headers.raw == straight.headers.raw
    assert "errors" not in miss.json()
    return miss.content


async def test_a_hit_follows_a_miss_with_the_bytes_execution_gives(running: Running) -> None:
    for admin in (False, True):
        for query, variables in READS:
            await _same_three_ways(running, query, variables, admin)
    assert running.cache is not None
    assert len(running.cache.store) == 2 * len(READS)
    # after a change of MUG, fresh answers are again what execution gives; the locations
    # (no stock read) stay kept
    await running.post(RESERVE.replace("quantity: 1", "quantity: 3"))
    for admin in (False, True):
        for query, variables in READS:
            kept = "locations" in query
            await _same_three_ways(running, query, variables, admin, kept=kept)


async def test_a_reservation_made_here_shows_in_the_next_read(running: Running) -> None:
    assert await running.available("SHIRT-S") == await running.available("SHIRT-S") == 12
    body = (
        await running.post(
            'mutation { reserveStock(input: {lines: [{sku: "SHIRT-S", quantity: 5}]}) '
            "{ userErrors { code } } }"
        )
    ).json()
    assert body["data"]["reserveStock"]["userErrors"] == []
    assert await running.available("SHIRT-S") == 7


async def test_a_change_committed_elsewhere_shows_once_dispatched(
    running: Running, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    assert await running.available("MUG") == await running.available("MUG") == 50
    await _receipt_elsewhere(running, sessions, catalog.variants["MUG"], 4)
    assert await running.available("MUG") == 54


async def test_catalog_changes_invalidate_entries(
    running: Running, sessions: async_sessionmaker[AsyncSession]
) -> None:
    before = (await running.post(VARIANT, {"sku": "MUG"})).json()["data"]["variant"]
    snapshot = running.reads.snapshot
    assert snapshot is not None
    async with sessions.begin() as session:  # elsewhere: seen when the snapshot reloads
        await session.execute(update(Variant).where(Variant.sku == "MUG").values(title="Big"))

    async def reloaded() -> bool:
        current = running.reads.catalog()
        return current is not None and current.version != snapshot.version

    await eventually(reloaded, what="the catalog snapshot to reload")
    after = (await running.post(VARIANT, {"sku": "MUG"})).json()["data"]["variant"]
    assert before["title"] != "Big"
    assert after["title"] == "Big"
    # here: read back at once, though the snapshot reloads later
    set_threshold = (
        'mutation { setLowStockThreshold(input: {sku: "MUG", threshold: 7}) '
        "{ userErrors { code } } }"
    )
    assert (await running.post(set_threshold, admin=True)).json()["data"]["setLowStockThreshold"][
        "userErrors"
    ] == []
    again = (await running.post(VARIANT, {"sku": "MUG"})).json()["data"]["variant"]
    assert again["lowStockThreshold"] == 7


async def test_variant_inventory_settings_are_read_back_at_once(running: Running) -> None:
    """updateVariantInventory is a catalog write: the cached read of the variant is not
    served again; the next read shows the new settings (read-your-writes)."""
    policy = (
        'query { variant(sku: "MUG") { inventoryPolicy backorderLimit maxPerOrder '
        "lowStockThreshold } }"
    )
    before = await _same_three_ways(running, policy, None, admin=False)
    assert b'"maxPerOrder":null' in before
    update_ = (
        'mutation { updateVariantInventory(input: {sku: "MUG", inventoryPolicy: CONTINUE, '
        "backorderLimit: 4, maxPerOrder: 2, lowStockThreshold: 3}) { userErrors { code } } }"
    )
    body = (await running.post(update_, admin=True)).json()
    assert body["data"]["updateVariantInventory"]["userErrors"] == [], body
    after = (await running.post(policy)).json()["data"]["variant"]
    assert after == {
        "inventoryPolicy": "CONTINUE",
        "backorderLimit": 4,
        "maxPerOrder": 2,
        "lowStockThreshold": 3,
    }


async def test_a_change_during_execution_is_never_served(
    running: Running, catalog: Catalog
) -> None:
    cache = running.cache
    assert cache is not None
    view = cache.app
    reads = running.reads

    async def then_change(scope: Scope, receive: Receive, send: Send) -> None:
        await view(scope, receive, send)  # computed at the old figures...
        async with running.services.sessions.begin() as session:  # ...which then change
            level_id = (
                await session.execute(
                    text("SELECT id FROM stock_levels WHERE variant_id = :v ORDER BY id LIMIT 1"),
                    {"v": catalog.variants["CAP"]},
                )
            ).scalar_one()
            uow = UnitOfWork(session, actor="import")
            await apply_movement(uow, level_id=level_id, kind=MovementKind.RECEIPT, on_hand_delta=2)
        await running.services.events.publish(uow.movements)

    cache.app = then_change
    try:
        assert await running.available("CAP") == 0
    finally:
        cache.app = view
    assert reads.tag() is not None
    assert await running.available("CAP") == 2


async def test_admin_and_anonymous_callers_never_share_an_entry(running: Running) -> None:
    cache = running.cache
    assert cache is not None
    await _same_three_ways(running, VARIANT, {"sku": "CAP"}, admin=True)
    misses = _count("miss")
    await running.post(VARIANT, {"sku": "CAP"})
    assert _count("miss") == misses + 1  # the admin's entry is not the anonymous one's
    # Were an admin-only field cacheable, an admin's answer must still not reach others:
    cache.operations = ReadOperations(READ_FIELDS | {"stockMovements"})
    ledger = "{ stockMovements(first: 1) { edges { node { kind } } } }"
    admin = await running.post(ledger, admin=True)
    assert (await running.post(ledger, admin=True)).content == admin.content
    assert "errors" not in admin.json()
    anonymous = (await running.post(ledger)).json()
    assert anonymous["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_mutations_and_other_reads_are_never_cached(running: Running) -> None:
    cache = running.cache
    assert cache is not None
    others = [
        (
            RESERVE,
            False,
        ),
        ("{ stockCursor }", False),
        ('{ variant(sku: "MUG") { sku } stockCursor }', False),
        ('{ variant(sku: "NOPE") { sku } }', False),  # unknown: asked the database
        ('{ products(first: 2, query: "mug") { edges { node { handle } } } }', False),  # SQL
        ("{ products(first: 1000) { edges { cursor } } }", False),  # an error
        ("{ stockMovements(first: 1) { edges { cursor } } }", True),
    ]
    for query, admin in others:
        await running.post(query, admin=admin)
        await running.post(query, admin=admin)
    assert len(cache.store) == 0


@pytest.mark.parametrize(
    "running",
    [
        {"response_cache_entries": 0},
        {"response_cache_bytes": 0},
        {"live_events": False},
        {"stock_projection": False},
    ],
    indirect=True,
)
async def test_the_cache_is_off_by_setting_and_without_the_read_model(running: Running) -> None:
    assert running.cache is None
    hits = _count("hit")
    await running.available("MUG")
    await running.available("MUG")
    assert _count("hit") == hits


async def test_nothing_is_served_while_the_hub_is_out_of_sync(running: Running) -> None:
    assert running.services.live is not None
    await running.available("MUG")
    running.services.live.pubsub.mark_lost("test: backend gone")
    assert running.reads.tag() is None
    hits = _count("hit")
    await running.available("MUG")
    assert _count("hit") == hits


async def test_concurrent_readers_see_every_commit_in_order(
    running: Running, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """16 clients read MUG in a loop while one reserves 10 times, reading after each
    response: it reads its own write, and no reader ever sees a figure go back up."""
    done = asyncio.Event()
    seen: list[list[int]] = [[] for _ in range(16)]

    async def reader(mine: list[int]) -> None:
        while not done.is_set():
            mine.append(await running.available("MUG"))
            await asyncio.sleep(0)  # a hit in process never waits: let the others run

    async def writer() -> None:
        try:
            for k in range(1, 11):
                reserve = RESERVE
                assert (await running.post(reserve)).json()["data"]["reserveStock"][
                    "userErrors"
                ] == []
                assert await running.available("MUG") == 50 - k
        finally:
            done.set()

    await asyncio.gather(writer(), *(reader(s) for s in seen))
    for figures in seen:
        assert figures == sorted(figures, reverse=True)
    assert _count("hit") > 0
    await assert_invariants(sessions)


INCOMING = (
    'query { variant(sku: "MUG") { available incoming nextIncomingAt stockLevels { incoming } } }'
)
CREATE_SHIPMENT = (
    'mutation { createInboundShipment(input: {lines: [{sku: "MUG", quantity: 7}], '
    'expectedAt: "2027-03-01T00:00:00+00:00"}) { shipment { id } userErrors { code } } }'
)


async def test_incoming_is_never_served_stale_after_a_shipment(running: Running) -> None:
    """`incoming` and `nextIncomingAt` are not in the read model: a response holding them
    is never kept, so a shipment created (no stock movement, no new tag) shows at once."""
    for admin in (False, True):
        assert running.cache is not None
        stored = len(running.cache.store)
        first = (await running.post(INCOMING, admin=admin)).json()["data"]["variant"]
        again = (await running.post(INCOMING, admin=admin)).json()["data"]["variant"]
        assert (
            first
            == again
            == {
                "available": 50,
                "incoming": 0,
                "nextIncomingAt": None,
                "stockLevels": [{"incoming": 0}],
            }
        )
        assert len(running.cache.store) == stored  # not kept
    created = (await running.post(CREATE_SHIPMENT, admin=True)).json()
    assert created["data"]["createInboundShipment"]["userErrors"] == []
    for admin in (False, True):
        after = (await running.post(INCOMING, admin=admin)).json()["data"]["variant"]
        assert after == {
            "available": 50,
            "incoming": 7,
            "nextIncomingAt": "2027-03-01T00:00:00+00:00",
            "stockLevels": [{"incoming": 7}],
        }


async def test_a_read_of_an_unchanged_variant_stays_a_hit_while_others_change(
    running: Running, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    """Issue 18: entries depend on the variants they read, not on any stock change."""
    mug = await _same_three_ways(running, VARIANT, {"sku": "MUG"}, admin=False)
    page = "{ products(first: 10) { edges { node { handle variants { sku available } } } } }"
    await _same_three_ways(running, page, None, admin=False)
    shirt = await running.available("SHIRT-S")
    for n in range(1, 4):  # this process's own reservations of another variant
        reserved = await running.post(RESERVE.replace('"MUG"', '"SHIRT-S"'))
        assert reserved.json()["data"]["reserveStock"]["userErrors"] == []
        hits = _count("hit")
        again = await running.client.post(
            "/graphql", json={"query": VARIANT, "variables": {"sku": "MUG"}}
        )
        assert _count("hit") == hits + 1
        assert again.content == mug
        assert await running.available("SHIRT-S") == shirt - n  # its own entry moved on
    # a read that includes the changed variant is fresh, and again identical to execution
    misses = _count("miss")
    await _same_three_ways(running, page, None, admin=False)
    assert _count("miss") == misses + 1
    # a change committed elsewhere, heard through the ledger: only CAP's entries go
    cap = await running.available("CAP")
    await running.available("CAP")
    await _receipt_elsewhere(running, sessions, catalog.variants["CAP"], 5)
    hits = _count("hit")
    assert (await running.post(VARIANT, {"sku": "MUG"})).content == mug
    assert _count("hit") == hits + 1
    assert await running.available("CAP") == cap + 5
    assert _count("hit") == hits + 1  # CAP's entry was stale: a miss
