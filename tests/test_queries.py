"""Catalog queries against a real database: shapes, search, pagination, and the N+1 guard."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from tests.conftest import GraphQLCaller
from tests.support.catalog import Catalog, make_product

PRODUCT_FIELDS = """
  id handle title totalAvailable
  variants {
    id sku title lowStockThreshold isLowStock onHand reserved available
    options { name value }
    price { amount currencyCode }
    product { handle }
    stockLevels { location { id name } onHand reserved available version }
  }
"""


async def test_variant_by_sku_sums_levels_in_priority_order(
    gql: GraphQLCaller, catalog: Catalog
) -> None:
    body = await gql(
        """query($sku: String!) { variant(sku: $sku) {
            sku title onHand reserved available isLowStock lowStockThreshold
            options { name value } price { amount currencyCode } product { title }
            stockLevels { location { name } onHand reserved available version } } }""",
        {"sku": "SHIRT-S"},
    )
    assert "errors" not in body
    assert body["data"]["variant"] == {
        "sku": "SHIRT-S",
        "title": "Small",
        "onHand": 12,
        "reserved": 0,
        "available": 12,
        "isLowStock": False,
        "lowStockThreshold": 5,
        "options": [{"name": "Size", "value": "Small"}],
        "price": {"amount": "25.00", "currencyCode": "USD"},
        "product": {"title": "Blue Shirt"},
        "stockLevels": [
            {
                "location": {"name": "Main"},
                "onHand": 10,
                "reserved": 0,
                "available": 10,
                "version": 1,
            },
            {
                "location": {"name": "Store"},
                "onHand": 2,
                "reserved": 0,
                "available": 2,
                "version": 1,
            },
        ],
    }


async def test_variants_keep_order_and_null_unknown(gql: GraphQLCaller, catalog: Catalog) -> None:
    body = await gql('{ variants(skus: ["MUG", "NOPE", "SHIRT-M"]) { sku available } }')
    assert body["data"]["variants"] == [
        {"sku": "MUG", "available": 50},
        None,
        {"sku": "SHIRT-M", "available": 3},
    ]


async def test_unknown_variant_is_null(gql: GraphQLCaller, catalog: Catalog) -> None:
    body = await gql('{ variant(sku: "NOPE") { sku } }')
    assert body == {"data": {"variant": None}}


async def test_product_by_handle_and_id(gql: GraphQLCaller, catalog: Catalog) -> None:
    by_handle = await gql('{ product(handle: "blue-shirt") { id title totalAvailable } }')
    product = by_handle["data"]["product"]
    assert product["title"] == "Blue Shirt"
    assert product["totalAvailable"] == 12 + 3 + 20
    by_id = await gql("query($id: ID!) { product(id: $id) { handle } }", {"id": product["id"]})
    assert by_id["data"]["product"] == {"handle": "blue-shirt"}
    missing = await gql('{ product(id: "999999") { handle } }')
    assert missing["data"]["product"] is None
    garbage = await gql('{ product(id: "not-a-number") { handle } }')
    assert garbage["data"]["product"] is None


async def test_product_needs_exactly_one_key(gql: GraphQLCaller, catalog: Catalog) -> None:
    body = await gql("{ product { handle } }")
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_default_title_variant_has_no_options(gql: GraphQLCaller, catalog: Catalog) -> None:
    body = await gql('{ variant(sku: "MUG") { title options { name } price { amount } } }')
    assert body["data"]["variant"] == {
        "title": "Default Title",
        "options": [],
        "price": {"amount": "9.99"},
    }


async def test_locations_by_priority(gql: GraphQLCaller, catalog: Catalog) -> None:
    body = await gql("{ locations { id name } }")
    assert [loc["name"] for loc in body["data"]["locations"]] == ["Main", "Store"]


async def test_search_by_title_handle_and_sku(gql: GraphQLCaller, catalog: Catalog) -> None:
    async def handles(q: str) -> list[str]:
        body = await gql(
            "query($q: String) { products(query: $q) { edges { node { handle } } } }", {"q": q}
        )
        return [e["node"]["handle"] for e in body["data"]["products"]["edges"]]

    assert await handles("shirt") == ["blue-shirt"]  # title, case-insensitive
    assert await handles("white-m") == ["white-mug"]  # handle
    assert await handles("CAP") == ["red-cap"]  # SKU
    assert await handles("%") == []  # LIKE wildcards are literal
    assert await handles("") == ["blue-shirt", "white-mug", "red-cap"]


async def test_low_stock_only(gql: GraphQLCaller, catalog: Catalog) -> None:
    body = await gql(
        """{ products(lowStockOnly: true) { edges { node { handle
             variants { sku isLowStock } } } } }"""
    )
    nodes = [e["node"] for e in body["data"]["products"]["edges"]]
    # SHIRT-M has 3 <= 5; CAP has 0; the mug has 50.
    assert [n["handle"] for n in nodes] == ["blue-shirt", "red-cap"]
    low = {v["sku"]: v["isLowStock"] for n in nodes for v in n["variants"]}
    assert low == {"SHIRT-S": False, "SHIRT-M": True, "SHIRT-L": False, "CAP": True}


async def test_pagination_walks_every_product_once(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    async with sessions.begin() as session:
        for i in range(7):
            await make_product(
                session,
                catalog,
                f"p-{i}",
                f"P {i}",
                [(f"P-{i}", "Default Title", 100, {"Main": i})],
            )
    query = """query($after: String) { products(first: 4, after: $after) {
        edges { cursor node { handle } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"""
    seen: list[str] = []
    after = None
    pages: list[dict[str, Any]] = []
    while True:
        conn = (await gql(query, {"after": after}))["data"]["products"]
        pages.append(conn["pageInfo"])
        seen += [e["node"]["handle"] for e in conn["edges"]]
        assert conn["pageInfo"]["startCursor"] == conn["edges"][0]["cursor"]
        assert conn["pageInfo"]["endCursor"] == conn["edges"][-1]["cursor"]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert len(seen) == 10 == len(set(seen))
    assert [p["hasNextPage"] for p in pages] == [True, True, False]
    assert [p["hasPreviousPage"] for p in pages] == [False, True, True]
    # past the end: an empty page with null cursors
    empty = await gql(query, {"after": after and pages and conn["pageInfo"]["endCursor"]})
    assert empty["data"]["products"] == {
        "edges": [],
        "pageInfo": {
            "hasNextPage": False,
            "hasPreviousPage": True,
            "startCursor": None,
            "endCursor": None,
        },
    }


async def test_pagination_rejects_bad_input(gql: GraphQLCaller, catalog: Catalog) -> None:
    bad_cursor = await gql('{ products(after: "garbage") { edges { cursor } } }')
    assert bad_cursor["errors"][0]["extensions"]["code"] == "BAD_CURSOR"
    too_many = await gql("{ products(first: 1000) { edges { cursor } } }")
    assert too_many["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    zero = await gql("{ products(first: 0) { edges { cursor } pageInfo { hasNextPage } } }")
    assert zero["data"]["products"] == {"edges": [], "pageInfo": {"hasNextPage": True}}


@contextmanager
def count_statements(app: Starlette) -> Iterator[list[str]]:
    """Collect every SQL statement the app's engine sends."""
    statements: list[str] = []
    engine = app.state.services.engine.sync_engine

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_product_page_costs_a_fixed_number_of_queries(
    gql: GraphQLCaller,
    app: Starlette,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
) -> None:
    async with sessions.begin() as session:
        for i in range(25):
            await make_product(
                session,
                catalog,
                f"bulk-{i}",
                f"Bulk {i}",
                [(f"B-{i}-{s}", s, 100, {"Main": 3, "Store": 1}) for s in ("S", "M", "L")],
            )
    query = "query($n: Int) { products(first: $n) { edges { node { " + PRODUCT_FIELDS + " } } } }"
    counts = {}
    for n in (1, 5, 20):
        with count_statements(app) as statements:
            body = await gql(query, {"n": n})
        assert "errors" not in body
        assert len(body["data"]["products"]["edges"]) == n
        counts[n] = len(statements)
    # page query + variants + levels + locations + products (variant.product)
    assert counts[1] == counts[5] == counts[20] <= 5, counts


async def test_depth_limit_refuses_deep_queries(gql: GraphQLCaller, catalog: Catalog) -> None:
    deep = '{ variant(sku: "MUG") { ' + "product { variants { " * 7 + "sku" + " } }" * 7 + " } }"
    body = await gql(deep)
    assert body["data"] is None
    assert "exceeds maximum operation depth" in body["errors"][0]["message"]


async def test_limits_hold_with_parse_and_validation_caches(
    gql: GraphQLCaller, catalog: Catalog
) -> None:
    """Parsing and validation are cached across requests; the limits must still apply on
    every request, the second identical one included."""
    aliases = "{ " + " ".join(f"a{i}: locations {{ id }}" for i in range(31)) + " }"
    for _ in range(2):
        body = await gql(aliases)
        assert body["data"] is None
        assert "aliases found" in body["errors"][0]["message"]
    tokens = "{ " + " ".join("locations { id name }" for _ in range(1300)) + " }"
    for _ in range(2):
        body = await gql(tokens)
        assert body["data"] is None
        assert "token" in body["errors"][0]["message"].lower()
    deep = '{ variant(sku: "MUG") { ' + "product { variants { " * 7 + "sku" + " } }" * 7 + " } }"
    for _ in range(2):
        assert "exceeds maximum operation depth" in (await gql(deep))["errors"][0]["message"]
    ok = await gql("{ locations { name } }")
    assert ok == {"data": {"locations": [{"name": "Main"}, {"name": "Store"}]}}
