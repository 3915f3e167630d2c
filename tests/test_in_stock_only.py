"""products(inStockOnly: true) (issue 16, item 7): products with some variant sellable now.

Sellable now: a level of the variant with ``on_hand - reserved - unavailable - backordered > 0``,
or a CONTINUE variant whose backordered units (all locations) are under its backorderLimit
(null: no limit). The oracle below computes the rule in Python from the rows, independently
of the SQL the server runs; the paging walk changes stock between pages.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.models import StockLevel, Variant
from tests.conftest import GraphQLCaller
from tests.support.catalog import Catalog, make_product
from tests.support.graphql import ADJUST, reserve

PAGE = """query($first: Int, $after: String) {
  products(first: $first, after: $after, inStockOnly: true) {
    edges { cursor node { id handle } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"""
MOVE = """mutation($input: MoveStockStateInput!) { moveStockState(input: $input) {
  userErrors { code } } }"""


async def sellable_products(sessions: async_sessionmaker[AsyncSession]) -> set[int]:
    """The oracle: ids of products with a variant sellable now, from the raw rows."""
    async with sessions() as session:
        variants = (
            await session.execute(
                text("SELECT id, product_id, inventory_policy, backorder_limit FROM variants")
            )
        ).all()
        levels = (
            await session.execute(
                text(
                    "SELECT variant_id, on_hand, reserved, damaged, quality_control, "
                    "safety_stock, backordered FROM stock_levels"
                )
            )
        ).all()
    found: set[int] = set()
    for v in variants:
        mine = [lv for lv in levels if lv.variant_id == v.id]
        in_stock = any(
            lv.on_hand
            - lv.reserved
            - lv.damaged
            - lv.quality_control
            - lv.safety_stock
            - lv.backordered
            > 0
            for lv in mine
        )
        backordered = sum(lv.backordered for lv in mine)
        may_promise = v.inventory_policy == "CONTINUE" and (
            v.backorder_limit is None or backordered < v.backorder_limit
        )
        if in_stock or may_promise:
            found.add(v.product_id)
    return found


async def _policy(
    sessions: async_sessionmaker[AsyncSession], variant_id: int, limit: int | None
) -> None:
    async with sessions.begin() as session:
        await session.execute(
            update(Variant)
            .where(Variant.id == variant_id)
            .values(inventory_policy="CONTINUE", backorder_limit=limit)
        )


async def _backordered(
    sessions: async_sessionmaker[AsyncSession], variant_id: int, location_id: int, units: int
) -> None:
    """Backordered units as the backorder slice will write them (set here directly)."""
    async with sessions.begin() as session:
        await session.execute(
            update(StockLevel)
            .where(StockLevel.variant_id == variant_id, StockLevel.location_id == location_id)
            .values(backordered=units)
        )


async def _cases(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> dict[str, bool]:
    """Products each showing one rule, on top of `make_catalog`; handle -> sellable now."""
    async with sessions.begin() as session:
        for handle, stock in (
            ("all-reserved", {"Main": 2}),
            ("all-damaged", {"Main": 2}),
            ("safety-only", {"Main": 3}),
            ("continue-unlimited", {"Main": 0}),
            ("continue-at-limit", {"Main": 0}),
            ("continue-under-limit", {"Main": 0}),
            ("continue-at-limit-store-has-some", {"Main": 0, "Store": 1}),
            ("continue-limit-zero", {"Main": 0}),
            ("no-levels", {}),
        ):
            await make_product(
                session, catalog, handle, handle, [(handle.upper(), "Default Title", 100, stock)]
            )
        await make_product(session, catalog, "no-variants", "no variants", [])
    await reserve(gql, {"ALL-RESERVED": 2})
    for sku, to, quantity in (("ALL-DAMAGED", "DAMAGED", 2), ("SAFETY-ONLY", "SAFETY_STOCK", 3)):
        body = await gql(
            MOVE,
            {"input": {"sku": sku, "quantity": quantity, "from": "AVAILABLE", "to": to}},
            admin=True,
        )
        assert body["data"]["moveStockState"]["userErrors"] == [], body
    main, store = catalog.locations["Main"], catalog.locations["Store"]
    v = catalog.variants
    await _policy(sessions, v["CONTINUE-UNLIMITED"], None)
    await _policy(sessions, v["CONTINUE-AT-LIMIT"], 2)
    await _backordered(sessions, v["CONTINUE-AT-LIMIT"], main, 2)
    await _policy(sessions, v["CONTINUE-UNDER-LIMIT"], 3)
    await _backordered(sessions, v["CONTINUE-UNDER-LIMIT"], main, 2)
    await _policy(sessions, v["CONTINUE-AT-LIMIT-STORE-HAS-SOME"], 1)
    await _backordered(sessions, v["CONTINUE-AT-LIMIT-STORE-HAS-SOME"], main, 1)
    await _policy(sessions, v["CONTINUE-LIMIT-ZERO"], 0)
    assert store
    return {
        "blue-shirt": True,
        "white-mug": True,
        "red-cap": False,  # 0 on hand, DENY
        "all-reserved": False,
        "all-damaged": False,
        "safety-only": False,
        "continue-unlimited": True,
        "continue-at-limit": False,
        "continue-under-limit": True,
        "continue-at-limit-store-has-some": True,  # the Store unit is sellable
        "continue-limit-zero": False,
        "no-levels": False,
        "no-variants": False,
    }


def _handles(body: dict[str, Any]) -> list[str]:
    assert "errors" not in body, body
    return [e["node"]["handle"] for e in body["data"]["products"]["edges"]]


async def test_in_stock_only_keeps_products_with_a_sellable_variant(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    expected = await _cases(gql, sessions, catalog)
    body = await gql(PAGE, {"first": 100})
    wanted = [h for h, sellable in expected.items() if sellable]
    assert _handles(body) == wanted
    by_id = {catalog.products[h] for h in wanted}
    assert by_id == await sellable_products(sessions)  # the oracle agrees with the table above
    everything = await gql("{ products(first: 100, inStockOnly: false) { edges { node { id } } } }")
    assert len(everything["data"]["products"]["edges"]) == len(expected)


async def test_in_stock_pages_never_skip_or_repeat_while_stock_changes(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    """Walk pages of 2; between pages, stock changes on both sides of the cursor. Every
    product returned was sellable when its page was read, every product the page passed
    over was not, and no product comes twice or out of id order."""
    async with sessions.begin() as session:
        for i in range(12):
            # p-0, p-3, p-6, p-9 start at 0 (DENY): not sellable
            units = 0 if i % 3 == 0 else 2
            await make_product(
                session,
                catalog,
                f"p-{i:02}",
                f"P {i}",
                [(f"P-{i:02}", "Default Title", 100, {"Main": units})],
            )
    ids = sorted(catalog.products.values())
    changes = [  # applied after pages 1, 2 and 3
        [("adjust", "P-09", 4)],  # ahead of the cursor: becomes sellable, must be listed
        [
            ("adjust", "P-00", 5),  # behind the cursor: never comes back
            ("reserve", "P-10", 2),  # ahead: sold out by a cart, must be left out
        ],
        [
            ("adjust", "MUG", -50),  # behind: no effect on what is left
            ("adjust", "P-11", -2),  # ahead: counted away
        ],
    ]
    seen: list[int] = []
    after: str | None = None
    last_id = 0
    pages = 0
    while True:
        body = await gql(PAGE, {"first": 2, "after": after})
        assert "errors" not in body, body
        conn = body["data"]["products"]
        sellable = await sellable_products(sessions)  # nothing changed since the read
        page = [int(e["node"]["id"]) for e in conn["edges"]]
        assert len(page) <= 2
        assert all(p in sellable for p in page), (page, sellable)
        passed_over = [
            i for i in ids if last_id < i <= (page[-1] if page else last_id) and i not in page
        ]
        assert not set(passed_over) & sellable, passed_over
        assert conn["pageInfo"]["hasPreviousPage"] is (after is not None)
        seen += page
        pages += 1
        if not conn["pageInfo"]["hasNextPage"]:
            assert not {i for i in ids if i > (page[-1] if page else last_id)} & sellable
            break
        last_id, after = page[-1], conn["pageInfo"]["endCursor"]
        for kind, sku, n in changes.pop(0) if changes else []:
            if kind == "adjust":
                result = await gql(
                    ADJUST,
                    {"input": {"sku": sku, "delta": n, "reason": "CORRECTION"}},
                    admin=True,
                )
                assert result["data"]["adjustStock"]["userErrors"] == [], result
            else:
                await reserve(gql, {sku: n})
    assert seen == sorted(seen)
    assert len(seen) == len(set(seen))
    handles = {v: k for k, v in catalog.products.items()}
    listed = [handles[i] for i in seen]
    assert {"p-09", "white-mug"} <= set(listed)
    assert not {"p-00", "p-10", "p-11"} & set(listed)
    assert changes == []
    assert pages >= 4
