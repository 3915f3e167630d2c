"""The typed unit of work: what a transaction will announce after its commit is data on
the `UnitOfWork` the domain receives, and `run_in_transaction` publishes exactly that,
only after the commit. Domain refusals name their input in domain terms; the GraphQL
layer turns that into the paths clients see."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.domain.errors import (
    DomainError,
    ErrorCode,
    argument,
    in_input,
)
from gql_inventory.domain.shortages import (
    InsufficientStock,
)
from gql_inventory.domain.uow import PaymentCancel, UnitOfWork
from gql_inventory.models import MovementKind, Order
from gql_inventory.orders import checkout
from gql_inventory.payments import OfflinePaymentProvider
from gql_inventory.schema.payloads import graphql_path, user_errors
from gql_inventory.services import Services
from gql_inventory.settings import Settings
from gql_inventory.stock import reservations
from gql_inventory.stock.levels import LineRequest
from gql_inventory.stock.reservations import ReservationLimits
from gql_inventory.uow import run_in_transaction
from tests.support.catalog import Catalog
from tests.support.sinks import RecordingSink

LIMITS = ReservationLimits(default_ttl_seconds=900, max_ttl_seconds=7200, max_lines=10)


@pytest.fixture
async def services(settings: Settings, database_url: str) -> AsyncIterator[Services]:
    made = Services.create(settings, database_url)
    made.events = RecordingSink()
    yield made
    await made.close()


async def test_the_unit_of_work_lists_what_the_transaction_will_announce(
    sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    async with sessions.begin() as session:
        uow = UnitOfWork(session, actor="system")
        rid = await reservations.reserve(uow, [LineRequest("MUG", 3)], limits=LIMITS)
        assert [(m.kind, m.reserved_delta) for m in uow.movements] == [
            (MovementKind.RESERVATION, 3)
        ]
        assert uow.orders_changed == []
        assert uow.payment_cancels == []
        assert uow.attention == []

    async with sessions.begin() as session:
        uow = UnitOfWork(session, actor="system")
        made = await checkout.checkout(uow, rid, provider=OfflinePaymentProvider())
        assert uow.orders_changed == [made.order_id]  # a new order is announced (ordersChanged)
    async with sessions.begin() as session:
        uow = UnitOfWork(session, actor="system")
        await reservations.release_reservation(uow, rid)
        order = (await session.execute(select(Order).where(Order.id == made.order_id))).scalar_one()
        assert [(m.kind, m.reserved_delta) for m in uow.movements] == [(MovementKind.RELEASE, -3)]
        assert uow.orders_changed == [made.order_id]
        expected = [PaymentCancel(made.order_id, order.payment_intent_id)]
        assert uow.payment_cancels == (expected if order.payment_intent_id else [])


async def test_rewind_forgets_what_a_rolled_back_savepoint_added(
    sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    async with sessions.begin() as session:
        uow = UnitOfWork(session, actor="system")
        await reservations.reserve(uow, [LineRequest("MUG", 1)], limits=LIMITS)
        mark = uow.mark()
        savepoint = await session.begin_nested()
        await reservations.reserve(uow, [LineRequest("MUG", 2)], limits=LIMITS)
        assert len(uow.movements) == 2
        await savepoint.rollback()
        uow.rewind(mark)
        assert [m.reserved_delta for m in uow.movements] == [1]


async def test_run_in_transaction_publishes_the_unit_of_work_after_commit_only(
    services: Services, catalog: Catalog
) -> None:
    sink = services.events
    assert isinstance(sink, RecordingSink)
    seen: list[UnitOfWork] = []

    async def reserve(uow: UnitOfWork) -> uuid.UUID:
        seen.append(uow)
        return await reservations.reserve(uow, [LineRequest("MUG", 2)], limits=LIMITS)

    await run_in_transaction(services, reserve, actor="storefront")
    assert sink.movements == seen[0].movements
    assert [m.reserved_delta for m in sink.movements] == [2]

    with pytest.raises(InsufficientStock):
        await run_in_transaction(
            services,
            lambda uow: reservations.reserve(uow, [LineRequest("MUG", 999)], limits=LIMITS),
            actor="storefront",
        )
    assert [m.reserved_delta for m in sink.movements] == [2]  # the refusal announced nothing


def test_domain_field_paths_become_the_graphql_paths_clients_get() -> None:
    assert graphql_path(in_input("lines", 2, "quantity")) == ["input", "lines", "2", "quantity"]
    assert graphql_path(in_input("expected_on_hand")) == ["input", "expectedOnHand"]
    assert graphql_path(in_input("idempotency_key")) == ["input", "idempotencyKey"]
    assert graphql_path(argument("reservation_id")) == ["reservationId"]
    assert graphql_path(in_input("lines") / 0 / "sku") == ["input", "lines", "0", "sku"]
    assert graphql_path(None) is None


def test_user_errors_map_the_domain_code_and_path() -> None:
    error = DomainError("nope", field=in_input("ttl_seconds"))
    (user_error,) = user_errors(error)
    assert error.code is ErrorCode.INVALID_INPUT
    assert user_error.code.value == "INVALID_INPUT"
    assert user_error.field == ["input", "ttlSeconds"]
