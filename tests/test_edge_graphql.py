"""The GraphQL HTTP edge (issue 8): fragment bombs, request sizes, malformed requests.

No timing assertions: linear work is shown by counting the cost rule's visits, and a
generous client timeout only guards against a hang.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode, Visitor, parse, visit
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from gql_inventory.app import create_app
from gql_inventory.models import Reservation, WebhookEvent
from gql_inventory.schema.cost import Limits, measure
from gql_inventory.schema.edge import DocumentCache
from gql_inventory.settings import Settings
from tests.support.catalog import Catalog
from tests.support.live import WAIT, LiveServer

RESERVE = """mutation($input: ReserveStockInput!) { reserveStock(input: $input) {
  reservation { id } userErrors { code message field } } }"""


def fragment_bomb(n: int) -> str:
    """The issue's query: fragments that each spread the next twice (2**n fields expanded)."""
    fragments = " ".join(f"fragment F{i} on Query{{...F{i + 1} ...F{i + 1}}}" for i in range(n))
    return f"query{{...F0}} {fragments} fragment F{n} on Query{{__typename}}"


async def reservations(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(Reservation))).scalar())


def _selection_nodes(document: str) -> int:
    count = 0

    class Counter(Visitor):
        def enter(self, node: Any, *_: Any) -> None:
            nonlocal count
            if isinstance(node, FieldNode | FragmentSpreadNode | InlineFragmentNode):
                count += 1

    visit(parse(document), Counter())
    return count


# ---------------------------------------------------------------- item 1: linear validation


@pytest.mark.parametrize("n", [5, 40, 1000])
def test_cost_rule_visits_each_selection_a_bounded_number_of_times(n: int) -> None:
    document = fragment_bomb(n)
    cost = measure(parse(document), Limits(max_depth=12, max_aliases=30, max_selections=2000))
    # Each selection node is visited at most twice (spreads listed, then measured).
    assert cost.visits <= 2 * _selection_nodes(document)
    (_, measured) = cost.operations["anonymous"]
    # 2**n fields and 2**(n+1) - 1 spreads; the count saturates just above the limit
    assert measured.selections == min(3 * 2**n - 1, 2001)


def test_cost_rule_survives_fragment_cycles() -> None:
    document = parse(
        "query{...A} fragment A on Query{...B x: __typename} fragment B on Query{...A}"
    )
    cost = measure(document, Limits(max_depth=12, max_aliases=30, max_selections=2000))
    assert cost.operations["anonymous"][1].aliases == 1


