"""GraphQL operations and small helpers shared by the mutation tests."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.orders import payment_outcomes
from gql_inventory.payments import ProviderFailure
from gql_inventory.payments.base import CreatedPayment, PaymentRequest, ProviderRefund
from tests.conftest import GraphQLCaller

USER_ERRORS = "userErrors { code message field sku requested available }"
RESERVATION = "id status expiresAt lines { variant { sku } quantity }"
ORDER = (
    "id status paymentIntentId total { amount currencyCode } reservation { id status } "
    "lines { variant { sku } quantity refundedQuantity unitPrice { amount currencyCode } }"
)
LEVEL = "location { id name } onHand reserved available version"
MOVEMENT = (
    "id kind sku location { id name } onHandDelta reservedDelta onHandAfter reservedAfter "
    "reason reference occurredAt"
)

RESERVE = f"""mutation($input: ReserveStockInput!) {{ reserveStock(input: $input) {{
  reservation {{ {RESERVATION} }} {USER_ERRORS} }} }}"""
UPDATE = f"""mutation($input: UpdateReservationInput!) {{ updateReservation(input: $input) {{
  reservation {{ {RESERVATION} }} {USER_ERRORS} }} }}"""
RELEASE = f"""mutation($id: ID!) {{ releaseReservation(reservationId: $id) {{
  reservation {{ {RESERVATION} }} {USER_ERRORS} }} }}"""
CHECKOUT = f"""mutation($input: CheckoutInput!) {{ checkout(input: $input) {{
  order {{ {ORDER} }} paymentClientSecret {USER_ERRORS} }} }}"""
ADJUST = f"""mutation($input: AdjustStockInput!) {{ adjustStock(input: $input) {{
  stockLevel {{ {LEVEL} }} movement {{ {MOVEMENT} }} {USER_ERRORS} }} }}"""
SET = f"""mutation($input: SetStockInput!) {{ setStock(input: $input) {{
  stockLevel {{ {LEVEL} }} movement {{ {MOVEMENT} }} {USER_ERRORS} }} }}"""
REFUND = f"""mutation($input: RefundOrderInput!) {{ refundOrder(input: $input) {{
  order {{ {ORDER} }} {USER_ERRORS} }} }}"""
CANCEL = f"""mutation($input: CancelOrderInput!) {{ cancelOrder(input: $input) {{
  order {{ {ORDER} }} {USER_ERRORS} }} }}"""
ORDER_QUERY = f"""query($id: ID!, $rid: ID) {{
  order(id: $id, reservationId: $rid) {{ {ORDER} }} }}"""
RESERVATION_QUERY = f"""query($id: ID!) {{ reservation(id: $id) {{ {RESERVATION} }} }}"""
MOVEMENTS = f"""query($sku: String, $first: Int, $after: String, $reference: String) {{
  stockMovements(sku: $sku, first: $first, after: $after, reference: $reference) {{
    edges {{ cursor node {{ {MOVEMENT} }} }}
    pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} }} }}"""
VARIANT = f"""query($sku: String!) {{ variant(sku: $sku) {{
  onHand reserved available stockLevels {{ {LEVEL} }} }} }}"""


def errors_of(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    """``[(code, field), ...]`` of a payload's userErrors."""
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


async def post(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    authorization: str | None = None,
) -> dict[str, Any]:
    """POST an operation with an arbitrary `Authorization` header (None: no header)."""
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def scalar(sessions: async_sessionmaker[AsyncSession], sql: str, **params: Any) -> Any:
    """The single value of a SQL query."""
    async with sessions() as session:
        return (await session.execute(text(sql), params)).scalar_one()


async def ledger_count(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Number of rows in the stock movement ledger."""
    return int(await scalar(sessions, "SELECT count(*) FROM stock_movements"))


async def snapshot(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    """Everything a refused operation must leave alone: levels, ledger, orders, refunds."""
    async with sessions() as session:
        levels = (
            await session.execute(
                text("SELECT id, on_hand, reserved, version FROM stock_levels ORDER BY id")
            )
        ).all()
        counts = {
            table: (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
            for table in (
                "stock_movements",
                "reservations",
                "reservation_lines",
                "orders",
                "order_lines",
                "refunds",
                "idempotency_records",
            )
        }
        statuses = (
            await session.execute(
                text(
                    "SELECT 'r' || id::text, status FROM reservations UNION ALL "
                    "SELECT 'o' || id::text, status FROM orders ORDER BY 1"
                )
            )
        ).all()
        refunded = (
            await session.execute(text("SELECT id, refunded_quantity FROM order_lines ORDER BY id"))
        ).all()
    return {
        "levels": [tuple(r) for r in levels],
        "counts": counts,
        "statuses": [tuple(r) for r in statuses],
        "refunded": [tuple(r) for r in refunded],
    }


async def variant_levels(gql: GraphQLCaller, sku: str) -> dict[str, tuple[int, int]]:
    """``{location name: (onHand, reserved)}`` of a variant."""
    body = await gql(VARIANT, {"sku": sku})
    return {
        lv["location"]["name"]: (lv["onHand"], lv["reserved"])
        for lv in body["data"]["variant"]["stockLevels"]
    }


async def reserve(gql: GraphQLCaller, lines: dict[str, int], **extra: Any) -> dict[str, Any]:
    """Reserve `{sku: quantity}`; returns the reservation (asserting no userErrors)."""
    body = await gql(
        RESERVE,
        {"input": {"lines": [{"sku": s, "quantity": q} for s, q in lines.items()], **extra}},
    )
    payload = body["data"]["reserveStock"]
    assert payload["userErrors"] == [], payload
    reservation: dict[str, Any] = payload["reservation"]
    return reservation


async def checkout(gql: GraphQLCaller, reservation_id: str, **extra: Any) -> dict[str, Any]:
    """Check a reservation out; returns the order (asserting no userErrors)."""
    body = await gql(CHECKOUT, {"input": {"reservationId": reservation_id, **extra}})
    payload = body["data"]["checkout"]
    assert payload["userErrors"] == [], payload
    order: dict[str, Any] = payload["order"]
    return order


async def pending_order(gql: GraphQLCaller, lines: dict[str, int]) -> tuple[str, str]:
    """``(order id, reservation id)`` of a fresh PENDING_PAYMENT order."""
    reservation = await reserve(gql, lines)
    order = await checkout(gql, reservation["id"])
    assert order["status"] == "PENDING_PAYMENT"
    return order["id"], reservation["id"]


async def paid_order(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], lines: dict[str, int]
) -> tuple[str, str]:
    """``(order id, reservation id)`` of a fresh PAID order (payment applied in the domain)."""
    order_id, reservation_id = await pending_order(gql, lines)
    async with sessions.begin() as session:
        assert (
            await payment_outcomes.payment_succeeded(
                UnitOfWork(session, actor="stripe"), uuid.UUID(order_id)
            )
            == "sold"
        )
    return order_id, reservation_id


class FailingProvider:
    """A payment provider whose every call fails (the provider is down)."""

    name = "failing"

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def create_payment(self, request: PaymentRequest) -> CreatedPayment:
        self.calls.append("create_payment")
        raise ProviderFailure("provider unavailable (create)", code="api_error")

    async def cancel_payment(self, payment_intent_id: str) -> None:
        self.calls.append("cancel_payment")
        raise ProviderFailure("provider unavailable (cancel)", code="api_error")

    async def refund(
        self, payment_intent_id: str, *, amount: int, idempotency_key: str
    ) -> ProviderRefund:
        self.calls.append("refund")
        raise ProviderFailure("provider unavailable (refund)", code="api_error")
