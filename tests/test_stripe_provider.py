"""The Stripe provider against a local server speaking Stripe's wire format: checkout,
refunds, cancels, errors, idempotency; then the webhook finishing the flows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import stripe
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from typer.testing import CliRunner

from gql_inventory import cli
from gql_inventory.jobs.sweeper import sweep_once
from gql_inventory.models import OrderStatus, Reservation, ReservationStatus
from gql_inventory.payments.base import PaymentRequest, ProviderFailure
from gql_inventory.payments.stripe import StripePaymentProvider
from gql_inventory.services import payment_provider
from gql_inventory.settings import Settings, get_settings
from tests.conftest import GraphQLCaller
from tests.support.catalog import Catalog, make_location, make_product
from tests.support.fake_stripe import (
    API_KEY,
    FakeStripe,
)
from tests.support.invariants import assert_invariants
from tests.support.payments import (
    CANCEL,
    REFUND,
    Stock,
    checkout,
    counts,
    order_row,
    pending_order,
    refunds_of,
    reservation_row,
    reserve_id,
    send,
    stock,
)


async def paid_order(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeStripe,
    secret: str,
    lines: dict[str, int],
) -> uuid.UUID:
    order_id, _ = await pending_order(gql, lines)
    order = await order_row(sessions, order_id)
    assert order.payment_intent_id is not None
    fake.succeed(order.payment_intent_id)
    assert await send(client, sessions, secret, "payment_intent.succeeded", order_id) == "sold"
    return order_id


async def test_settings_pick_the_provider() -> None:
    assert payment_provider(Settings(stripe_api_key=None)).name == "offline"
    chosen = payment_provider(Settings(stripe_api_key="sk_test_x", stripe_api_base="http://x"))
    assert isinstance(chosen, StripePaymentProvider)
    await chosen.aclose()


async def test_checkout_creates_a_payment_intent_and_success_sells(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    fake_stripe: FakeStripe,
    provider: StripePaymentProvider,
    secret: str,
) -> None:
    reservation_id = await reserve_id(gql, {"SHIRT-S": 2, "MUG": 1})
    payload = await checkout(gql, reservation_id)
    assert payload["userErrors"] == []
    order = payload["order"]
    assert order["total"] == {"amount": "59.99", "currencyCode": "USD"}
    (call,) = fake_stripe.calls("/v1/payment_intents")
    assert call.params == {
        "amount": "5999",
        "currency": "usd",
        "automatic_payment_methods": {"enabled": "true"},
        "metadata": {"order_id": order["id"], "reservation_id": reservation_id},
        "receipt_email": "a@b.c",
    }
    assert call.headers["idempotency-key"] == order["id"]
    assert call.headers["content-type"] == "application/x-www-form-urlencoded"
    intent = fake_stripe.payment_intents[order["paymentIntentId"]]
    assert payload["paymentClientSecret"] == intent["client_secret"]

    before = await stock(sessions, "SHIRT-S")
    fake_stripe.succeed(intent["id"])
    order_id = uuid.UUID(order["id"])
    assert await send(client, sessions, secret, "payment_intent.succeeded", order_id) == "sold"
    assert (await order_row(sessions, order_id)).status is OrderStatus.PAID
    after = await stock(sessions, "SHIRT-S")
    assert (after.on_hand, after.reserved) == (before.on_hand - 2, before.reserved - 2)
    assert (await reservation_row(sessions, reservation_id)).status is ReservationStatus.COMPLETED
    await assert_invariants(sessions)


async def test_zero_decimal_currency_goes_in_whole_units(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    fake_stripe: FakeStripe,
    provider: StripePaymentProvider,
    secret: str,
) -> None:
    async with sessions.begin() as session:
        catalog = Catalog()
        catalog.locations["Tokyo"] = await make_location(session, "Tokyo", default=True)
        await make_product(
            session,
            catalog,
            "tenugui",
            "Tenugui",
            [("TENUGUI", "Default Title", 1500, {"Tokyo": 10})],
            currency="JPY",
        )
    payload = await checkout(gql, await reserve_id(gql, {"TENUGUI": 3}))
    assert payload["userErrors"] == []
    assert payload["order"]["total"] == {"amount": "4500", "currencyCode": "JPY"}
    (call,) = fake_stripe.calls("/v1/payment_intents")
    assert (call.params["amount"], call.params["currency"]) == ("4500", "jpy")
    order_id = uuid.UUID(payload["order"]["id"])
    assert await send(client, sessions, secret, "payment_intent.succeeded", order_id) == "sold"
    assert await stock(sessions, "TENUGUI") == Stock(7, 0)
    await assert_invariants(sessions)


async def test_idempotency_key_gives_the_same_payment_intent(
    fake_stripe: FakeStripe, provider: StripePaymentProvider
) -> None:
    request = PaymentRequest(
        order_id=uuid.uuid4(), reservation_id=uuid.uuid4(), amount=1234, currency="EUR", email=None
    )
    # a 500 the client retries, with the same key; then a second checkout of the order
    fake_stripe.fail("create", status=500, type_="api_error", code="", should_retry=None)
    first = await provider.create_payment(request)
    second = await provider.create_payment(request)
    assert first.payment_intent_id == second.payment_intent_id
    assert first.client_secret == second.client_secret
    calls = fake_stripe.calls("/v1/payment_intents")
    assert len(calls) == 3
    assert {c.headers["idempotency-key"] for c in calls} == {str(request.order_id)}
    assert len(fake_stripe.payment_intents) == 1


async def test_stripe_error_at_checkout_changes_nothing(
    gql: GraphQLCaller,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    fake_stripe: FakeStripe,
    provider: StripePaymentProvider,
) -> None:
    reservation_id = await reserve_id(gql, {"MUG": 1})
    fake_stripe.fail(
        "create", status=400, type_="invalid_request_error", code="amount_too_small", message="no"
    )
    payload = await checkout(gql, reservation_id)
    assert payload["order"] is None
    assert [e["code"] for e in payload["userErrors"]] == ["PAYMENT_PROVIDER_ERROR"]
    assert "no" in payload["userErrors"][0]["message"]
    assert await counts(sessions) == (0, 0, 0)
    assert (await reservation_row(sessions, reservation_id)).status is ReservationStatus.ACTIVE
    await assert_invariants(sessions)


async def test_stripe_error_on_refund_changes_nothing(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    fake_stripe: FakeStripe,
    provider: StripePaymentProvider,
    secret: str,
) -> None:
    order_id = await paid_order(gql, client, sessions, fake_stripe, secret, {"MUG": 2})
    before = (await stock(sessions, "MUG"), await counts(sessions))
    fake_stripe.fail("refund")
    body = await gql(REFUND, {"input": {"orderId": str(order_id)}}, admin=True)
    payload = body["data"]["refundOrder"]
    assert payload["order"] is None
    assert [e["code"] for e in payload["userErrors"]] == ["PAYMENT_PROVIDER_ERROR"]
    assert "The charge cannot be refunded." in payload["userErrors"][0]["message"]
    assert (await stock(sessions, "MUG"), await counts(sessions)) == before
    assert (await order_row(sessions, order_id)).status is OrderStatus.PAID
    assert fake_stripe.refunds == {}
    await assert_invariants(sessions)


async def test_refund_order_then_charge_refunded_restocks_once(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    fake_stripe: FakeStripe,
    provider: StripePaymentProvider,
    secret: str,
) -> None:
    initial = await stock(sessions, "MUG")
    order_id = await paid_order(gql, client, sessions, fake_stripe, secret, {"MUG": 3})
    assert (await stock(sessions, "MUG")).on_hand == initial.on_hand - 3

    body = await gql(
        REFUND,
        {"input": {"orderId": str(order_id), "lines": [{"sku": "MUG", "quantity": 1}]}},
        admin=True,
    )
    assert body["data"]["refundOrder"]["userErrors"] == []
    assert body["data"]["refundOrder"]["order"]["status"] == "PARTIALLY_REFUNDED"
    (call,) = fake_stripe.calls("/v1/refunds")
    order = await order_row(sessions, order_id)
    assert call.params == {
        "payment_intent": order.payment_intent_id,
        "amount": "999",
        "metadata": {"order_id": str(order_id)},
    }
    assert call.headers["idempotency-key"] == f"refund:{order_id}:1"
    (refund,) = fake_stripe.refunds.values()
    assert (await stock(sessions, "MUG")).on_hand == initial.on_hand - 2

    # Stripe's events for that refund, each delivered twice: no second restock
    for _ in range(2):
        for type_ in ("refund.created", "charge.refunded", "refund.updated"):
            outcome = await send(client, sessions, secret, type_, order_id, refund_id=refund["id"])
            assert outcome == "recorded"
    assert (await stock(sessions, "MUG")).on_hand == initial.on_hand - 2
    assert (await order_row(sessions, order_id)).status is OrderStatus.PARTIALLY_REFUNDED

    body = await gql(REFUND, {"input": {"orderId": str(order_id)}}, admin=True)
    assert body["data"]["refundOrder"]["order"]["status"] == "REFUNDED"
    assert [c.params["amount"] for c in fake_stripe.calls("/v1/refunds")] == ["999", "1998"]
    assert await send(client, sessions, secret, "charge.refunded", order_id) == "recorded"
    assert (await stock(sessions, "MUG")).on_hand == initial.on_hand
    rows = await refunds_of(sessions, order_id)
    assert sorted(r.provider_refund_id or "" for r in rows) == sorted(fake_stripe.refunds)
    assert all(r.restocked for r in rows)
    await assert_invariants(sessions)


async def test_cancel_after_a_partial_dashboard_refund_refunds_the_rest_and_restocks(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    fake_stripe: FakeStripe,
    provider: StripePaymentProvider,
    secret: str,
) -> None:
    """A partial refund made in the dashboard flags the order; cancelling it then asks
    Stripe for everything not refunded yet (no amount: the lines' value no longer says
    what is left) and puts back every unit not refunded."""
    initial = (await stock(sessions, "MUG"), await stock(sessions, "SHIRT-L"))
    order_id = await paid_order(
        gql, client, sessions, fake_stripe, secret, {"MUG": 2, "SHIRT-L": 1}
    )  # 999 * 2 + 2600 = 4598
    pi = (await order_row(sessions, order_id)).payment_intent_id
    assert pi is not None
    await provider.refund(pi, amount=1000, idempotency_key="dashboard-1")  # made elsewhere
    outcome = await send(client, sessions, secret, "charge.refunded", order_id, amount=1000)
    assert outcome == "needs_attention"

    body = await gql(CANCEL, {"input": {"orderId": str(order_id)}}, admin=True)
    assert body["data"]["cancelOrder"]["userErrors"] == []
    assert body["data"]["cancelOrder"]["order"]["status"] == "CANCELLED"
    last = fake_stripe.calls("/v1/refunds")[-1]
    assert "amount" not in last.params
    assert last.headers["idempotency-key"] == f"cancel:{order_id}"
    assert sorted(r["amount"] for r in fake_stripe.refunds.values()) == [1000, 3598]
    assert (await stock(sessions, "MUG"), await stock(sessions, "SHIRT-L")) == initial
    await assert_invariants(sessions)


async def test_cancel_order_cancels_the_payment_intent(
    gql: GraphQLCaller,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    fake_stripe: FakeStripe,
    provider: StripePaymentProvider,
) -> None:
    order_id, _ = await pending_order(gql, {"MUG": 2})
    pi = (await order_row(sessions, order_id)).payment_intent_id
    body = await gql(CANCEL, {"input": {"orderId": str(order_id)}}, admin=True)
    assert body["data"]["cancelOrder"]["order"]["status"] == "CANCELLED"
    assert [c.path for c in fake_stripe.calls("/cancel")] == [f"/v1/payment_intents/{pi}/cancel"]
    assert fake_stripe.payment_intents[str(pi)]["status"] == "canceled"
    assert await stock(sessions, "MUG") == Stock(50, 0)
    await assert_invariants(sessions)


async def test_cancel_refused_by_stripe_is_a_provider_error(
    gql: GraphQLCaller,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    fake_stripe: FakeStripe,
    provider: StripePaymentProvider,
) -> None:
    order_id, _ = await pending_order(gql, {"MUG": 2})
    pi = str((await order_row(sessions, order_id)).payment_intent_id)
    fake_stripe.succeed(pi)  # paid at Stripe, the event not here yet: cannot cancel
    body = await gql(CANCEL, {"input": {"orderId": str(order_id)}}, admin=True)
    assert [e["code"] for e in body["data"]["cancelOrder"]["userErrors"]] == [
        "PAYMENT_PROVIDER_ERROR"
    ]
    assert (await order_row(sessions, order_id)).status is OrderStatus.PENDING_PAYMENT
    assert (await stock(sessions, "MUG")).reserved == 2
    await assert_invariants(sessions)


async def test_already_canceled_intent_counts_as_canceled(
    fake_stripe: FakeStripe, provider: StripePaymentProvider
) -> None:
    created = await provider.create_payment(
        PaymentRequest(
            order_id=uuid.uuid4(),
            reservation_id=uuid.uuid4(),
            amount=500,
            currency="usd",
            email=None,
        )
    )
    await provider.cancel_payment(created.payment_intent_id)
    fake_stripe.payment_intents[created.payment_intent_id]["status"] = "canceled"
    await provider.cancel_payment(created.payment_intent_id)  # no error
    with pytest.raises(ProviderFailure, match="No such id"):
        await provider.cancel_payment("pi_missing")


async def test_expiry_cancels_the_payment_intent(
    app: Starlette,
    gql: GraphQLCaller,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    fake_stripe: FakeStripe,
    provider: StripePaymentProvider,
) -> None:
    order_id, reservation_id = await pending_order(gql, {"MUG": 2})
    async with sessions.begin() as session:
        await session.execute(
            update(Reservation)
            .where(Reservation.id == uuid.UUID(reservation_id))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    result = await sweep_once(app.state.services)
    assert result.cancelled_orders == [order_id]
    pi = str((await order_row(sessions, order_id)).payment_intent_id)
    assert fake_stripe.payment_intents[pi]["status"] == "canceled"
    assert (await order_row(sessions, order_id)).status is OrderStatus.CANCELLED
    await assert_invariants(sessions)


# ---------------------------------------------------------------- the command line


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch, database_url: str, fake_stripe: FakeStripe
) -> Iterator[None]:
    """The CLI's settings: the test database, Stripe at the fake server."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("STRIPE_API_KEY", API_KEY)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_cli_test_endpoint_secret")
    monkeypatch.setenv("STRIPE_API_BASE", fake_stripe.url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
async def expired_order(
    gql: GraphQLCaller,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    provider: StripePaymentProvider,
) -> tuple[uuid.UUID, str]:
    """A PENDING_PAYMENT order (PaymentIntent at the fake) whose reservation ran out."""
    order_id, reservation_id = await pending_order(gql, {"MUG": 2})
    async with sessions.begin() as session:
        await session.execute(
            update(Reservation)
            .where(Reservation.id == uuid.UUID(reservation_id))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    return order_id, str((await order_row(sessions, order_id)).payment_intent_id)


def test_cli_expire_reservations_cancels_at_stripe(
    expired_order: tuple[uuid.UUID, str], fake_stripe: FakeStripe, cli_env: None
) -> None:
    _, pi = expired_order
    result = CliRunner().invoke(cli.app, ["expire-reservations"])
    assert result.exit_code == 0, result.output
    assert "1 reservation(s) expired, 1 pending order(s) cancelled" in result.output
    assert fake_stripe.payment_intents[pi]["status"] == "canceled"
    assert [c.path for c in fake_stripe.calls("/cancel")] == [f"/v1/payment_intents/{pi}/cancel"]


def test_cli_stripe_event_posts_a_signed_event(
    expired_order: tuple[uuid.UUID, str],
    cli_env: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order_id, pi = expired_order
    posted: list[tuple[str, str, dict[str, str]]] = []

    def post(url: str, *, content: str, headers: dict[str, str], timeout: float) -> httpx.Response:
        posted.append((url, content, headers))
        return httpx.Response(200, json={"received": True, "outcome": "sold"})

    monkeypatch.setattr(httpx, "post", post)
    result = CliRunner().invoke(
        cli.app, ["stripe-event", "payment_intent.succeeded", "--order", str(order_id)]
    )
    assert result.exit_code == 0, result.output
    assert '-> HTTP 200 {"received":true,"outcome":"sold"}' in result.output
    ((url, body, headers),) = posted
    assert url == "http://127.0.0.1:8000/webhooks/stripe"
    secret = get_settings().webhook_secret()
    event = stripe.Webhook.construct_event(body, headers["Stripe-Signature"], secret)
    assert event.type == "payment_intent.succeeded"
    intent = event.data.object
    assert (intent.id, intent.amount, intent.currency) == (pi, 1998, "usd")
    assert intent.metadata["order_id"] == str(order_id)

    bad = CliRunner().invoke(cli.app, ["stripe-event", "invoice.paid", "--order", str(order_id)])
    assert bad.exit_code == 2
    missing = CliRunner().invoke(
        cli.app, ["stripe-event", "charge.refunded", "--order", str(uuid.uuid4())]
    )
    assert missing.exit_code == 1
