"""Idempotency keys are secrets (issue 8, item 4).

A key replays its first result, and a reservation id is the right to check out or release
it: an anonymous key must be long enough not to be guessed (clients send a UUIDv4), and an
admin's keys are that admin's alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.app import create_app
from gql_inventory.context import admin_identities, admin_name
from gql_inventory.settings import Settings
from tests.conftest import GraphQLCaller
from tests.support.catalog import Catalog
from tests.support.graphql import (
    ADJUST,
    CHECKOUT,
    RESERVE,
    errors_of,
    reserve,
    scalar,
    snapshot,
    variant_levels,
)
from tests.support.invariants import assert_invariants

UUID_KEY = "0c6f3e52-8f0e-4d5b-9a57-2f7f1b5e8c11"


@pytest.fixture
async def two_admins(database_url: str, engine: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app with two named admins (alice, bob) and one bare token."""
    app = create_app(
        Settings(admin_tokens=["alice=tok-alice", "bob=tok-bob", "bare-secret"]),
        database_url=database_url,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
    await app.state.services.close()


async def _post(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str
) -> Any:
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("key", ["cart-1", "x" * 15])
async def test_short_anonymous_key_is_refused_and_changes_nothing(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog, key: str
) -> None:
    before = await snapshot(sessions)

    body = await gql(
        RESERVE, {"input": {"lines": [{"sku": "MUG", "quantity": 1}], "idempotencyKey": key}}
    )

    payload = body["data"]["reserveStock"]
    assert payload["reservation"] is None
    assert errors_of(payload) == [("INVALID_INPUT", ["input", "idempotencyKey"])]
    message = payload["userErrors"][0]["message"]
    assert "at least 16 characters" in message
    assert "UUIDv4" in message
    assert await snapshot(sessions) == before
    assert await scalar(sessions, "SELECT count(*) FROM idempotency_records") == 0


async def test_short_anonymous_checkout_key_is_refused(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    rid = (await reserve(gql, {"MUG": 1}))["id"]
    before = await snapshot(sessions)

    body = await gql(CHECKOUT, {"input": {"reservationId": rid, "idempotencyKey": "co-1"}})

    payload = body["data"]["checkout"]
    assert payload["order"] is None
    assert errors_of(payload) == [("INVALID_INPUT", ["input", "idempotencyKey"])]
    assert await snapshot(sessions) == before


async def test_uuid_key_replays_for_the_storefront(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    first = await reserve(gql, {"MUG": 2}, idempotencyKey=UUID_KEY)
    again = await reserve(gql, {"MUG": 2}, idempotencyKey=UUID_KEY)
    assert again["id"] == first["id"]
    assert await variant_levels(gql, "MUG") == {"Main": (50, 2)}
    owners = await scalar(sessions, "SELECT string_agg(owner, ',') FROM idempotency_records")
    assert owners == "storefront"


async def test_admin_keys_are_scoped_per_admin(
    two_admins: httpx.AsyncClient,
    gql: GraphQLCaller,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
) -> None:
    """alice's key `adj-1` replays alice's adjustment only; bob's `adj-1` is his own, and a
    short key is fine for an admin (it is not a capability anyone else can use)."""
    adjust = {"sku": "MUG", "delta": 5, "reason": "RECEIVED", "idempotencyKey": "adj-1"}

    alice = await _post(two_admins, ADJUST, {"input": adjust}, "tok-alice")
    alice_again = await _post(two_admins, ADJUST, {"input": adjust}, "tok-alice")
    bob = await _post(two_admins, ADJUST, {"input": adjust}, "tok-bob")
    bare = await _post(two_admins, ADJUST, {"input": adjust}, "bare-secret")

    movements = [b["data"]["adjustStock"]["movement"] for b in (alice, alice_again, bob, bare)]
    assert all(b["data"]["adjustStock"]["userErrors"] == [] for b in (alice, bob, bare))
    assert movements[0] == movements[1]  # alice's retry replays her own result
    assert len({m["id"] for m in movements}) == 3  # bob and the bare token applied theirs
    assert await variant_levels(gql, "MUG") == {"Main": (65, 0)}
    owners = await scalar(
        sessions, "SELECT string_agg(owner, ',' ORDER BY owner) FROM idempotency_records"
    )
    assert owners == "admin:alice,admin:bob,admin:token-3"
    await assert_invariants(sessions)


async def test_admin_and_storefront_keys_never_meet(
    two_admins: httpx.AsyncClient,
    gql: GraphQLCaller,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
) -> None:
    """The storefront's reservation is not replayed to an admin sending the same key."""
    mine = await reserve(gql, {"MUG": 1}, idempotencyKey=UUID_KEY)
    body = await _post(
        two_admins,
        RESERVE,
        {"input": {"lines": [{"sku": "MUG", "quantity": 1}], "idempotencyKey": UUID_KEY}},
        "tok-alice",
    )
    theirs = body["data"]["reserveStock"]["reservation"]
    assert theirs["id"] != mine["id"]
    assert await variant_levels(gql, "MUG") == {"Main": (50, 2)}


def test_admin_names_never_expose_the_secret() -> None:
    tokens = ["alice=tok-alice", "s3cr3t-bare", " bob = tok-bob "]
    assert admin_identities(tokens) == [
        ("alice", "tok-alice"),
        ("token-2", "s3cr3t-bare"),
        ("bob", "tok-bob"),
    ]
    assert admin_name("tok-alice", tokens) == "alice"
    assert admin_name("s3cr3t-bare", tokens) == "token-2"
    assert admin_name("alice", tokens) is None
    assert admin_name("alice=tok-alice", tokens) is None
    assert admin_name(None, tokens) is None
