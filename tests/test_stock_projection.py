"""Stock reads from the in-process projection (docs/adr/0009-stock-projection.md).

A running app (its lifespan started: relay, hub, read model) answered over HTTP
through ASGI; "another process" is the test's own engine, which the app's hub only
hears about through the ledger and the broadcast backend, like a CLI or a second
server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gql_inventory.app import create_app
from gql_inventory.catalog import import_shopify_files
from gql_inventory.domain.rows import LevelRow
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.live.runtime import LiveEvents
from gql_inventory.live.wire import StockEvent
from gql_inventory.models import MovementKind, StockLevel, Variant
from gql_inventory.readmodel.loaders import Loaders
from gql_inventory.readmodel.projection import StockProjection
from gql_inventory.readmodel.reads import ReadModel
from gql_inventory.services import Services
from gql_inventory.settings import Settings
from gql_inventory.stock import low_stock
from gql_inventory.stock.ledger import apply_movement
from gql_inventory.uow import run_in_transaction
from tests.support.catalog import Catalog
from tests.support.live import eventually

MULTI_OPTION_CSV = Path(__file__).parent / "data" / "catalog" / "multi-option.csv"

VARIANT = """query($sku: String!) { variant(sku: $sku) {
  sku title lowStockThreshold onHand reserved available
  stockLevels { location { name } onHand reserved available version } } }"""


@dataclass
class Running:
    """A started app, its HTTP client, and its read model."""

    client: httpx.AsyncClient
    services: Services
    live: LiveEvents | None

    @property
    def reads(self) -> ReadModel:
        assert self.live is not None
        assert self.live.reads is not None
        return self.live.reads

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, *, admin: bool = False
    ) -> dict[str, Any]:
        headers = {"Authorization": "Bearer admin-secret"} if admin else {}
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        return body["data"]

    async def variant(self, sku: str) -> dict[str, Any]:
        found: dict[str, Any] = (await self.gql(VARIANT, {"sku": sku}))["variant"]
        return found


def _settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "admin_tokens": ["admin-secret"],
        "live_poll_seconds": 0.2,
        "expiry_interval_seconds": 0,
        "pending_payment_check_interval_seconds": 0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def running(
    request: pytest.FixtureRequest, database_url: str, catalog: Catalog
) -> AsyncIterator[Running]:
    """The app with its lifespan running; `@pytest.mark.parametrize("running", [{...}])`
    passes settings."""
    overrides = getattr(request, "param", {})
    app = create_app(_settings(**overrides), database_url=database_url)
    services: Services = app.state.services
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            run = Running(c, services, services.live)
            if run.live is not None and run.live.reads is not None:
                reads = run.live.reads

                async def trusted() -> bool:
                    return reads.stock() is not None and reads.catalog() is not None

                await eventually(trusted, what="the read model to be trusted")
            yield run


@pytest.fixture
def no_sql(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every batched (SQL) catalog or stock read of the loaders."""
    calls: list[str] = []
    for name in (
        "_variants_by_sku",
        "_variants_by_id",
        "_levels_by_variant",
        "_levels_by_id",
        "_products_by_id",
        "_variants_by_product",
        "_locations_by_id",
    ):
        original = getattr(Loaders, name)

        async def recording(self: Loaders, keys: Any, _o: Any = original, _n: str = name) -> Any:
            calls.append(_n)
            return await _o(self, keys)

        monkeypatch.setattr(Loaders, name, recording)
    return calls


async def _level(engine: AsyncEngine, variant_id: int, location_id: int) -> tuple[int, int]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT id, version FROM stock_levels "
                    "WHERE variant_id = :v AND location_id = :l"
                ),
                {"v": variant_id, "l": location_id},
            )
        ).one()
    return int(row.id), int(row.version)


# ---------------------------------------------------------------- the projection alone


def test_versions_never_go_back_in_the_projection() -> None:
    projection = StockProjection()
    assert projection.apply(1, 10, 100, on_hand=5, reserved=1, version=3)
    assert not projection.apply(1, 10, 100, on_hand=9, reserved=0, version=2)  # older
    assert not projection.apply(1, 10, 100, on_hand=9, reserved=0, version=3)  # same
    assert projection.levels_of(10) == [LevelRow(1, 10, 100, 5, 1, 3)]
    assert projection.apply(1, 10, 100, on_hand=4, reserved=0, version=4)
    assert projection.level(1) == LevelRow(1, 10, 100, 4, 0, 4)
    # a load from the table with an older figure changes nothing either
    assert projection.merge([LevelRow(1, 10, 100, 7, 0, 1)]) == 0
    assert projection.level(1) == LevelRow(1, 10, 100, 4, 0, 4)


