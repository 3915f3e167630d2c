"""Issue 17 end to end: real use cases write the outbox in their transactions, the app's
delivery worker sends each message once to a receiver that verifies it with
`standardwebhooks.Webhook(secret).verify`, and the buyer's e-mail reaches a real SMTP
server (aiosmtpd) with the order's decimal total."""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook

from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.orders import checkout, payment_outcomes
from gql_inventory.outbound.worker import delivery_worker
from gql_inventory.payments import OfflinePaymentProvider
from gql_inventory.reserving.front import reserve_stock
from gql_inventory.services import Services
from gql_inventory.settings import Settings
from gql_inventory.stock import adjust
from gql_inventory.stock.adjust import AdjustmentReason
from gql_inventory.stock.levels import LineRequest
from gql_inventory.uow import run_in_transaction
from tests.support.catalog import Catalog
from tests.support.live import eventually
from tests.support.outbox import delivery_settings, make_endpoint, outbox_rows
from tests.support.receivers import Receiver
from tests.support.smtp import SmtpServer, running_smtp

Sessions = async_sessionmaker[AsyncSession]
BUYER = "buyer@example.com"
PROVIDER = OfflinePaymentProvider()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver().running() as running:
        yield running


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with running_smtp() as server:
        yield server


@contextlib.asynccontextmanager
async def app_services(settings: Settings, database_url: str) -> AsyncIterator[Services]:
    services = Services.create(settings, database_url, live_events=False)
    try:
        yield services
    finally:
        await services.close()


async def test_each_change_reaches_a_verifying_receiver_once_and_the_buyer_by_mail(
    sessions: Sessions,
    engine: AsyncEngine,
    database_url: str,
    catalog: Catalog,
    receiver: Receiver,
    smtp: SmtpServer,
) -> None:
    settings = delivery_settings(smtp_url=smtp.url)
    _, secret = await make_endpoint(sessions, settings, receiver.url("/hooks"))
    async with app_services(settings, database_url) as services:
        reserved = await reserve_stock(
            services,
            [LineRequest("MUG", 3)],
            ttl_seconds=None,
            idempotency_key=None,
            actor="storefront",
        )

        async def order(uow: UnitOfWork) -> uuid.UUID:
            made = await checkout.checkout(uow, reserved.id, provider=PROVIDER, email=BUYER)
            return made.order_id

        order_id = await run_in_transaction(services, order, actor="storefront")

        async def fail(uow: UnitOfWork) -> None:
            await payment_outcomes.payment_failed(uow, order_id, error="card_declined: no")

        await run_in_transaction(services, fail, actor="stripe")

        async def receive(uow: UnitOfWork) -> None:
            await adjust.adjust_stock(
                uow, sku="MUG", location_id=None, delta=5, reason=AdjustmentReason.RECEIVED
            )

        await run_in_transaction(services, receive, actor="admin:test")

        async with delivery_worker(services):

            async def all_sent() -> bool:
                return all(r.status == "SUCCEEDED" for r in (await outbox_rows(engine)).values())

            await eventually(all_sent, what="every outbox message delivered")

    rows = await outbox_rows(engine)
    webhooks = {i: r for i, r in rows.items() if r.channel == "WEBHOOK"}
    # the reserve (one level), the receipt (one level), the failed payment
    assert Counter(r.topic for r in webhooks.values()) == Counter(
        {"INVENTORY_LEVEL_UPDATED": 2, "PAYMENT_FAILED": 1}
    )
    received = receiver.to("/hooks")
    assert sorted(r.headers["webhook-id"] for r in received) == sorted(webhooks)  # once each
    for request in received:
        Webhook(secret).verify(request.body, request.headers)
        assert request.body.decode() == webhooks[request.headers["webhook-id"]].payload
    failed = orjson.loads(next(r.payload for r in webhooks.values() if r.topic == "PAYMENT_FAILED"))
    assert failed["type"] == "payment.failed"
    assert failed["data"]["total"] == {"amount": "29.97", "currencyCode": "USD"}

    (mail,) = smtp.received
    assert mail.rcpt_tos == [BUYER]
    assert "29.97" in mail.part("plain")
    assert "29.97" in mail.part("html")
