"""The pending-payment check (`check-pending-payments`, and the app's timer): a payment
whose webhook never came is applied as the webhook would, once, even when the webhook
then arrives, against the local Stripe-shaped server."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import structlog
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from typer.testing import CliRunner, Result

from gql_inventory import cli
from gql_inventory.jobs.payment_check import (
    PAYMENT_CHECK_LOCK_KEY,
    check_pending_payments,
    payment_checker,
)
from gql_inventory.jobs.sweeper import sweep_once
from gql_inventory.models import (
    OrderStatus,
    PaymentEvent,
    Reservation,
    ReservationStatus,
    StockMovement,
)
from gql_inventory.payments.offline import OfflinePaymentProvider
from gql_inventory.payments.stripe import StripePaymentProvider
from gql_inventory.services import Services
from gql_inventory.settings import get_settings
from tests.conftest import GraphQLCaller
from tests.support.catalog import Catalog
from tests.support.fake_stripe import (
    API_KEY,
    FakeStripe,
)
from tests.support.invariants import assert_invariants
from tests.support.payments import (
    Stock,
    order_row,
    pending_order,
    reservation_row,
    send,
    stock,
)

NOW = timedelta(0)


@pytest.fixture
def services(app: Starlette) -> Services:
    made: Services = app.state.services
    return made


async def intent_of(sessions: async_sessionmaker[AsyncSession], order_id: uuid.UUID) -> str:
    pi = (await order_row(sessions, order_id)).payment_intent_id
    assert pi is not None
    return pi


async def sales_of(sessions: async_sessionmaker[AsyncSession], order_id: uuid.UUID) -> int:
    """Units sold for the order according to the ledger (SALE rows)."""
    async with sessions.begin() as session:
        total = (
            await session.execute(
                select(func.coalesce(func.sum(-StockMovement.on_hand_delta), 0)).where(
                    StockMovement.kind == "SALE", StockMovement.reference == f"order:{order_id}"
                )
            )
        ).scalar_one()
    return int(total)


async def event_types(sessions: async_sessionmaker[AsyncSession], order_id: uuid.UUID) -> list[str]:
    async with sessions.begin() as session:
        rows = await session.execute(
            select(PaymentEvent.type)
            .where(PaymentEvent.order_id == order_id)
            .order_by(PaymentEvent.id)
        )
        return [r[0] for r in rows]


async def test_a_paid_order_whose_webhook_never_came_is_sold_once(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    fake_stripe: FakeStripe,
    provider: StripePaymentProvider,
    services: Services,
    secret: str,
) -> None:
    order_id, reservation_id = await pending_order(gql, {"MUG": 2})
    fake_stripe.succeed(await intent_of(sessions, order_id))  # paid; the webhook is lost

    result = await check_pending_payments(services, min_age=NOW)

    assert [(c.order_id, c.provider_status, c.outcome) for c in result.checked] == [
        (order_id, "succeeded", "sold")
    ]
    assert (await order_row(sessions, order_id)).status is OrderStatus.PAID
    assert (await reservation_row(sessions, reservation_id)).status is ReservationStatus.COMPLETED
    assert await stock(sessions, "MUG") == Stock(on_hand=48, reserved=0)
    # The webhook arrives after all: recorded, nothing sold twice.
    assert await send(client, sessions, secret, "payment_intent.succeeded", order_id) == (
        "already_paid"
    )
    assert await sales_of(sessions, order_id) == 2
    assert await stock(sessions, "MUG") == Stock(on_hand=48, reserved=0)
    assert (await event_types(sessions, order_id)).count("payment_intent.succeeded") == 2
    # A second check finds nothing pending.
    assert (await check_pending_payments(services, min_age=NOW)).checked == []
    await assert_invariants(sessions)


async def test_only_orders_pending_long_enough_are_checked(
    gql: GraphQLCaller,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    fake_stripe: FakeStripe,
    provider: StripePaymentProvider,
    services: Services,
) -> None:
    old, _ = await pending_order(gql, {"MUG": 1})
    young, _ = await pending_order(gql, {"SHIRT-S": 1})
    for order_id in (old, young):
        fake_stripe.succeed(await intent_of(sessions, order_id))
    async with sessions.begin() as session:
        await session.execute(
            text("UPDATE orders SET created_at = now() - interval '11 minutes' WHERE id = :id"),
            {"id": old},
        )
    result = await check_pending_payments(services, min_age=timedelta(minutes=10))
    assert [c.order_id for c in result.checked] == [old]
    assert (await order_row(sessions, old)).status is OrderStatus.PAID
    assert (await order_row(sessions, young)).status is OrderStatus.PENDING_PAYMENT
    await assert_invariants(sessions)


async def test_each_provider_state_is_applied_as_the_webhook_would(
    gql: GraphQLCaller,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    fake_stripe: FakeStripe,
    provider: StripePaymentProvider,
    services: Services,
) -> None:
    canceled, canceled_rid = await pending_order(gql, {"MUG": 1})
    processing, processing_rid = await pending_order(gql, {"SHIRT-S": 1})
    unpaid, _ = await pending_order(gql, {"SHIRT-M": 1})
    fake_stripe.payment_intents[await intent_of(sessions, canceled)]["status"] = "canceled"
    fake_stripe.payment_intents[await intent_of(sessions, processing)]["status"] = "processing"
    held_before = (await reservation_row(sessions, processing_rid)).expires_at
    unpaid_events = await event_types(sessions, unpaid)

    result = await check_pending_payments(services, min_age=NOW)

    outcomes = {c.order_id: (c.provider_status, c.outcome) for c in result.checked}
    assert outcomes == {
        canceled: ("canceled", "cancelled"),
        processing: ("processing", "extended"),
        unpaid: ("requires_payment_method", "still_pending"),
    }
    assert (await order_row(sessions, canceled)).status is OrderStatus.CANCELLED
    assert (await reservation_row(sessions, canceled_rid)).status is ReservationStatus.RELEASED
    assert await stock(sessions, "MUG") == Stock(on_hand=50, reserved=0)
    assert (await reservation_row(sessions, processing_rid)).expires_at > held_before
    assert (await order_row(sessions, processing)).status is OrderStatus.PENDING_PAYMENT
    # Still unpaid: nothing changes, nothing recorded.
    assert (await order_row(sessions, unpaid)).status is OrderStatus.PENDING_PAYMENT
    assert await event_types(sessions, unpaid) == unpaid_events
    await assert_invariants(sessions)


async def test_a_payment_that_succeeded_as_its_reservation_expired_is_not_stranded(
    gql: GraphQLCaller,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    fake_stripe: FakeStripe,
    provider: StripePaymentProvider,
    services: Services,
) -> None:
    """The sweeper cancels the order, Stripe refuses to cancel a succeeded payment, the
    webhook is lost: the check finds the money and sells from the stock left."""
    order_id, reservation_id = await pending_order(gql, {"MUG": 3})
    fake_stripe.succeed(await intent_of(sessions, order_id))
    async with sessions.begin() as session:
        await session.execute(
            update(Reservation)
            .where(Reservation.id == uuid.UUID(reservation_id))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    swept = await sweep_once(services)
    assert swept.cancelled_orders == [order_id]
    assert "payment_intent.cancel_failed" in await event_types(sessions, order_id)
    assert await stock(sessions, "MUG") == Stock(on_hand=50, reserved=0)

    result = await check_pending_payments(services, min_age=timedelta(days=1))
    assert [(c.order_id, c.outcome) for c in result.checked] == [(order_id, "sold_late")]
    assert (await order_row(sessions, order_id)).status is OrderStatus.PAID
    assert await stock(sessions, "MUG") == Stock(on_hand=47, reserved=0)
    assert (await check_pending_payments(services, min_age=NOW)).checked == []
    await assert_invariants(sessions)


async def test_a_cancelled_order_whose_payment_was_canceled_is_checked_no_more(
    gql: GraphQLCaller,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    fake_stripe: FakeStripe,
    provider: StripePaymentProvider,
    services: Services,
) -> None:
    order_id, reservation_id = await pending_order(gql, {"MUG": 1})
    pi = await intent_of(sessions, order_id)
    fake_stripe.fail("cancel", status=500, type_="api_error", code="x", message="down", times=9)
    async with sessions.begin() as session:
        await session.execute(
            update(Reservation)
            .where(Reservation.id == uuid.UUID(reservation_id))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    await sweep_once(services)
    assert "payment_intent.cancel_failed" in await event_types(sessions, order_id)
    fake_stripe._failures.clear()
    # Still unpaid at Stripe: the cancel is retried, then confirmed by the next check.
    first = await check_pending_payments(services, min_age=NOW)
    assert [c.outcome for c in first.checked] == ["cancel_retried"]
    assert fake_stripe.payment_intents[pi]["status"] == "canceled"
    second = await check_pending_payments(services, min_age=NOW)
    assert [c.outcome for c in second.checked] == ["cancel_confirmed"]
    assert (await check_pending_payments(services, min_age=NOW)).checked == []
    assert (await order_row(sessions, order_id)).status is OrderStatus.CANCELLED
    await assert_invariants(sessions)


async def test_a_provider_error_on_one_order_does_not_stop_the_others(
    gql: GraphQLCaller,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    fake_stripe: FakeStripe,
    provider: StripePaymentProvider,
    services: Services,
) -> None:
    lost, _ = await pending_order(gql, {"MUG": 1})
    paid, _ = await pending_order(gql, {"SHIRT-S": 1})
    del fake_stripe.payment_intents[await intent_of(sessions, lost)]  # Stripe answers 404
    fake_stripe.succeed(await intent_of(sessions, paid))
    result = await check_pending_payments(services, min_age=NOW)
    by_order = {c.order_id: c for c in result.checked}
    assert by_order[lost].outcome == "error"
    assert by_order[lost].error is not None
    assert "No such id" in by_order[lost].error
    assert [c.order_id for c in result.failed] == [lost]
    assert by_order[paid].outcome == "sold"
    assert (await order_row(sessions, lost)).status is OrderStatus.PENDING_PAYMENT
    await assert_invariants(sessions)


async def test_one_check_at_a_time(
    gql: GraphQLCaller,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    fake_stripe: FakeStripe,
    provider: StripePaymentProvider,
    services: Services,
) -> None:
    order_id, _ = await pending_order(gql, {"MUG": 1})
    fake_stripe.succeed(await intent_of(sessions, order_id))
    async with services.engine.connect() as other:  # another process's check holds the lock
        await other.execute(text("SELECT pg_advisory_lock(:k)"), {"k": PAYMENT_CHECK_LOCK_KEY})
        await other.commit()
        try:
            skipped = await check_pending_payments(services, min_age=NOW)
        finally:
            await other.execute(
                text("SELECT pg_advisory_unlock(:k)"), {"k": PAYMENT_CHECK_LOCK_KEY}
            )
            await other.commit()
    assert skipped.skipped_lock
    assert skipped.checked == []
    assert (await order_row(sessions, order_id)).status is OrderStatus.PENDING_PAYMENT
    assert [c.outcome for c in (await check_pending_payments(services, min_age=NOW)).checked] == [
        "sold"
    ]


@pytest.mark.parametrize("webhook_first", [False, True])
async def test_check_and_webhook_race_sell_each_unit_once(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    fake_stripe: FakeStripe,
    provider: StripePaymentProvider,
    services: Services,
    secret: str,
    webhook_first: bool,
) -> None:
    """The check and the late webhook for the same PaymentIntent at once, many rounds:
    the database shows every order sold exactly once."""
    rng = random.Random(int(webhook_first))
    orders: list[uuid.UUID] = []
    outcomes: list[tuple[str, str]] = []

    async def late_webhook(order_id: uuid.UUID) -> str:
        await asyncio.sleep(rng.uniform(0, 0.02))  # spreads who reaches the order's lock first
        return await send(client, sessions, secret, "payment_intent.succeeded", order_id)

    for _ in range(12):
        order_id, _ = await pending_order(gql, {"MUG": 1, "SHIRT-S": 1})
        orders.append(order_id)
        fake_stripe.succeed(await intent_of(sessions, order_id))
        check = check_pending_payments(services, min_age=NOW)
        hook = late_webhook(order_id)
        if webhook_first:
            hooked, checked = await asyncio.gather(hook, check)
        else:
            checked, hooked = await asyncio.gather(check, hook)
        check_outcomes = [c.outcome for c in checked.checked if c.order_id == order_id]
        outcomes.append((hooked, check_outcomes[0] if check_outcomes else "-"))
    for order_id, (hooked, checked) in zip(orders, outcomes, strict=True):
        assert sorted([hooked, checked]) in (["already_paid", "sold"], ["-", "sold"]), outcomes
        assert await sales_of(sessions, order_id) == 2
        assert (await order_row(sessions, order_id)).status is OrderStatus.PAID
    assert await stock(sessions, "MUG") == Stock(on_hand=50 - 12, reserved=0)
    assert await stock(sessions, "SHIRT-S") == Stock(on_hand=12 - 12, reserved=0)
    await assert_invariants(sessions)
    print(f"\nrace outcomes (webhook, check): {outcomes}")


async def test_the_app_timer_applies_a_lost_payment(
    gql: GraphQLCaller,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    fake_stripe: FakeStripe,
    provider: StripePaymentProvider,
    services: Services,
) -> None:
    order_id, _ = await pending_order(gql, {"MUG": 1})
    fake_stripe.succeed(await intent_of(sessions, order_id))
    async with payment_checker(services, 0.05, NOW):
        async with asyncio.timeout(30):  # a hang guard, not a timing assertion
            while True:
                if (await order_row(sessions, order_id)).status is OrderStatus.PAID:
                    break
                await asyncio.sleep(0.05)
    assert await sales_of(sessions, order_id) == 1
    await assert_invariants(sessions)


# ---------------------------------------------------------------- the command line


async def run_cli(*args: str) -> Result:
    """The command line, in a thread (it runs its own event loop)."""
    return await asyncio.to_thread(CliRunner().invoke, cli.app, list(args))


@pytest.fixture
def stripe_env(
    monkeypatch: pytest.MonkeyPatch, database_url: str, fake_stripe: FakeStripe
) -> Iterator[None]:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("STRIPE_API_KEY", API_KEY)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_cli_test_endpoint_secret")
    monkeypatch.setenv("STRIPE_API_BASE", fake_stripe.url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def offline_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[None]:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def test_cli_dry_run_prints_then_the_run_applies(
    gql: GraphQLCaller,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    fake_stripe: FakeStripe,
    provider: StripePaymentProvider,
    stripe_env: None,
) -> None:
    order_id, _ = await pending_order(gql, {"MUG": 2})
    pi = await intent_of(sessions, order_id)
    fake_stripe.succeed(pi)
    dry = await run_cli("check-pending-payments", "--older-than-minutes", "0", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"{order_id} {pi} succeeded -> would apply payment_intent.succeeded" in dry.output
    assert "nothing changed (--dry-run)" in dry.output
    assert (await order_row(sessions, order_id)).status is OrderStatus.PENDING_PAYMENT
    assert await stock(sessions, "MUG") == Stock(on_hand=50, reserved=2)

    later = await run_cli("check-pending-payments", "--older-than-minutes", "60")
    assert later.exit_code == 0, later.output
    assert "0 pending order(s) checked" in later.output
    run = await run_cli("check-pending-payments", "--older-than-minutes", "0")
    assert run.exit_code == 0, run.output
    assert f"{order_id} {pi} succeeded -> sold" in run.output
    assert await stock(sessions, "MUG") == Stock(on_hand=48, reserved=0)
    await assert_invariants(sessions)


async def test_cli_offline_reports_and_changes_nothing(
    gql: GraphQLCaller,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    services: Services,
    offline_env: None,
) -> None:
    assert isinstance(services.payments, OfflinePaymentProvider)
    order_id, _ = await pending_order(gql, {"MUG": 2})
    before = await event_types(sessions, order_id)
    result = await run_cli("check-pending-payments", "--older-than-minutes", "0")
    assert result.exit_code == 0, result.output
    assert str(order_id) in result.output
    assert "offline: nothing changed" in result.output
    assert (await order_row(sessions, order_id)).status is OrderStatus.PENDING_PAYMENT
    assert await event_types(sessions, order_id) == before
    assert await stock(sessions, "MUG") == Stock(on_hand=50, reserved=2)


async def test_cli_offline_log_and_summary_agree_nothing_changed(
    gql: GraphQLCaller,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    services: Services,
    offline_env: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 15 item 5: offline, the check logged ``changed=1`` beside a summary saying
    nothing changed. The log's `changed` and the summary's count are one figure."""
    from gql_inventory.jobs import payment_check

    capture = structlog.testing.LogCapture()  # the module's logger is cached: swap it
    monkeypatch.setattr(payment_check, "log", structlog.wrap_logger(None, [capture]))
    await pending_order(gql, {"MUG": 2})

    result = await run_cli("check-pending-payments", "--older-than-minutes", "0")

    assert result.exit_code == 0, result.output
    [logged] = [e for e in capture.entries if e["event"] == "payments.checked"]
    assert (logged["checked"], logged["changed"], logged["offline"]) == (1, 0, True)
    assert "1 pending order(s) checked, 0 changed, 0 failed; offline" in result.output
    assert await stock(sessions, "MUG") == Stock(on_hand=50, reserved=2)
