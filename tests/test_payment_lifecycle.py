"""Payment lifecycle: the payment window counted from checkout, and a NEEDS_ATTENTION
order shown to the buyer who holds its reservation id (and logged)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gql_inventory.devtools import stripe_events as events
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.models import Reservation
from gql_inventory.settings import Settings
from gql_inventory.stock.expiry import expire_reservations
from gql_inventory.stock.invariants import find_violations
from tests.conftest import GraphQLCaller
from tests.support.catalog import Catalog
from tests.support.live import (
    WAIT,
    GraphQLWS,
    LiveServer,
    ServerFactory,
    eventually,
    wait_positioned,
)
from tests.support.payments import (
    checkout,
)

RESERVE_SHORT = """mutation($input: ReserveStockInput!) { reserveStock(input: $input) {
  reservation { id expiresAt } userErrors { code message } } }"""


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


# ---------------------------------------------------------------- NEEDS_ATTENTION reaches the buyer

ORDER_STATUS = """subscription($id: ID!, $rid: ID) {
  orderStatusChanged(orderId: $id, reservationId: $rid) { id status attentionReason } }"""
BUYER_ORDER = """query($id: ID!, $rid: ID) {
  order(id: $id, reservationId: $rid) { id status attentionReason } }"""
LIVE_RESERVE = """mutation($lines: [StockLineInput!]!) { reserveStock(input: {lines: $lines}) {
  reservation { id } userErrors { code } } }"""
LIVE_CHECKOUT = """mutation($rid: ID!) { checkout(input: {reservationId: $rid}) {
  order { id status } userErrors { code } } }"""
WEBHOOK_SECRET = "whsec_test_payment_lifecycle"


@pytest.fixture
async def live_server(
    database_url: str, engine: AsyncEngine, catalog: Catalog, tmp_path: Path
) -> AsyncIterator[LiveServer]:
    factory = ServerFactory(database_url, tmp_path)
    try:
        server = await factory.start(
            STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET, PENDING_PAYMENT_CHECK_INTERVAL_SECONDS="0"
        )
        await wait_positioned(engine)
        yield server
    finally:
        await factory.stop_all()


async def test_a_paid_order_without_stock_reaches_its_buyer_and_the_log(
    live_server: LiveServer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A payment arrives after the cart expired and its stock was sold out: the buyer who
    holds the reservation id sees NEEDS_ATTENTION with the reason, live and by query; the
    server logs it at WARNING with the order id."""
    server = live_server
    body = await server.graphql(LIVE_RESERVE, {"lines": [{"sku": "MUG", "quantity": 2}]})
    rid = body["data"]["reserveStock"]["reservation"]["id"]
    order = (await server.graphql(LIVE_CHECKOUT, {"rid": rid}))["data"]["checkout"]["order"]
    async with sessions.begin() as session:
        await session.execute(
            update(Reservation)
            .where(Reservation.id == uuid.UUID(rid))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    async with sessions.begin() as session:
        assert (
            await expire_reservations(UnitOfWork(session, actor="system"))
        ).cancelled_orders == [uuid.UUID(order["id"])]
    drained = await server.graphql(LIVE_RESERVE, {"lines": [{"sku": "MUG", "quantity": 50}]})
    assert drained["data"]["reserveStock"]["userErrors"] == []

    async with GraphQLWS.connect(server.ws_url) as buyer:
        op = await buyer.subscribe(ORDER_STATUS, {"id": order["id"], "rid": rid})
        now = (await buyer.data(op))["orderStatusChanged"]
        assert (now["status"], now["attentionReason"]) == ("CANCELLED", None)
        async with sessions.begin() as session:
            facts = await events.load_order_facts(session, uuid.UUID(order["id"]))
        body_bytes, headers = events.signed(
            events.event_for_order("payment_intent.succeeded", facts), WEBHOOK_SECRET
        )
        async with httpx.AsyncClient(base_url=server.http_url, timeout=WAIT) as client:
            answer = await client.post("/webhooks/stripe", content=body_bytes, headers=headers)
        assert answer.json()["outcome"] == "needs_attention", answer.text
        changed = (await buyer.data(op))["orderStatusChanged"]
    assert changed["status"] == "NEEDS_ATTENTION"
    assert "not enough stock" in changed["attentionReason"]
    queried = (await server.graphql(BUYER_ORDER, {"id": order["id"], "rid": rid}))["data"]
    assert queried["order"] == changed

    async def logged() -> bool:
        return any(
            "order.needs_attention" in line and order["id"] in line and "error" in line
            for line in server.log().splitlines()
        )

    await eventually(logged, what="the ERROR log line")
    async with sessions.begin() as session:
        assert await find_violations(session) == []
