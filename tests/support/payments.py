"""Storefront and webhook helpers of the payment tests: orders awaiting payment,
Stripe events signed and delivered to the webhook, and rows read back to check them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.devtools import stripe_events as events
from gql_inventory.models import (
    Order,
    PaymentEvent,
    Refund,
    Reservation,
    StockLevel,
    Variant,
    WebhookEvent,
)
from tests.conftest import GraphQLCaller
from tests.support import graphql

CHECKOUT = """mutation($input: CheckoutInput!) { checkout(input: $input) {
  order { id status paymentIntentId total { amount currencyCode } }
  paymentClientSecret userErrors { code message field } } }"""
REFUND = """mutation($input: RefundOrderInput!) { refundOrder(input: $input) {
  order { id status lines { variant { sku } quantity refundedQuantity } }
  userErrors { code message field } } }"""
CANCEL = """mutation($input: CancelOrderInput!) { cancelOrder(input: $input) {
  order { id status } userErrors { code message field } } }"""
ORDER = """query($id: ID!) { order(id: $id) { id status attentionReason lastPaymentError
  paymentEvents { type providerEventId detail } } }"""


async def reserve_id(gql: GraphQLCaller, lines: dict[str, int]) -> str:
    """Reserve `lines` (``{sku: quantity}``, asserting no userErrors); returns the id only."""
    return str((await graphql.reserve(gql, lines))["id"])


async def checkout(gql: GraphQLCaller, reservation_id: str) -> dict[str, Any]:
    """Check a reservation out; returns the payload (order, secret, errors)."""
    body = await gql(CHECKOUT, {"input": {"reservationId": reservation_id, "email": "a@b.c"}})
    payload: dict[str, Any] = body["data"]["checkout"]
    return payload


async def pending_order(gql: GraphQLCaller, lines: dict[str, int]) -> tuple[uuid.UUID, str]:
    """``(order id, reservation id)`` of a fresh PENDING_PAYMENT order."""
    reservation_id = await reserve_id(gql, lines)
    payload = await checkout(gql, reservation_id)
    assert payload["userErrors"] == [], payload
    return uuid.UUID(payload["order"]["id"]), reservation_id


async def facts_of(
    sessions: async_sessionmaker[AsyncSession], order_id: uuid.UUID
) -> events.OrderFacts:
    """The order's facts, as the CLI reads them."""
    async with sessions.begin() as session:
        return await events.load_order_facts(session, order_id)


async def deliver(
    client: httpx.AsyncClient,
    event: dict[str, Any],
    secret: str,
    *,
    timestamp: int | None = None,
) -> httpx.Response:
    """Post `event` to the webhook, signed by the stripe library as Stripe signs it."""
    body, headers = events.signed(event, secret, timestamp=timestamp)
    return await client.post("/webhooks/stripe", content=body, headers=headers)


async def send(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    secret: str,
    type_: str,
    order_id: uuid.UUID,
    **kwargs: Any,
) -> str:
    """Build an event about the order (from the database), deliver it; returns the outcome."""
    event = events.event_for_order(type_, await facts_of(sessions, order_id), **kwargs)
    response = await deliver(client, event, secret)
    assert response.status_code == 200, response.text
    return str(response.json()["outcome"])


@dataclass(frozen=True)
class Stock:
    """A variant's figures summed over its locations."""

    on_hand: int
    reserved: int


async def stock(sessions: async_sessionmaker[AsyncSession], sku: str) -> Stock:
    async with sessions.begin() as session:
        row = (
            await session.execute(
                select(
                    func.coalesce(func.sum(StockLevel.on_hand), 0),
                    func.coalesce(func.sum(StockLevel.reserved), 0),
                )
                .join(Variant, Variant.id == StockLevel.variant_id)
                .where(Variant.sku == sku)
            )
        ).one()
    return Stock(on_hand=int(row[0]), reserved=int(row[1]))


async def order_row(sessions: async_sessionmaker[AsyncSession], order_id: uuid.UUID) -> Order:
    async with sessions.begin() as session:
        return (await session.execute(select(Order).where(Order.id == order_id))).scalar_one()


async def reservation_row(
    sessions: async_sessionmaker[AsyncSession], reservation_id: str | uuid.UUID
) -> Reservation:
    async with sessions.begin() as session:
        return (
            await session.execute(
                select(Reservation).where(Reservation.id == uuid.UUID(str(reservation_id)))
            )
        ).scalar_one()


async def counts(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int, int]:
    """``(webhook events, payment events, refunds)`` stored."""
    async with sessions.begin() as session:
        return (
            int((await session.execute(select(func.count()).select_from(WebhookEvent))).one()[0]),
            int((await session.execute(select(func.count()).select_from(PaymentEvent))).one()[0]),
            int((await session.execute(select(func.count()).select_from(Refund))).one()[0]),
        )


async def refunds_of(
    sessions: async_sessionmaker[AsyncSession], order_id: uuid.UUID
) -> list[Refund]:
    async with sessions.begin() as session:
        return list(
            (
                await session.execute(
                    select(Refund).where(Refund.order_id == order_id).order_by(Refund.id)
                )
            ).scalars()
        )
