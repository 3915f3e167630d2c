"""Attention reasons are written for the operator who reads them in the back office:
variants by SKU, amounts as decimals with their currency code, the way the API shows
`Money` (issue 15 item 3: "not enough stock for variants 37", "paid 100 usd, order total
5950 USD")."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.models import OrderStatus
from tests.conftest import GraphQLCaller
from tests.support.catalog import Catalog
from tests.support.invariants import assert_invariants
from tests.support.payments import ORDER, order_row, pending_order, reserve_id, send
from tests.test_stripe_webhook import expire


async def stored_reason(sessions: async_sessionmaker[AsyncSession], order_id: uuid.UUID) -> str:
    row = await order_row(sessions, order_id)
    assert row.status is OrderStatus.NEEDS_ATTENTION
    assert row.attention_reason is not None
    return row.attention_reason


async def test_late_payment_without_stock_names_the_skus(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    order_id, reservation_id = await pending_order(gql, {"SHIRT-M": 2, "MUG": 1})
    await expire(sessions, reservation_id)
    await reserve_id(gql, {"SHIRT-M": 2})  # someone else takes 2 of the 3 units
    outcome = await send(client, sessions, secret, "payment_intent.succeeded", order_id)

    assert outcome == "needs_attention"
    assert await stored_reason(sessions, order_id) == (
        "paid after its reservation ended; not enough stock for SHIRT-M (2 ordered, 1 available)"
    )
    await assert_invariants(sessions)


@pytest.mark.parametrize(
    ("amount", "currency", "reason"),
    [
        (100, None, "paid 1.00 USD, order total 9.99 USD"),
        (100, "usd", "paid 1.00 USD, order total 9.99 USD"),
        (None, "EUR", "paid 9.99 EUR, order total 9.99 USD"),
        (999, "JPY", "paid 999 JPY, order total 9.99 USD"),
    ],
)
async def test_amount_mismatch_shows_money_as_the_api_does(
    amount: int | None,
    currency: str | None,
    reason: str,
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    order_id, _ = await pending_order(gql, {"MUG": 1})
    outcome = await send(
        client,
        sessions,
        secret,
        "payment_intent.succeeded",
        order_id,
        amount=amount,
        currency=currency,
    )

    assert outcome == "amount_mismatch"
    assert await stored_reason(sessions, order_id) == reason
    body = await gql(ORDER, {"id": str(order_id)}, admin=True)
    assert body["data"]["order"]["attentionReason"] == reason
    await assert_invariants(sessions)
