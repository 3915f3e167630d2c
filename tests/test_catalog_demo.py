"""The generated demo catalog: locations, products, low and empty variants, idempotence."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.catalog import ImportReport, seed_demo_catalog
from gql_inventory.catalog.demo import LOW_STOCK_SKUS, OUT_OF_STOCK_SKUS, demo_catalog
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.models import MovementKind
from gql_inventory.stock.ledger import apply_movement
from tests.conftest import GraphQLCaller
from tests.support import graphql
from tests.support.cli import run_cli
from tests.support.invariants import assert_invariants
from tests.support.payments import pending_order, send

Sessions = async_sessionmaker[AsyncSession]


async def snapshot(sessions: Sessions) -> dict[str, Any]:
    async with sessions.begin() as s:

        async def rows(sql: str) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in await s.execute(text(sql))]

        return {
            "locations": await rows("SELECT name, is_default, priority FROM locations ORDER BY id"),
            "products": await rows("SELECT id, handle, title, vendor, product_type FROM products"),
            "variants": await rows(
                "SELECT id, product_id, sku, title, options, position, price_amount, "
                "currency_code FROM variants ORDER BY id"
            ),
            "levels": await rows(
                "SELECT id, variant_id, location_id, on_hand, reserved, version "
                "FROM stock_levels ORDER BY id"
            ),
            "movements": await rows("SELECT id, kind, on_hand_delta FROM stock_movements"),
        }


async def available_by_sku(sessions: Sessions) -> dict[str, int]:
    async with sessions.begin() as s:
        result = await s.execute(
            text(
                "SELECT v.sku, sum(l.on_hand - l.reserved) FROM variants v "
                "JOIN stock_levels l ON l.variant_id = v.id GROUP BY v.sku"
            )
        )
        return {str(sku): int(n) for sku, n in result}


async def test_demo_catalog_contents(sessions: Sessions) -> None:
    async with sessions.begin() as s:
        report = await seed_demo_catalog(UnitOfWork(s, actor="system"))

    products, stock = demo_catalog()
    assert len(products) == 8
    variant_count = sum(len(p.variants) for p in products)
    assert variant_count == 44
    assert report == ImportReport(
        products_created=8,
        products_updated=0,
        variants_created=44,
        variants_updated=0,
        units_received=sum(s.on_hand for s in stock),
        levels_counted=0,
        location="Main warehouse",
    )
    state = await snapshot(sessions)
    assert state["locations"] == [
        ("Main warehouse", True, 10),
        ("Downtown store", False, 20),
        ("Online fulfilment", False, 30),
    ]
    assert len(state["products"]) == 8
    assert len(state["variants"]) == 44
    assert len(state["levels"]) == 44 * 3
    assert {kind for _, kind, _ in state["movements"]} == {"RECEIPT"}
    option_counts = {len(v[4]) for v in state["variants"]}
    assert option_counts == {1, 2}  # sizes, and sizes x colours
    sizes = {o["value"] for v in state["variants"] for o in v[4] if o["name"] == "Size"}
    assert sizes == {"S", "M", "L", "XL"}

    available = await available_by_sku(sessions)
    async with sessions.begin() as s:
        result = await s.execute(text("SELECT sku, low_stock_threshold FROM variants"))
        thresholds = {str(sku): int(threshold) for sku, threshold in result}
    low = {sku for sku, n in available.items() if 0 < n <= thresholds[sku]}
    empty = {sku for sku, n in available.items() if n == 0}
    assert low == LOW_STOCK_SKUS
    assert empty == OUT_OF_STOCK_SKUS
    assert len(low) >= 2
    assert len(empty) >= 2


async def test_demo_seeding_is_idempotent(sessions: Sessions) -> None:
    async with sessions.begin() as s:
        await seed_demo_catalog(UnitOfWork(s, actor="system"))
    before = await snapshot(sessions)

    async with sessions.begin() as s:
        again = await seed_demo_catalog(UnitOfWork(s, actor="system"))

    stocked = sum(1 for spec in demo_catalog()[1] if spec.on_hand > 0)
    assert again == ImportReport(0, 0, 0, 0, 0, 0, "Main warehouse", levels_kept=stocked)
    assert await snapshot(sessions) == before


async def test_demo_reseed_keeps_a_changed_level(sessions: Sessions) -> None:
    async with sessions.begin() as s:
        await seed_demo_catalog(UnitOfWork(s, actor="system"))
    async with sessions.begin() as s:
        level_id = (
            await s.execute(
                text(
                    "SELECT l.id FROM stock_levels l JOIN variants v ON v.id = l.variant_id "
                    "JOIN locations o ON o.id = l.location_id "
                    "WHERE v.sku = 'TEE-BLK-M' AND o.name = 'Main warehouse'"
                )
            )
        ).scalar_one()
        await apply_movement(
            UnitOfWork(s, actor="system"),
            level_id=level_id,
            kind=MovementKind.ADJUSTMENT,
            on_hand_delta=-4,
        )
    expected = await available_by_sku(sessions)

    async with sessions.begin() as s:
        report = await seed_demo_catalog(UnitOfWork(s, actor="system"))

    assert (report.levels_counted, report.units_received) == (0, 0)
    assert await available_by_sku(sessions) == expected
    async with sessions.begin() as s:
        kinds = (await s.execute(text("SELECT DISTINCT kind FROM stock_movements"))).scalars()
        assert set(kinds) == {"RECEIPT", "ADJUSTMENT"}


# ---------------------------------------------------------------- a restart (issue 15 item 2)


async def test_a_second_make_run_changes_no_existing_stock(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: Sessions,
    secret: str,
    cli_env: None,
) -> None:
    """`make run` twice, with an admin adjustment and a paid order in between: the second
    `seed-demo` changed nothing (it counted the levels back to the demo figures, undoing
    the adjustment and putting back 3 units sold, while printing "0 units received")."""
    first = await run_cli("seed-demo")
    assert first.exit_code == 0, first.output
    adjusted = await gql(
        graphql.ADJUST, {"input": {"sku": "TEE-BLK-M", "delta": -4, "reason": "LOST"}}, admin=True
    )
    assert adjusted["data"]["adjustStock"]["userErrors"] == []
    order_id, _ = await pending_order(gql, {"CHN-M": 3})
    assert await send(client, sessions, secret, "payment_intent.succeeded", order_id) == "sold"
    before = await snapshot(sessions)

    again = await run_cli("seed-demo")

    assert again.exit_code == 0, again.output
    assert await snapshot(sessions) == before
    assert "0 units received" in again.output
    stocked = sum(1 for spec in demo_catalog()[1] if spec.on_hand > 0)
    assert f"{stocked} existing stock levels left as they were" in again.output
    await assert_invariants(sessions)


async def test_reseeding_fills_in_only_what_is_missing(sessions: Sessions) -> None:
    """A demo level that does not exist yet (a location added since) gets its figure;
    the existing ones, adjusted since, stay as they are."""
    async with sessions.begin() as s:
        await seed_demo_catalog(UnitOfWork(s, actor="system"))
        await s.execute(
            text(
                "DELETE FROM stock_movements WHERE stock_level_id IN (SELECT l.id FROM "
                "stock_levels l JOIN locations o ON o.id = l.location_id "
                "WHERE o.name = 'Online fulfilment')"
            )
        )
        await s.execute(
            text(
                "DELETE FROM stock_levels WHERE location_id = "
                "(SELECT id FROM locations WHERE name = 'Online fulfilment')"
            )
        )
        await s.execute(text("DELETE FROM locations WHERE name = 'Online fulfilment'"))
    async with sessions.begin() as s:
        level_id = (
            await s.execute(
                text(
                    "SELECT l.id FROM stock_levels l JOIN variants v ON v.id = l.variant_id "
                    "JOIN locations o ON o.id = l.location_id "
                    "WHERE v.sku = 'TEE-BLK-M' AND o.name = 'Main warehouse'"
                )
            )
        ).scalar_one()
        await apply_movement(
            UnitOfWork(s, actor="system"),
            level_id=level_id,
            kind=MovementKind.ADJUSTMENT,
            on_hand_delta=-4,
        )
    kept = (await snapshot(sessions))["levels"]

    async with sessions.begin() as s:
        report = await seed_demo_catalog(UnitOfWork(s, actor="system"))

    _, stock = demo_catalog()
    online = [spec for spec in stock if spec.location_name == "Online fulfilment"]
    assert report.units_received == sum(spec.on_hand for spec in online)
    stocked_elsewhere = [s for s in stock if s.location_name != "Online fulfilment" and s.on_hand]
    assert (report.levels_counted, report.levels_kept) == (0, len(stocked_elsewhere))
    assert (await snapshot(sessions))["levels"][: len(kept)] == kept
    await assert_invariants(sessions)
