"""Signed Stripe events with impossible numbers or malformed bodies (issue 8, items 7).

An impossible event (amount 0, negative, 2^62, 2^70, above what was paid; a refund of
an unpaid order) answers 200 ``invalid``, is recorded, and changes no stock, no order
status, no ledger row; a redelivery is a no-op. A malformed body never gives a 500.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.devtools import stripe_events as events
from gql_inventory.models import (
    Order,
    PaymentEvent,
    Refund,
    Reservation,
    StockLevel,
    StockMovement,
    WebhookEvent,
)
from tests.conftest import GraphQLCaller
from tests.support.catalog import Catalog
from tests.support.invariants import assert_invariants
from tests.support.payments import (
    deliver,
    facts_of,
    pending_order,
    send,
)

MUG_PRICE = 999


async def snapshot(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    """Everything an event could change: levels, ledger, orders, reservations, refunds."""
    async with sessions.begin() as s:
        return {
            "levels": (
                await s.execute(
                    select(StockLevel.id, StockLevel.on_hand, StockLevel.reserved).order_by(
                        StockLevel.id
                    )
                )
            ).all(),
            "ledger": (await s.execute(select(func.count()).select_from(StockMovement))).scalar(),
            "orders": (
                await s.execute(
                    select(
                        Order.id, Order.status, Order.attention_reason, Order.updated_at
                    ).order_by(Order.id)
                )
            ).all(),
            "reservations": (
                await s.execute(
                    select(Reservation.id, Reservation.status, Reservation.expires_at).order_by(
                        Reservation.id
                    )
                )
            ).all(),
            "refunds": (
                await s.execute(
                    select(Refund.provider_refund_id, Refund.amount, Refund.status).order_by(
                        Refund.id
                    )
                )
            ).all(),
        }


async def recorded(sessions: async_sessionmaker[AsyncSession], event_id: str) -> tuple[Any, ...]:
    """``(webhook_events outcome, [(payment event type, detail)])`` of one event."""
    async with sessions.begin() as s:
        outcome = (
            await s.execute(select(WebhookEvent.outcome).where(WebhookEvent.id == event_id))
        ).scalar_one()
        rows = (
            await s.execute(
                select(PaymentEvent.type, PaymentEvent.detail).where(
                    PaymentEvent.provider_event_id == event_id
                )
            )
        ).all()
    return outcome, [tuple(r) for r in rows]


async def paid_order(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    secret: str,
) -> uuid.UUID:
    order_id, _ = await pending_order(gql, {"MUG": 2})
    assert await send(client, sessions, secret, "payment_intent.succeeded", order_id) == "sold"
    return order_id


async def assert_invalid_changes_nothing(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    secret: str,
    event: dict[str, Any],
) -> None:
    before = await snapshot(sessions)
    response = await deliver(client, event, secret)
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "invalid"
    assert await snapshot(sessions) == before
    outcome, rows = await recorded(sessions, event["id"])
    assert outcome == "invalid"
    assert [t for t, _ in rows] == ["invalid_event"]  # on the order, for admins
    assert rows[0][1].startswith(event["type"])
    again = await deliver(client, event, secret)  # a redelivery is a no-op
    assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")
    assert await snapshot(sessions) == before
    await assert_invariants(sessions)


AMOUNTS = {"2^70": 2**70, "2^62": 2**62, "negative": -1, "zero": 0, "over": 2 * MUG_PRICE + 1}


@pytest.mark.parametrize("amount", AMOUNTS.values(), ids=AMOUNTS.keys())
@pytest.mark.parametrize("type_", ["refund.created", "charge.refunded", "refund.updated"])
async def test_impossible_refund_amounts_on_a_paid_order(
    type_: str,
    amount: int,
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    order_id = await paid_order(gql, client, sessions, secret)
    event = events.event_for_order(type_, await facts_of(sessions, order_id), amount=amount)
    await assert_invalid_changes_nothing(client, sessions, secret, event)


@pytest.mark.parametrize("amount", [2**62, 2 * MUG_PRICE, 1], ids=["2^62", "total", "one"])
@pytest.mark.parametrize("type_", ["refund.created", "charge.refund.updated", "refund.failed"])
async def test_refund_of_an_unpaid_order_is_invalid(
    type_: str,
    amount: int,
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    order_id, _ = await pending_order(gql, {"MUG": 2})
    event = events.event_for_order(type_, await facts_of(sessions, order_id), amount=amount)
    await assert_invalid_changes_nothing(client, sessions, secret, event)


async def test_charge_refunded_of_an_unpaid_order_without_the_charge_amount_is_invalid(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    order_id, _ = await pending_order(gql, {"MUG": 2})
    event = events.event_for_order("charge.refunded", await facts_of(sessions, order_id))
    del event["data"]["object"]["amount"], event["data"]["object"]["amount_captured"]
    await assert_invalid_changes_nothing(client, sessions, secret, event)


@pytest.mark.parametrize("captured", [2**62, 2 * MUG_PRICE - 1], ids=["2^62", "below_refund"])
async def test_charge_refunded_more_than_its_charge_is_invalid(
    captured: int,
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    order_id, _ = await pending_order(gql, {"MUG": 2})
    event = events.event_for_order(
        "charge.refunded", await facts_of(sessions, order_id), amount=2 * MUG_PRICE
    )
    event["data"]["object"]["amount_captured"] = captured
    await assert_invalid_changes_nothing(client, sessions, secret, event)


async def test_refunds_adding_up_past_the_total_are_invalid(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    order_id = await paid_order(gql, client, sessions, secret)
    facts = await facts_of(sessions, order_id)
    first = events.event_for_order("refund.created", facts, amount=1500, refund_id="re_first")
    assert (await deliver(client, first, secret)).json()["outcome"] == "needs_attention"
    second = events.event_for_order("refund.created", facts, amount=499, refund_id="re_second")
    await assert_invalid_changes_nothing(client, sessions, secret, second)
    # the first refund's own update still counts it once
    update = events.event_for_order("refund.updated", facts, amount=1500, refund_id="re_first")
    assert (await deliver(client, update, secret)).json()["outcome"] != "invalid"


async def test_a_recorded_refund_above_the_total_stays_possible(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    """`cancelOrder` of an over-paid order refunds all that was paid, above the total."""
    order_id = await paid_order(gql, client, sessions, secret)
    async with sessions.begin() as s:
        s.add(
            Refund(
                order_id=order_id,
                provider_refund_id="re_overpaid",
                amount=2 * MUG_PRICE + 5,
                currency_code="USD",
                status="pending",
                lines=[],
            )
        )
    facts = await facts_of(sessions, order_id)
    same = events.event_for_order("refund.updated", facts, refund_id="re_overpaid")
    assert (await deliver(client, same, secret)).json()["outcome"] != "invalid"
    other = events.event_for_order(
        "refund.updated", facts, refund_id="re_overpaid", amount=2 * MUG_PRICE + 6
    )
    await assert_invalid_changes_nothing(client, sessions, secret, other)


@pytest.mark.parametrize("amount", [2**70, 2**62, 0, -5], ids=["2^70", "2^62", "zero", "neg"])
async def test_impossible_payment_amounts_leave_the_order_pending(
    amount: int,
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    order_id, _ = await pending_order(gql, {"MUG": 2})
    event = events.event_for_order(
        "payment_intent.succeeded", await facts_of(sessions, order_id), amount=amount
    )
    event["data"]["object"]["amount_received"] = amount
    await assert_invalid_changes_nothing(client, sessions, secret, event)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("currency", "usdollars"),
        ("currency", "u\x00d"),
        ("id", "re_" + "x" * 300),
        ("id", "re_\x00"),
        ("status", "x" * 40),
        ("status", ["succeeded"]),
    ],
    ids=["currency_long", "currency_nul", "id_long", "id_nul", "status_long", "status_list"],
)
async def test_impossible_refund_fields_are_invalid(
    field: str,
    value: object,
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    order_id = await paid_order(gql, client, sessions, secret)
    event = events.event_for_order("refund.created", await facts_of(sessions, order_id))
    event["data"]["object"][field] = value
    await assert_invalid_changes_nothing(client, sessions, secret, event)


# ---------------------------------------------------------------- malformed bodies


def _signed_raw(body: bytes, secret: str) -> dict[str, str]:
    timestamp = int(time.time())
    signature = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return {"Stripe-Signature": f"t={timestamp},v1={signature}"}


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    "body",
    [
        '{"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": '
        + _deep(200_000)
        + "}}",
        '{"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": {"a": '
        + '{"a": ' * 5000
        + "1"
        + "}" * 5000
        + "}}}",
        '{"id": "evt_1", "type": "x", "data": {"object": {"amount": 1' + "0" * 5000 + "}}}",
        '{"id": "evt_\\u0000", "type": "x", "data": {"object": {}}}',
        '{"id": "evt_' + "x" * 300 + '", "type": "x", "data": {"object": {}}}',
        '{"id": "evt_1", "type": "' + "x" * 100 + '", "data": {"object": {}}}',
        '{"id": 7, "type": "x", "data": {"object": {}}}',
        '{"id": "evt_1", "type": "x", "data": {"object": []}}',
        '{"id": "evt_1", "type": "x", "data": "object"}',
        "null",
        '"evt"',
        "NaN",
    ],
    ids=[
        "deep_list",
        "deep_dicts",
        "huge_int",
        "nul_id",
        "long_id",
        "long_type",
        "int_id",
        "object_list",
        "data_str",
        "null",
        "string",
        "nan",
    ],
)
async def test_malformed_envelopes_are_400_and_change_nothing(
    body: str,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    secret: str,
) -> None:
    before = await snapshot(sessions)
    raw = body.encode()
    response = await client.post("/webhooks/stripe", content=raw, headers=_signed_raw(raw, secret))
    assert response.status_code == 400, response.text
    assert response.json() == {"error": "malformed event"}
    assert await snapshot(sessions) == before
    async with sessions.begin() as s:
        assert (await s.execute(select(func.count()).select_from(WebhookEvent))).scalar() == 0


ODD_VALUES: list[object] = [
    None,
    "",
    "999",
    "\x00",
    "x" * 2000,
    -1,
    0,
    2**62,
    2**70,
    1.5,
    True,
    [],
    {},
    [[[[[[[[[[1]]]]]]]]]],
    {"id": "\x00", "data": [1]},
]


@pytest.mark.parametrize("type_", events.EVENT_TYPES)
async def test_any_odd_field_value_gives_200_or_400_and_keeps_the_invariants(
    type_: str,
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    """Every field of the event's object, set to each odd value: never a 500."""
    order_id = await paid_order(gql, client, sessions, secret)
    facts = await facts_of(sessions, order_id)
    template = events.event_for_order(type_, facts)
    statuses: set[int] = set()
    for key in sorted(template["data"]["object"]):
        for value in ODD_VALUES:
            event = json.loads(json.dumps(template))
            event["id"] = f"evt_{uuid.uuid4().hex}"
            event["data"]["object"][key] = value
            response = await deliver(client, event, secret)
            assert response.status_code in (200, 400), (key, value, response.text)
            statuses.add(response.status_code)
    assert 200 in statuses
    await assert_invariants(sessions)
