"""lowStockVariants and setLowStockThreshold (issue 10): variants, not products, at or under
their threshold; one rule for isLowStock, the list, products(lowStockOnly) and the alerts;
a threshold of 0 turns all of it off."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from gql_inventory.live.alerts import AlertTracker, LowStockState
from gql_inventory.live.cursors import encode_cursor
from gql_inventory.live.relay import assign_positions
from tests.conftest import GraphQLCaller
from tests.support.catalog import Catalog, make_product
from tests.support.graphql import ADJUST, USER_ERRORS, errors_of, ledger_count, scalar, snapshot
from tests.test_queries import count_statements

LOW = """query($loc: ID, $first: Int, $after: String) {
  lowStockVariants(locationId: $loc, first: $first, after: $after) {
    edges { cursor node { sku available lowStockThreshold isLowStock } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor } totalCount } }"""
SET_THRESHOLD = f"""mutation($input: SetLowStockThresholdInput!) {{
  setLowStockThreshold(input: $input) {{
    variant {{ sku lowStockThreshold isLowStock }} {USER_ERRORS} }} }}"""
ALL_VARIANTS = """query { products(first: 100) { edges { node {
  variants { sku available lowStockThreshold isLowStock } } } } }"""
LOW_PRODUCTS = """query { products(first: 100, lowStockOnly: true) {
  edges { node { handle } } } }"""


async def _low(gql: GraphQLCaller, **args: Any) -> dict[str, Any]:
    body = await gql(LOW, args, admin=True)
    assert "errors" not in body, body
    page: dict[str, Any] = body["data"]["lowStockVariants"]
    return page


def _skus(page: dict[str, Any]) -> list[str]:
    return [e["node"]["sku"] for e in page["edges"]]


async def _flagged(gql: GraphQLCaller) -> set[str]:
    body = await gql(ALL_VARIANTS)
    return {
        v["sku"]
        for p in body["data"]["products"]["edges"]
        for v in p["node"]["variants"]
        if v["isLowStock"]
    }


async def _set(gql: GraphQLCaller, sku: str, threshold: int) -> dict[str, Any]:
    body = await gql(SET_THRESHOLD, {"input": {"sku": sku, "threshold": threshold}}, admin=True)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["setLowStockThreshold"]
    return payload


async def test_lists_variants_fewest_available_first(gql: GraphQLCaller, catalog: Catalog) -> None:
    page = await _low(gql)
    # CAP 0, SHIRT-M 3 (threshold 5); SHIRT-S (12) is a sibling of SHIRT-M and stays out.
    assert _skus(page) == ["CAP", "SHIRT-M"]
    assert [e["node"]["available"] for e in page["edges"]] == [0, 3]
    assert page["totalCount"] == 2
    assert page["pageInfo"]["hasNextPage"] is False
    assert set(_skus(page)) == await _flagged(gql)


async def test_by_location_compares_that_location(gql: GraphQLCaller, catalog: Catalog) -> None:
    main = await _low(gql, loc=str(catalog.locations["Main"]))
    # SHIRT-L has 0 at Main (20 at Store): low there, not overall.
    assert _skus(main) == ["SHIRT-L", "CAP", "SHIRT-M"]
    assert main["totalCount"] == 3
    store = await _low(gql, loc=str(catalog.locations["Store"]))
    assert _skus(store) == ["SHIRT-S"]  # 2 at Store; MUG and CAP have no level there
    assert (await _low(gql, loc="999999"))["totalCount"] == 0
    body = await gql(LOW, {"loc": "main"}, admin=True)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_pages_walk_every_low_variant_once(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    async with sessions.begin() as session:
        await make_product(
            session,
            catalog,
            "socks",
            "Socks",
            [(f"SOCK-{i}", f"S{i}", 100, {"Main": i % 4}) for i in range(9)],
            threshold=3,
        )
    expected = [e["node"]["sku"] for e in (await _low(gql, first=100))["edges"]]
    assert len(expected) == 11
    seen: list[str] = []
    after = None
    while True:
        page = await _low(gql, first=2, after=after)
        assert page["totalCount"] == 11
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        seen += _skus(page)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == expected
    available = [e["node"]["available"] for e in (await _low(gql, first=100))["edges"]]
    assert available == sorted(available)


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ({"first": 251}, "BAD_USER_INPUT"),
        ({"first": -1}, "BAD_USER_INPUT"),
        ({"after": "bm9wZQ=="}, "BAD_CURSOR"),
        ({"after": encode_cursor("product", 1)}, "BAD_CURSOR"),
    ],
)
async def test_bad_arguments_are_refused(
    gql: GraphQLCaller, catalog: Catalog, args: dict[str, Any], code: str
) -> None:
    body = await gql(LOW, args, admin=True)
    assert body["errors"][0]["extensions"]["code"] == code


async def test_admin_only(gql: GraphQLCaller, catalog: Catalog) -> None:
    body = await gql(LOW)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = await gql(SET_THRESHOLD, {"input": {"sku": "MUG", "threshold": 60}})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await scalar_threshold(gql, "MUG") == 5


async def scalar_threshold(gql: GraphQLCaller, sku: str) -> int:
    body = await gql("query($s: String!) { variant(sku: $s) { lowStockThreshold } }", {"s": sku})
    return int(body["data"]["variant"]["lowStockThreshold"])


async def test_threshold_drives_the_flag_and_the_list(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    movements = await ledger_count(sessions)
    payload = await _set(gql, "MUG", 50)
    assert payload == {
        "variant": {"sku": "MUG", "lowStockThreshold": 50, "isLowStock": True},
        "userErrors": [],
    }
    assert _skus(await _low(gql)) == ["CAP", "SHIRT-M", "MUG"]
    assert await _flagged(gql) == {"CAP", "SHIRT-M", "MUG"}
    assert await ledger_count(sessions) == movements  # not a stock movement


async def test_threshold_zero_turns_everything_off(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    payload = await _set(gql, "CAP", 0)  # CAP has 0 available
    assert payload["variant"] == {"sku": "CAP", "lowStockThreshold": 0, "isLowStock": False}
    assert _skus(await _low(gql)) == ["SHIRT-M"]
    assert await _flagged(gql) == {"SHIRT-M"}
    handles = [e["node"]["handle"] for e in (await gql(LOW_PRODUCTS))["data"]["products"]["edges"]]
    assert handles == ["blue-shirt"]
    assert _skus(await _low(gql, loc=str(catalog.locations["Main"]))) == ["SHIRT-L", "SHIRT-M"]


@pytest.mark.parametrize(
    ("sku", "threshold", "error"),
    [
        ("MUG", -1, ("INVALID_INPUT", ["input", "threshold"])),
        ("MUG", 1_000_001, ("INVALID_INPUT", ["input", "threshold"])),
        ("NOPE", 3, ("UNKNOWN_SKU", ["input", "sku"])),
    ],
)
async def test_threshold_refusals_change_nothing(
    gql: GraphQLCaller,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    sku: str,
    threshold: int,
    error: tuple[str, list[str]],
) -> None:
    before = await snapshot(sessions)
    thresholds = await scalar(
        sessions, "SELECT array_agg(low_stock_threshold ORDER BY id) FROM variants"
    )
    body = await gql(SET_THRESHOLD, {"input": {"sku": sku, "threshold": threshold}}, admin=True)
    payload = body["data"]["setLowStockThreshold"]
    assert payload["variant"] is None
    assert errors_of(payload) == [error]
    assert await snapshot(sessions) == before
    assert (
        await scalar(sessions, "SELECT array_agg(low_stock_threshold ORDER BY id) FROM variants")
        == thresholds
    )


async def _adjust(gql: GraphQLCaller, sku: str, delta: int) -> None:
    reason = "RECEIVED" if delta > 0 else "LOST"
    body = await gql(ADJUST, {"input": {"sku": sku, "delta": delta, "reason": reason}}, admin=True)
    assert body["data"]["adjustStock"]["userErrors"] == [], body


async def _adjusted(gql: GraphQLCaller, engine: AsyncEngine, sku: str, delta: int) -> Any:
    """Adjust, then position the movement as the relay would; its stock event."""
    await _adjust(gql, sku, delta)
    events = None
    while events is None:  # another relay pass holds the lock: try again
        events = await assign_positions(engine)
    [event] = [e for e in events if e.sku == sku]
    return event


async def test_alerts_follow_a_changed_threshold_and_zero_is_off(
    gql: GraphQLCaller, engine: AsyncEngine, catalog: Catalog
) -> None:
    while await assign_positions(engine) is None:  # the catalog's own movements
        pass
    tracker = AlertTracker(engine, ttl=3600)  # a long cache: the change must not wait for it
    event = await _adjusted(gql, engine, "MUG", -40)  # 50 -> 10: above 5, no alert
    assert await tracker.apply(event) is None
    await _set(gql, "MUG", 9)
    alert = await tracker.apply(await _adjusted(gql, engine, "MUG", -1))  # 10 -> 9
    assert alert is not None
    assert (alert.state, alert.available, alert.threshold) == (LowStockState.LOW, 9, 9)
    await _set(gql, "MUG", 0)
    # to 0 and back: no OUT_OF_STOCK, no BACK_IN_STOCK with alerts off
    assert await tracker.apply(await _adjusted(gql, engine, "MUG", -9)) is None
    assert await tracker.apply(await _adjusted(gql, engine, "MUG", 4)) is None
    fresh = AlertTracker(engine)
    assert await fresh.apply(await _adjusted(gql, engine, "MUG", -4)) is None


async def test_a_page_costs_a_fixed_number_of_queries(
    gql: GraphQLCaller,
    app: Starlette,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
) -> None:
    async with sessions.begin() as session:
        for i in range(8):
            await make_product(
                session,
                catalog,
                f"low-{i}",
                f"Low {i}",
                [(f"L-{i}-{s}", s, 100, {"Main": 1, "Store": 1}) for s in ("S", "M", "L")],
            )
    query = """query($n: Int) { lowStockVariants(first: $n) { totalCount edges { node {
      sku title available onHand reserved isLowStock price { amount }
      product { handle } stockLevels { location { name } available } } } } }"""
    counts = {}
    for n in (1, 5, 20):
        with count_statements(app) as statements:
            body = await gql(query, {"n": n}, admin=True)
        assert "errors" not in body, body
        assert len(body["data"]["lowStockVariants"]["edges"]) == n
        assert body["data"]["lowStockVariants"]["totalCount"] == 26
        counts[n] = len(statements)
    # the page (with totalCount) + levels + products + locations
    assert counts[1] == counts[5] == counts[20] <= 4, counts