def test_new_levels_join_their_variant_in_location_order() -> None:
    priorities = {100: 20, 200: 10}
    projection = StockProjection(lambda loc: (priorities[loc], loc))
    projection.apply(1, 10, 100, on_hand=1, reserved=0, version=1)
    projection.apply(2, 10, 200, on_hand=2, reserved=0, version=1)
    assert [lv.location_id for lv in projection.levels_of(10)] == [200, 100]
    priorities[100] = 5
    projection.reorder(lambda loc: (priorities[loc], loc))
    assert [lv.location_id for lv in projection.levels_of(10)] == [100, 200]
    assert projection.levels_of(99) == []


# ---------------------------------------------------------------- a running app


async def test_reads_come_from_the_projection_without_sql(
    running: Running, no_sql: list[str]
) -> None:
    variant = await running.variant("SHIRT-S")
    assert (variant["onHand"], variant["reserved"], variant["available"]) == (12, 0, 12)
    assert [lv["location"]["name"] for lv in variant["stockLevels"]] == ["Main", "Store"]
    body = await running.gql(
        '{ variants(skus: ["MUG", "NOPE", "CAP"]) { sku available } '
        "products(first: 2) { edges { node { handle totalAvailable variants { sku } } } "
        "pageInfo { hasNextPage } } locations { name } }"
    )
    assert body["variants"] == [
        {"sku": "MUG", "available": 50},
        None,
        {"sku": "CAP", "available": 0},
    ]
    assert [e["node"]["handle"] for e in body["products"]["edges"]] == ["blue-shirt", "white-mug"]
    assert body["products"]["edges"][0]["node"]["totalAvailable"] == 35
    assert body["products"]["pageInfo"]["hasNextPage"] is True
    assert [loc["name"] for loc in body["locations"]] == ["Main", "Store"]
    assert no_sql == ["_variants_by_sku"]  # only the unknown SKU asked the database


async def test_a_read_after_a_mutation_reflects_it(running: Running, no_sql: list[str]) -> None:
    reads = running.reads
    assert running.live is not None
    # Hold the hub's dispatch: the figures can only come from this process's commit.
    async with running.live.hub.catchup._lock:
        body = await running.gql(
            'mutation { reserveStock(input: {lines: [{sku: "SHIRT-S", quantity: 11}]}) '
            "{ reservation { id } userErrors { code } } }"
        )
        assert body["reserveStock"]["userErrors"] == []
        variant = await running.variant("SHIRT-S")
        assert reads.stock() is not None
    assert (variant["onHand"], variant["reserved"], variant["available"]) == (12, 11, 1)
    assert [lv["reserved"] for lv in variant["stockLevels"]] == [10, 1]
    assert not [call for call in no_sql if call.startswith("_levels")]


async def test_versions_never_go_back_through_reads(running: Running, catalog: Catalog) -> None:
    level_id, version = await _level(
        running.services.engine, catalog.variants["MUG"], catalog.locations["Main"]
    )
    base = StockEvent(
        position=10**9,
        movement_id=10**9,
        stock_level_id=level_id,
        variant_id=catalog.variants["MUG"],
        sku="MUG",
        location_id=catalog.locations["Main"],
        kind="ADJUSTMENT",
        on_hand_delta=0,
        reserved_delta=0,
        on_hand=50,
        reserved=0,
        version=version,
        occurred_at=datetime.now(UTC),
    )
    running.reads.apply_event(replace(base, on_hand=7, version=version + 2))
    running.reads.apply_event(replace(base, on_hand=99, version=version + 1))  # older: ignored
    variant = await running.variant("MUG")
    assert variant["onHand"] == 7
    assert variant["stockLevels"][0]["version"] == version + 2


