"""Payment lifecycle: the payment window counted from checkout, and a NEEDS_ATTENTION
order shown to the buyer who holds its reservation id (and logged)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.settings import Settings
from tests.conftest import GraphQLCaller
from tests.factories import Catalog, make_catalog
from tests.stripe_support import checkout

RESERVE_SHORT = """mutation($input: ReserveStockInput!) { reserveStock(input: $input) {
  reservation { id expiresAt } userErrors { code message } } }"""


@pytest.fixture
async def catalog(sessions: async_sessionmaker[AsyncSession]) -> Catalog:
    async with sessions.begin() as session:
        return await make_catalog(session)


async def test_checkout_gives_the_buyer_the_whole_payment_window(
    gql: GraphQLCaller,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    settings: Settings,
) -> None:
    """A cart checked out one minute before its TTL ends is held for the payment window
    from checkout (the database's clock: the order's created_at), not one minute."""
    body = await gql(
        RESERVE_SHORT, {"input": {"lines": [{"sku": "MUG", "quantity": 1}], "ttlSeconds": 60}}
    )
    reservation_id = body["data"]["reserveStock"]["reservation"]["id"]
    payload = await checkout(gql, reservation_id)
    assert payload["userErrors"] == [], payload
    window = 900  # PAYMENT_WINDOW_SECONDS' default
    async with sessions.begin() as session:
        row = (
            await session.execute(
                text(
                    "SELECT r.expires_at - o.created_at AS held, r.status "
                    "FROM reservations r JOIN orders o ON o.reservation_id = r.id "
                    "WHERE r.id = :rid"
                ),
                {"rid": uuid.UUID(reservation_id)},
            )
        ).one()
    assert row.status == "ACTIVE"
    assert row.held.total_seconds() >= window

    # A second checkout of the same reservation returns the same order, window unchanged.
    again = await checkout(gql, reservation_id)
    assert again["order"]["id"] == payload["order"]["id"]


async def test_a_long_cart_keeps_its_longer_expiry_at_checkout(
    gql: GraphQLCaller,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    settings: Settings,
) -> None:
    """The window only lengthens a hold: a cart expiring later than it keeps its expiry."""
    body = await gql(
        RESERVE_SHORT, {"input": {"lines": [{"sku": "MUG", "quantity": 1}], "ttlSeconds": 3600}}
    )
    reservation = body["data"]["reserveStock"]["reservation"]
    async with sessions.begin() as session:
        before = (
            await session.execute(
                text("SELECT expires_at FROM reservations WHERE id = :rid"),
                {"rid": uuid.UUID(reservation["id"])},
            )
        ).scalar_one()
    payload = await checkout(gql, reservation["id"])
    assert payload["userErrors"] == [], payload
    async with sessions.begin() as session:
        after = (
            await session.execute(
                text("SELECT expires_at FROM reservations WHERE id = :rid"),
                {"rid": uuid.UUID(reservation["id"])},
            )
        ).scalar_one()
    assert after == before