async def test_fragment_bomb_is_refused_while_healthz_answers(
    database_url: str, tmp_path: Path
) -> None:
    """The issue's n=40 query against a real server: a clear error, and /healthz answers
    meanwhile (before the fix the event loop was blocked for hours)."""
    server = await LiveServer(database_url, tmp_path / "server.log").start()
    try:
        async with httpx.AsyncClient(base_url=server.http_url, timeout=WAIT) as client:
            bomb, health = await asyncio.gather(
                client.post("/graphql", json={"query": fragment_bomb(40)}),
                client.get("/healthz"),
            )
    finally:
        await server.stop()
    assert health.status_code == 200
    assert bomb.status_code == 200
    body = bomb.json()
    assert body["data"] is None
    error = body["errors"][0]
    assert "has more than 2000 selections once its fragments are expanded" in error["message"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"


def _copies(m: int, d: int) -> str:
    """`m` copies of `product { variants { ... } }` at each of `d + 1` levels."""
    inner = "id" if d == 0 else _copies(m, d - 1)
    return " ".join([f"product {{ variants {{ {inner} }} }}"] * m)


async def test_repeated_fields_are_refused_before_quadratic_validation(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """graphql-core compares same-named fields pairwise, nested copies multiplying (a
    4 KB query of 5 copies at 3 levels costs 48,000 comparisons): such a query is
    refused by the linear check and graphql-core's validation never runs on it."""
    import strawberry.schema.schema as strawberry_schema

    validated: list[object] = []
    real_validate = strawberry_schema.validate

    def counting_validate(*args: Any, **kwargs: Any) -> Any:
        validated.append(args[1])
        return real_validate(*args, **kwargs)

    monkeypatch.setattr(strawberry_schema, "validate", counting_validate)
    query = '{ variant(sku: "MUG") { ' + _copies(5, 2) + " } }"
    body = (await client.post("/graphql", json={"query": query})).json()
    assert body["data"] is None
    assert "repeats fields too often" in body["errors"][0]["message"]
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert validated == []
    fine = '{ variant(sku: "MUG") { ' + _copies(1, 4) + " } }"
    assert "errors" not in (await client.post("/graphql", json={"query": fine})).json()
    assert len(validated) == 1


async def test_fragment_cycle_and_deep_fragments_are_refused(client: httpx.AsyncClient) -> None:
    cycle = "query{...A} fragment A on Query{...B} fragment B on Query{...A}"
    body = (await client.post("/graphql", json={"query": cycle})).json()
    assert body["data"] is None
    assert any("Cannot spread fragment" in e["message"] for e in body["errors"])
    deep = (
        'query { variant(sku: "MUG") { ...P0 } } '
        + " ".join(
            f"fragment P{i} on Variant {{ product {{ variants {{ ...P{i + 1} }} }} }}"
            for i in range(7)
        )
        + " fragment P7 on Variant { sku }"
    )
    body = (await client.post("/graphql", json={"query": deep})).json()
    assert "exceeds maximum operation depth of 12" in body["errors"][0]["message"]


# ---------------------------------------------------------------- item 5: request size


@pytest.fixture
async def small_client(database_url: str, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose body limit is 2,000 bytes."""
    app: Starlette = create_app(
        Settings(admin_tokens=["admin-secret"], max_request_bytes=2000), database_url=database_url
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
    await app.state.services.close()


class Chunks:
    """A chunked request body (no Content-Length) that records how much was pulled."""

    def __init__(self, chunk: bytes, count: int) -> None:
        self.chunk = chunk
        self.count = count
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.count):
            self.pulled += 1
            yield self.chunk


def _assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"


@pytest.mark.parametrize("path", ["/graphql", "/webhooks/stripe"])
async def test_a_declared_large_body_gets_413_at_once(
    small_client: httpx.AsyncClient, catalog: Catalog, engine: AsyncEngine, path: str
) -> None:
    lines = [{"sku": "MUG", "quantity": 1}] * 100
    body = json.dumps({"query": RESERVE, "variables": {"input": {"lines": lines}}})
    assert len(body) > 2000
    response = await small_client.post(
        path,
        content=body,
        headers={"Content-Type": "application/json", "Stripe-Signature": "t=1,v1=00"},
    )
    _assert_too_large(response)
    assert await reservations(engine) == 0
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(WebhookEvent))).scalar() == 0


@pytest.mark.parametrize("path", ["/graphql", "/webhooks/stripe"])
async def test_a_chunked_large_body_is_cut_off_when_the_count_passes(
    small_client: httpx.AsyncClient, engine: AsyncEngine, path: str
) -> None:
    chunks = Chunks(b" " * 500, 1000)  # 500 KB announced by nobody
    response = await small_client.post(
        path,
        content=chunks,
        headers={"Content-Type": "application/json", "Stripe-Signature": "t=1,v1=00"},
    )
    _assert_too_large(response)
    assert chunks.pulled <= 6  # stopped at 2,000 bytes, not after 500 KB
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(WebhookEvent))).scalar() == 0


async def test_a_body_under_the_limit_passes(small_client: httpx.AsyncClient) -> None:
    response = await small_client.post("/graphql", json={"query": "{ __typename }"})
    assert response.json() == {"data": {"__typename": "Query"}}


def test_document_cache_is_bounded_by_bytes_and_keyed_by_hash() -> None:
    cache = DocumentCache(max_bytes=1_000_000)
    for i in range(200):
        query = "{ __typename } " + f"# {i} " + "x" * 10_000
        key = DocumentCache.key(query)
        assert len(key) == 32  # a SHA-256 digest, not the text
        assert cache.put(key, parse(query), len(query)) is not None
        assert cache.bytes <= 1_000_000
    assert 0 < len(cache) < 200
    huge = "{ __typename } #" + "x" * 500_000  # over an eighth of the cache: not kept
    assert cache.put(DocumentCache.key(huge), parse(huge), len(huge)) is None


def test_document_cache_charges_token_dense_documents_for_their_ast() -> None:
    """A 27 KB query of 4,800 tokens holds ~1.9 MB of AST: it must be charged so."""
    dense = "{" + " ".join(f"a{i}: __typename" for i in range(1600)) + "}"
    cache = DocumentCache(max_bytes=32 * 1024 * 1024)
    entry = cache.put(DocumentCache.key(dense), parse(dense), len(dense))
    assert entry is not None
    assert entry.size > 1_900_000


# ---------------------------------------------------------------- item 6: malformed requests


@pytest.mark.parametrize(
    "body",
    [b'"hello"', b"42", b'{"query": "\xff\xfe"}', b"[" * 100_000 + b"]" * 100_000, b"{"],
    ids=["string", "number", "invalid-utf8", "nested-100k", "truncated"],
)
async def test_a_body_that_is_not_a_json_object_gets_400(
    client: httpx.AsyncClient, body: bytes
) -> None:
    response = await client.post(
        "/graphql", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert error["message"]


@pytest.mark.parametrize("sku", ["MUG\x00", "MUG\ud800"], ids=["nul", "lone-surrogate"])
async def test_unstorable_text_in_a_sku_is_invalid_input(
    client: httpx.AsyncClient, catalog: Catalog, engine: AsyncEngine, sku: str
) -> None:
    variables = {"input": {"lines": [{"sku": sku, "quantity": 1}]}}
    # json.dumps escapes the lone surrogate as \ud800, as a browser would send it.
    content = json.dumps({"query": RESERVE, "variables": variables})
    response = await client.post(
        "/graphql", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "INVALID_INPUT"
    assert "$input at lines.0.sku" in error["message"]
    assert await reservations(engine) == 0


async def test_unstorable_text_in_a_literal_is_invalid_input(client: httpx.AsyncClient) -> None:
    query = '{ variant(sku: "MUG\\u0000") { sku } }'
    body = (await client.post("/graphql", json={"query": query})).json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


async def test_an_out_of_range_int_variable_is_a_validation_error(
    client: httpx.AsyncClient,
) -> None:
    query = "query($n: Int) { products(first: $n) { edges { node { id } } } }"
    response = await client.post("/graphql", json={"query": query, "variables": {"n": 2**40}})
    message = response.json()["errors"][0]["message"]
    assert message.startswith("Variable '$n' has invalid value"), message
    assert "32-bit" in message