async def test_a_change_committed_elsewhere_shows_once_dispatched(
    running: Running, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    assert running.live is not None
    level_id, version = await _level(
        running.services.engine, catalog.variants["SHIRT-M"], catalog.locations["Main"]
    )
    dispatched = asyncio.Event()

    def watch(event: StockEvent) -> None:
        if event.stock_level_id == level_id and event.version == version + 1:
            dispatched.set()

    running.live.hub.observers.append(watch)
    async with sessions.begin() as session:  # another engine: the hub hears it by the ledger
        await apply_movement(
            UnitOfWork(session, actor="import"),
            level_id=level_id,
            kind=MovementKind.RECEIPT,
            on_hand_delta=4,
        )
    await asyncio.wait_for(dispatched.wait(), 30)
    variant = await running.variant("SHIRT-M")
    assert (variant["onHand"], variant["available"]) == (7, 7)
    assert variant["stockLevels"][0]["version"] == version + 1


async def test_catalog_changes_elsewhere_reload_the_snapshot(
    running: Running, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    reads = running.reads
    before = reads.snapshot
    assert before is not None
    async with sessions.begin() as session:
        await session.execute(
            update(Variant).where(Variant.sku == "MUG").values(title="Big", low_stock_threshold=9)
        )

    async def reloaded() -> bool:
        snapshot = reads.catalog()
        return snapshot is not None and snapshot.version != before.version

    await eventually(reloaded, what="the catalog snapshot to reload")
    variant = await running.variant("MUG")
    assert (variant["title"], variant["lowStockThreshold"], variant["available"]) == (
        "Big",
        9,
        50,
    )


async def test_a_threshold_set_here_is_read_back_at_once(running: Running) -> None:
    body = await running.gql(
        'mutation { setLowStockThreshold(input: {sku: "CAP", threshold: 3}) '
        "{ variant { lowStockThreshold } userErrors { code } } }",
        admin=True,
    )
    assert body["setLowStockThreshold"]["variant"] == {"lowStockThreshold": 3}
    assert (await running.variant("CAP"))["lowStockThreshold"] == 3


async def test_reads_use_the_database_while_the_hub_is_out_of_sync(
    running: Running, engine: AsyncEngine, catalog: Catalog, no_sql: list[str]
) -> None:
    assert running.live is not None
    pubsub = running.live.pubsub
    reconnect, backend_back = pubsub.connect, asyncio.Event()

    async def held_connect() -> None:  # the backend stays gone until the reads are checked
        await backend_back.wait()
        await reconnect()

    pubsub.connect = held_connect  # type: ignore[method-assign]
    try:
        pubsub.mark_lost("test: backend gone")
        assert running.reads.stock() is None
        async with engine.begin() as conn:  # not through the ledger: only SQL can see it
            await conn.execute(
                update(StockLevel)
                .where(StockLevel.variant_id == catalog.variants["MUG"])
                .values(on_hand=StockLevel.on_hand + 1)
            )
        variant = await running.variant("MUG")
        assert variant["onHand"] == 51
        assert "_levels_by_variant" in no_sql
    finally:
        backend_back.set()
        pubsub.connect = reconnect  # type: ignore[method-assign]

    async def back() -> bool:
        return running.reads.stock() is not None

    await eventually(back, what="the hub to resubscribe and catch up")


@pytest.mark.parametrize(
    "running", [{"live_events": False}, {"stock_projection": False}], indirect=True
)
async def test_without_the_projection_reads_query_the_database(
    running: Running, engine: AsyncEngine, catalog: Catalog, no_sql: list[str]
) -> None:
    assert running.live is None or running.live.reads is None
    async with engine.begin() as conn:
        await conn.execute(
            update(StockLevel)
            .where(StockLevel.variant_id == catalog.variants["MUG"])
            .values(on_hand=StockLevel.on_hand + 2)
        )
    assert (await running.variant("MUG"))["onHand"] == 52
    assert "_levels_by_variant" in no_sql


@pytest.mark.parametrize("running", [{"live_poll_seconds": 60}], indirect=True)
async def test_a_threshold_set_through_the_domain_is_read_back_at_once(running: Running) -> None:
    """Catalog read-your-writes is the unit of work's (issue 15): any domain function that
    changes the catalog, run in `run_in_transaction`, is seen by the next read here, with
    no resolver calling anything by hand (no snapshot reload happens meanwhile)."""
    await run_in_transaction(
        running.services,
        lambda uow: low_stock.set_low_stock_threshold(uow, sku="CAP", threshold=4),
        actor="system",
    )
    assert (await running.variant("CAP"))["lowStockThreshold"] == 4


@pytest.mark.parametrize("running", [{"live_poll_seconds": 60}], indirect=True)
async def test_a_catalog_import_is_read_back_at_once(running: Running, tmp_path: Path) -> None:
    """The CSV import path (`write_catalog`) marks the catalog changed as well."""
    original = MULTI_OPTION_CSV.read_text(encoding="utf-8-sig")
    await run_in_transaction(
        running.services,
        lambda uow: import_shopify_files(uow, [MULTI_OPTION_CSV]),
        actor="import",
    )
    assert await _price(running, "CT-BLK-S") == "19.99"
    await eventually(_snapshot_holds(running, "CT-BLK-S"), what="the snapshot to hold CT-BLK-S")
    edited = tmp_path / "edited.csv"
    edited.write_text(original.replace(",19.99,", ",29.99,", 1), encoding="utf-8")
    await run_in_transaction(
        running.services, lambda uow: import_shopify_files(uow, [edited]), actor="import"
    )
    assert await _price(running, "CT-BLK-S") == "29.99"


async def _price(running: Running, sku: str) -> str:
    query = "query($sku: String!) { variant(sku: $sku) { price { amount } } }"
    amount: str = (await running.gql(query, {"sku": sku}))["variant"]["price"]["amount"]
    return amount


def _snapshot_holds(running: Running, sku: str) -> Callable[[], Awaitable[bool]]:
    async def holds() -> bool:
        snapshot = running.reads.catalog()
        return snapshot is not None and sku in snapshot.variants_by_sku

    return holds
