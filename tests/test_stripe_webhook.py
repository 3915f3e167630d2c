"""POST /webhooks/stripe: signatures, redeliveries, every ordering of events, late
payments, mismatches, refunds made in the Stripe dashboard, payments in progress."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import stripe
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from gql_inventory.devtools import stripe_events as events
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.models import (
    OrderStatus,
    Reservation,
    ReservationStatus,
    WebhookEvent,
)
from gql_inventory.services import Services
from gql_inventory.stock.expiry import expire_reservations
from tests.conftest import GraphQLCaller
from tests.support.catalog import Catalog
from tests.support.invariants import assert_invariants
from tests.support.payments import (
    ORDER,
    REFUND,
    Stock,
    counts,
    deliver,
    facts_of,
    order_row,
    pending_order,
    refunds_of,
    reservation_row,
    reserve_id,
    send,
    stock,
)


async def expire(sessions: async_sessionmaker[AsyncSession], reservation_id: str) -> None:
    """Let a reservation run out and sweep it (EXPIRY; its pending order CANCELLED)."""
    async with sessions.begin() as session:
        await session.execute(
            update(Reservation)
            .where(Reservation.id == uuid.UUID(reservation_id))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    async with sessions.begin() as session:
        result = await expire_reservations(UnitOfWork(session, actor="system"))
    assert result.expired == [uuid.UUID(reservation_id)]


# ---------------------------------------------------------------- signatures and bodies


def _payload(event: dict[str, object]) -> str:
    return events.encode(event)


async def test_signed_event_is_accepted_and_recorded(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    order_id, _ = await pending_order(gql, {"MUG": 1})
    event = events.event_for_order("payment_intent.succeeded", await facts_of(sessions, order_id))
    response = await deliver(client, event, secret)
    assert response.status_code == 200
    assert response.json() == {"received": True, "id": event["id"], "outcome": "sold"}
    async with sessions.begin() as session:
        stored = (await session.execute(select(WebhookEvent))).scalar_one()
    assert (stored.id, stored.type, stored.outcome) == (event["id"], event["type"], "sold")
    body = await gql(ORDER, {"id": str(order_id)}, admin=True)
    history = body["data"]["order"]["paymentEvents"]
    assert [(e["type"], e["providerEventId"]) for e in history] == [
        ("payment_intent.created", None),
        ("payment_intent.succeeded", event["id"]),
    ]


@pytest.mark.parametrize(
    "case", ["missing", "wrong_secret", "tampered", "stale", "future", "no_v1", "garbage"]
)
async def test_bad_signatures_are_refused_and_change_nothing(
    case: str,
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    order_id, _ = await pending_order(gql, {"MUG": 1})
    event = events.event_for_order("payment_intent.succeeded", await facts_of(sessions, order_id))
    body = _payload(event)
    now = int(time.time())
    header = {
        "missing": None,
        "wrong_secret": events.sign(body, "whsec_someone_else"),
        "tampered": events.sign(body.replace('"amount": 999', '"amount": 1'), secret),
        "stale": events.sign(body, secret, timestamp=now - 301),
        "future": events.sign(body, secret, timestamp=now + 900),  # far past the 300 s
        "no_v1": f"t={now},v0=abc",
        "garbage": "not a header",
    }[case]
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Stripe-Signature"] = header
    before = (await counts(sessions), await stock(sessions, "MUG"))
    response = await client.post("/webhooks/stripe", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid signature"}
    assert (await counts(sessions), await stock(sessions, "MUG")) == before
    assert (await order_row(sessions, order_id)).status is OrderStatus.PENDING_PAYMENT
    await assert_invariants(sessions)


async def test_signatures_within_tolerance_are_accepted(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    order_id, _ = await pending_order(gql, {"MUG": 1})
    facts = await facts_of(sessions, order_id)
    now = int(time.time())
    for timestamp in (now - 250, now + 250):
        event = events.event_for_order("payment_intent.processing", facts)
        response = await deliver(client, event, secret, timestamp=timestamp)
        assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"\xff\xfe\x00",
        b"[1, 2]",
        b'{"id": "evt_1", "object": "event", "type": "payment_intent.succeeded"}',
        b'{"object": "event", "type": "x", "data": {"object": {}}}',
        b'{"id": "evt_2", "object": "event", "type": "payment_intent.succeeded",'
        b' "data": {"object": {"id": "pi_x", "object": "payment_intent"}}}',
    ],
    ids=["json", "utf8", "list", "no_data", "no_id", "no_amount"],
)
async def test_malformed_bodies_are_refused_and_change_nothing(
    body: bytes,
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    order_id, _ = await pending_order(gql, {"MUG": 1})
    if b"pi_x" in body:  # a PaymentIntent of the order, but without its amount
        pi = str((await order_row(sessions, order_id)).payment_intent_id)
        body = body.replace(b"pi_x", pi.encode())
    timestamp = int(time.time())
    # signed exactly as Stripe does: HMAC-SHA256 over "<t>.<raw body>"
    signature = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    before = await counts(sessions)
    response = await client.post(
        "/webhooks/stripe",
        content=body,
        headers={"Stripe-Signature": f"t={timestamp},v1={signature}"},
    )
    assert response.status_code == 400, response.text
    assert await counts(sessions) == before
    assert (await order_row(sessions, order_id)).status is OrderStatus.PENDING_PAYMENT


async def test_unknown_types_and_orders_are_acknowledged(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    order_id, _ = await pending_order(gql, {"MUG": 1})
    facts = await facts_of(sessions, order_id)
    unknown_type = events.envelope("customer.created", {"id": "cus_1", "object": "customer"})
    response = await deliver(client, unknown_type, secret)
    assert (response.status_code, response.json()["outcome"]) == (200, "ignored")
    stranger = events.OrderFacts(
        order_id=uuid.uuid4(),
        reservation_id=None,
        payment_intent_id="pi_not_ours",
        amount=100,
        currency="USD",
    )
    event = events.event_for_order("payment_intent.succeeded", stranger)
    response = await deliver(client, event, secret)
    assert (response.status_code, response.json()["outcome"]) == (200, "order_not_found")
    # the PaymentIntent is ours but the metadata names another order: refuse to act
    forged = events.event_for_order("payment_intent.succeeded", facts)
    forged["data"]["object"]["metadata"]["order_id"] = str(uuid.uuid4())
    response = await deliver(client, forged, secret)
    assert (response.status_code, response.json()["outcome"]) == (200, "order_mismatch")
    # found by metadata, but under another PaymentIntent: refuse too
    other_pi = events.event_for_order(
        "payment_intent.succeeded",
        events.OrderFacts(
            order_id=order_id,
            reservation_id=None,
            payment_intent_id="pi_other",
            amount=facts.amount,
            currency=facts.currency,
        ),
    )
    response = await deliver(client, other_pi, secret)
    assert response.json()["outcome"] == "payment_intent_mismatch"
    assert (await order_row(sessions, order_id)).status is OrderStatus.PENDING_PAYMENT
    assert (await counts(sessions))[0] == 4
    await assert_invariants(sessions)


# ---------------------------------------------------------------- redeliveries


async def test_each_event_delivered_five_times_acts_once(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    initial = await stock(sessions, "MUG")
    order_id, reservation_id = await pending_order(gql, {"MUG": 4})
    facts = await facts_of(sessions, order_id)
    expected = {
        "payment_intent.requires_action": "extended",
        "payment_intent.payment_failed": "recorded",
        "payment_intent.processing": "extended",
        "payment_intent.succeeded": "sold",
        "payment_intent.canceled": "ignored",
        "charge.refunded": "restocked",
    }
    for type_, outcome in expected.items():
        event = events.event_for_order(type_, facts)
        first = await deliver(client, event, secret)
        assert first.json()["outcome"] == outcome, type_
        again = [await deliver(client, event, secret) for _ in range(2)]
        again += await asyncio.gather(*(deliver(client, event, secret) for _ in range(2)))
        assert [(r.status_code, r.json()["outcome"]) for r in again] == [(200, "duplicate")] * 4
        if type_ == "payment_intent.succeeded":
            sold = await stock(sessions, "MUG")
            assert sold == Stock(initial.on_hand - 4, 0)
    assert await stock(sessions, "MUG") == initial
    assert (await order_row(sessions, order_id)).status is OrderStatus.REFUNDED
    assert (await reservation_row(sessions, reservation_id)).status is ReservationStatus.COMPLETED
    webhook_events, payment_events, _ = await counts(sessions)
    assert webhook_events == len(expected)
    assert payment_events == 1 + len(expected)  # checkout + one per event
    await assert_invariants(sessions)


async def test_concurrent_first_deliveries_act_once(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    order_id, _ = await pending_order(gql, {"MUG": 2})
    event = events.event_for_order("payment_intent.succeeded", await facts_of(sessions, order_id))
    responses = await asyncio.gather(*(deliver(client, event, secret) for _ in range(5)))
    assert sorted(r.json()["outcome"] for r in responses) == ["duplicate"] * 4 + ["sold"]
    assert await stock(sessions, "MUG") == Stock(48, 0)
    await assert_invariants(sessions)


# ---------------------------------------------------------------- orderings


@pytest.mark.parametrize(
    "order",
    list(
        itertools.permutations(
            ("payment_intent.succeeded", "charge.refunded", "payment_intent.canceled")
        )
    ),
    ids=lambda p: ">".join(t.split(".")[-1] for t in p),
)
async def test_every_ordering_ends_refunded_with_stock_back(
    order: tuple[str, ...],
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    initial = {sku: await stock(sessions, sku) for sku in ("SHIRT-S", "MUG")}
    order_id, _ = await pending_order(gql, {"SHIRT-S": 11, "MUG": 2})
    facts = await facts_of(sessions, order_id)
    built = [events.event_for_order(type_, facts) for type_ in order]
    for event in built + built:  # and each delivered again at the end
        response = await deliver(client, event, secret)
        assert response.status_code == 200, response.text
        await assert_invariants(sessions)
    row = await order_row(sessions, order_id)
    assert row.status is OrderStatus.REFUNDED
    assert {sku: await stock(sessions, sku) for sku in initial} == initial
    await assert_invariants(sessions)


async def test_racing_events_for_several_orders_end_right(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    initial = {sku: await stock(sessions, sku) for sku in ("SHIRT-S", "SHIRT-L", "MUG")}
    order_ids = [
        (await pending_order(gql, lines))[0]
        for lines in ({"SHIRT-S": 5, "MUG": 1}, {"SHIRT-S": 6, "SHIRT-L": 2}, {"MUG": 3})
    ]
    deliveries = []
    for order_id in order_ids:
        facts = await facts_of(sessions, order_id)
        for type_ in ("payment_intent.succeeded", "charge.refunded", "payment_intent.canceled"):
            event = events.event_for_order(type_, facts)
            deliveries += [event, event]
    responses = await asyncio.gather(*(deliver(client, e, secret) for e in deliveries))
    assert {r.status_code for r in responses} == {200}
    for order_id in order_ids:
        assert (await order_row(sessions, order_id)).status is OrderStatus.REFUNDED
    assert {sku: await stock(sessions, sku) for sku in initial} == initial
    await assert_invariants(sessions)


async def test_cancel_then_success_sells_late(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    order_id, reservation_id = await pending_order(gql, {"MUG": 2})
    assert await send(client, sessions, secret, "payment_intent.canceled", order_id) == "cancelled"
    assert await stock(sessions, "MUG") == Stock(50, 0)
    assert await send(client, sessions, secret, "payment_intent.succeeded", order_id) == (
        "sold_late"
    )
    assert (await order_row(sessions, order_id)).status is OrderStatus.PAID
    assert await stock(sessions, "MUG") == Stock(48, 0)
    assert (await reservation_row(sessions, reservation_id)).status is ReservationStatus.RELEASED
    await assert_invariants(sessions)


# ---------------------------------------------------------------- late payments, mismatches


async def test_success_after_expiry_with_stock_left_sells(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    order_id, reservation_id = await pending_order(gql, {"SHIRT-M": 2})
    await expire(sessions, reservation_id)
    assert (await order_row(sessions, order_id)).status is OrderStatus.CANCELLED
    assert await send(client, sessions, secret, "payment_intent.succeeded", order_id) == (
        "sold_late"
    )
    assert (await order_row(sessions, order_id)).status is OrderStatus.PAID
    assert await stock(sessions, "SHIRT-M") == Stock(1, 0)
    await assert_invariants(sessions)


async def test_success_after_expiry_without_stock_needs_attention(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    order_id, reservation_id = await pending_order(gql, {"SHIRT-M": 2})
    await expire(sessions, reservation_id)
    await reserve_id(gql, {"SHIRT-M": 3})  # someone else takes every unit
    assert await send(client, sessions, secret, "payment_intent.succeeded", order_id) == (
        "needs_attention"
    )
    row = await order_row(sessions, order_id)
    assert row.status is OrderStatus.NEEDS_ATTENTION
    assert row.attention_reason is not None
    assert "not enough stock" in row.attention_reason
    assert await stock(sessions, "SHIRT-M") == Stock(3, 3)  # never below zero
    # the admin refunds it in the Stripe dashboard: nothing was sold, nothing restocks
    assert await send(client, sessions, secret, "charge.refunded", order_id) == "refunded"
    assert (await order_row(sessions, order_id)).status is OrderStatus.REFUNDED
    assert await stock(sessions, "SHIRT-M") == Stock(3, 3)
    await assert_invariants(sessions)


@pytest.mark.parametrize(("amount", "currency"), [(998, None), (None, "EUR")])
async def test_amount_or_currency_mismatch_needs_attention(
    amount: int | None,
    currency: str | None,
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
    body = await gql(ORDER, {"id": str(order_id)}, admin=True)
    order = body["data"]["order"]
    assert order["status"] == "NEEDS_ATTENTION"
    assert "order total 9.99 USD" in order["attentionReason"]
    assert order["paymentEvents"][-1]["type"] == "amount_mismatch"
    assert await stock(sessions, "MUG") == Stock(50, 1)  # nothing sold on a wrong amount
    await assert_invariants(sessions)


# ---------------------------------------------------------------- payment in progress


async def test_processing_extends_the_reservation_up_to_the_cap(
    app: Starlette,
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    services: Services = app.state.services
    order_id, reservation_id = await pending_order(gql, {"MUG": 1})
    before = (await reservation_row(sessions, reservation_id)).expires_at
    assert await send(client, sessions, secret, "payment_intent.processing", order_id) == "extended"
    held = (await reservation_row(sessions, reservation_id)).expires_at
    hold = timedelta(seconds=services.settings.payment_hold_seconds)
    assert before < held <= datetime.now(UTC) + hold
    assert held > datetime.now(UTC) + hold - timedelta(seconds=30)
    # the sweeper leaves it alone past its first expiry
    async with sessions.begin() as session:
        swept = await expire_reservations(
            UnitOfWork(session, actor="system"), now=before + timedelta(seconds=1)
        )
    assert swept.expired == []

    original = services.settings
    services.settings = original.model_copy(
        update={"payment_hold_seconds": 10**6, "payment_hold_max_seconds": 5000}
    )
    try:
        assert (
            await send(client, sessions, secret, "payment_intent.requires_action", order_id)
            == "extended"
        )
        assert (
            await send(client, sessions, secret, "payment_intent.processing", order_id)
            == "unchanged"
        )
    finally:
        services.settings = original
    created = (await order_row(sessions, order_id)).created_at
    capped = (await reservation_row(sessions, reservation_id)).expires_at
    assert capped == created + timedelta(seconds=5000)
    assert await send(client, sessions, secret, "payment_intent.succeeded", order_id) == "sold"
    assert await send(client, sessions, secret, "payment_intent.processing", order_id) == "ignored"
    await assert_invariants(sessions)


async def test_payment_failed_records_the_error_and_keeps_the_stock(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    order_id, reservation_id = await pending_order(gql, {"MUG": 1})
    assert await send(client, sessions, secret, "payment_intent.payment_failed", order_id) == (
        "recorded"
    )
    row = await order_row(sessions, order_id)
    assert row.status is OrderStatus.PENDING_PAYMENT
    assert row.last_payment_error == "generic_decline: Your card was declined."
    assert (await reservation_row(sessions, reservation_id)).status is ReservationStatus.ACTIVE
    assert await stock(sessions, "MUG") == Stock(50, 1)
    assert await send(client, sessions, secret, "payment_intent.succeeded", order_id) == "sold"


# ---------------------------------------------------------------- refunds made in the dashboard


async def test_dashboard_partial_refund_flags_then_full_refund_restocks(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    order_id, _ = await pending_order(gql, {"MUG": 2, "SHIRT-L": 1})  # 999 * 2 + 2600
    assert await send(client, sessions, secret, "payment_intent.succeeded", order_id) == "sold"
    sold = (await stock(sessions, "MUG"), await stock(sessions, "SHIRT-L"))
    # a partial refund in the dashboard: charge.refunded first, then refund.created
    assert (
        await send(client, sessions, secret, "charge.refunded", order_id, amount=1000)
        == "needs_attention"
    )
    row = await order_row(sessions, order_id)
    assert row.status is OrderStatus.NEEDS_ATTENTION
    assert row.attention_reason is not None
    assert row.attention_reason.startswith("10.00 USD")
    assert (await stock(sessions, "MUG"), await stock(sessions, "SHIRT-L")) == sold
    outcome = await send(
        client, sessions, secret, "refund.created", order_id, refund_id="re_dash_1", amount=1000
    )
    assert outcome == "needs_attention"
    refunds = {
        (r.source, r.provider_refund_id): r.amount for r in await refunds_of(sessions, order_id)
    }
    assert refunds == {("UNATTRIBUTED", None): 0, ("DASHBOARD", "re_dash_1"): 1000}
    # the rest refunded in the dashboard: refund.created first this time
    outcome = await send(
        client, sessions, secret, "refund.created", order_id, refund_id="re_dash_2", amount=3598
    )
    assert outcome == "restocked"
    assert await send(client, sessions, secret, "charge.refunded", order_id, amount=4598) == (
        "recorded"
    )
    assert (await order_row(sessions, order_id)).status is OrderStatus.REFUNDED
    assert (await stock(sessions, "MUG"), await stock(sessions, "SHIRT-L")) == (
        Stock(50, 0),
        Stock(20, 0),
    )
    await assert_invariants(sessions)


async def test_dashboard_full_refund_after_our_partial_refund(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    order_id, _ = await pending_order(gql, {"MUG": 3})
    assert await send(client, sessions, secret, "payment_intent.succeeded", order_id) == "sold"
    body = await gql(
        REFUND,
        {
            "input": {
                "orderId": str(order_id),
                "lines": [{"sku": "MUG", "quantity": 1}],
                "restock": False,  # damaged: the admin keeps it out of stock
            }
        },
        admin=True,
    )
    assert body["data"]["refundOrder"]["order"]["status"] == "PARTIALLY_REFUNDED"
    assert await stock(sessions, "MUG") == Stock(47, 0)
    # the offline refund, then the rest in the dashboard, as Stripe reports it
    assert await send(client, sessions, secret, "charge.refunded", order_id) == "recorded"
    assert (
        await send(client, sessions, secret, "charge.refunded", order_id, amount=2997)
        == "restocked"
    )
    assert await stock(sessions, "MUG") == Stock(49, 0)  # the damaged unit stays out
    assert (await order_row(sessions, order_id)).status is OrderStatus.REFUNDED
    await assert_invariants(sessions)


async def test_refund_failure_is_recorded_and_stock_stays(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    order_id, _ = await pending_order(gql, {"MUG": 1})
    assert await send(client, sessions, secret, "payment_intent.succeeded", order_id) == "sold"
    body = await gql(REFUND, {"input": {"orderId": str(order_id)}}, admin=True)
    assert body["data"]["refundOrder"]["order"]["status"] == "REFUNDED"
    assert await send(client, sessions, secret, "refund.failed", order_id) == "refund_failed"
    (refund,) = await refunds_of(sessions, order_id)
    assert refund.status == "failed"
    assert await stock(sessions, "MUG") == Stock(50, 0)
    history = (await gql(ORDER, {"id": str(order_id)}, admin=True))["data"]["order"]
    assert history["paymentEvents"][-1]["type"] == "refund.failed"
    assert "restocked and stay so" in history["paymentEvents"][-1]["detail"]
    await assert_invariants(sessions)


def test_event_payloads_parse_as_stripe_objects() -> None:
    """The events the CLI and tests send are what the stripe library reads back."""
    facts = events.OrderFacts(
        order_id=uuid.uuid4(),
        reservation_id=uuid.uuid4(),
        payment_intent_id="pi_123",
        amount=4200,
        currency="EUR",
    )
    for type_ in events.EVENT_TYPES:
        body, headers = events.signed(events.event_for_order(type_, facts), "whsec_test")
        event = stripe.Webhook.construct_event(body, headers["Stripe-Signature"], "whsec_test")
        assert event.type == type_
        assert json.loads(body)["data"]["object"]["object"] in (
            "payment_intent",
            "charge",
            "refund",
        )
    with pytest.raises(ValueError, match="unsupported"):
        events.event_for_order("invoice.paid", facts)
