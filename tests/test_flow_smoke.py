"""A storefront flow end to end through GraphQL: reserve, update, checkout, pay, refund."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.orders import payment_outcomes
from gql_inventory.stock.invariants import find_violations
from tests.conftest import GraphQLCaller
from tests.support.catalog import Catalog

RESERVE = """mutation($input: ReserveStockInput!) { reserveStock(input: $input) {
  reservation { id status expiresAt lines { variant { sku } quantity } }
  userErrors { code message field sku requested available } } }"""
UPDATE = """mutation($input: UpdateReservationInput!) { updateReservation(input: $input) {
  reservation { id status lines { variant { sku } quantity } }
  userErrors { code message field sku requested available } } }"""
CHECKOUT = """mutation($input: CheckoutInput!) { checkout(input: $input) {
  order { id status total { amount currencyCode } paymentIntentId
          lines { variant { sku } quantity unitPrice { amount } } reservation { status } }
  paymentClientSecret userErrors { code message field } } }"""
REFUND = """mutation($input: RefundOrderInput!) { refundOrder(input: $input) {
  order { id status lines { variant { sku } quantity refundedQuantity } }
  userErrors { code message field sku requested available } } }"""


async def test_storefront_flow(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    reserved = await gql(
        RESERVE,
        {"input": {"lines": [{"sku": "SHIRT-S", "quantity": 11}, {"sku": "MUG", "quantity": 2}]}},
    )
    payload = reserved["data"]["reserveStock"]
    assert payload["userErrors"] == []
    rid = payload["reservation"]["id"]
    assert payload["reservation"]["lines"] == [
        {"variant": {"sku": "SHIRT-S"}, "quantity": 11},
        {"variant": {"sku": "MUG"}, "quantity": 2},
    ]
    levels = await gql('{ variant(sku: "SHIRT-S") { available stockLevels { reserved } } }')
    assert levels["data"]["variant"] == {
        "available": 1,
        "stockLevels": [{"reserved": 10}, {"reserved": 1}],
    }
    updated = await gql(
        UPDATE,
        {
            "input": {
                "reservationId": rid,
                "lines": [{"sku": "SHIRT-S", "quantity": 1}, {"sku": "MUG", "quantity": 0}],
            }
        },
    )
    assert updated["data"]["updateReservation"]["userErrors"] == []
    assert updated["data"]["updateReservation"]["reservation"]["lines"] == [
        {"variant": {"sku": "SHIRT-S"}, "quantity": 1}
    ]
    checked_out = await gql(CHECKOUT, {"input": {"reservationId": rid, "email": "a@b.c"}})
    order = checked_out["data"]["checkout"]["order"]
    assert order["status"] == "PENDING_PAYMENT"
    assert order["total"] == {"amount": "25.00", "currencyCode": "USD"}
    assert checked_out["data"]["checkout"]["paymentClientSecret"].startswith(
        order["paymentIntentId"]
    )
    async with sessions.begin() as session:
        assert (
            await payment_outcomes.payment_succeeded(
                UnitOfWork(session, actor="system"), uuid.UUID(order["id"])
            )
            == "sold"
        )
    async with sessions.begin() as session:
        assert (
            await payment_outcomes.payment_succeeded(
                UnitOfWork(session, actor="system"), uuid.UUID(order["id"])
            )
            == "already_paid"
        )
    after_sale = await gql('{ variant(sku: "SHIRT-S") { onHand reserved available } }')
    assert after_sale["data"]["variant"] == {"onHand": 11, "reserved": 0, "available": 11}
    refund = await gql(REFUND, {"input": {"orderId": order["id"]}}, admin=True)
    assert refund["data"]["refundOrder"]["order"]["status"] == "REFUNDED"
    after_refund = await gql('{ variant(sku: "SHIRT-S") { onHand reserved available } }')
    assert after_refund["data"]["variant"] == {"onHand": 12, "reserved": 0, "available": 12}
    async with sessions.begin() as session:
        assert await find_violations(session) == []


async def test_shortage_changes_nothing(gql: GraphQLCaller, catalog: Catalog) -> None:
    body = await gql(
        RESERVE,
        {
            "input": {
                "lines": [
                    {"sku": "MUG", "quantity": 1},
                    {"sku": "SHIRT-M", "quantity": 4},
                    {"sku": "CAP", "quantity": 1},
                ]
            }
        },
    )
    payload = body["data"]["reserveStock"]
    assert payload["reservation"] is None
    assert [
        (e["code"], e["sku"], e["requested"], e["available"], e["field"])
        for e in payload["userErrors"]
    ] == [
        ("INSUFFICIENT_STOCK", "SHIRT-M", 4, 3, ["input", "lines", "1", "quantity"]),
        ("INSUFFICIENT_STOCK", "CAP", 1, 0, ["input", "lines", "2", "quantity"]),
    ]
    mug = await gql('{ variant(sku: "MUG") { reserved } }')
    assert mug["data"]["variant"]["reserved"] == 0


async def test_admin_mutation_without_token_is_forbidden(
    gql: GraphQLCaller, catalog: Catalog
) -> None:
    body = await gql(
        'mutation { adjustStock(input: {sku: "MUG", delta: 5, reason: RECEIVED}) '
        "{ userErrors { code } } }"
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    mug = await gql('{ variant(sku: "MUG") { onHand } }')
    assert mug["data"]["variant"]["onHand"] == 50
