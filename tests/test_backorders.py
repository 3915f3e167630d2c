"""Backorders and preorders (issue 16 item 4, ADR 0018): a CONTINUE variant sells past zero
up to its `backorder_limit`; receipts fill paid orders' waiting units, oldest paid first;
a DENY variant behaves as before. Domain calls on the real PostgreSQL; races over many
real connections, invariants read back from the database."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gql_inventory.domain.shortages import (
    InsufficientStock,
)
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.live.alerts import AlertTracker, LowStockState
from gql_inventory.live.relay import assign_positions
from gql_inventory.live.wire import StockEvent
from gql_inventory.orders import checkout, payment_outcomes, refunds
from gql_inventory.payments.offline import OfflinePaymentProvider
from gql_inventory.stock import adjust, reservations, transfers
from gql_inventory.stock.adjust import AdjustmentReason
from gql_inventory.stock.levels import LineRequest
from gql_inventory.stock.reservations import ReservationLimits
from tests.support.catalog import Catalog, make_location, make_product
from tests.support.invariants import assert_invariants
from tests.support.scenarios import (
    assert_only,
    fetch_all,
    fetch_one,
    levels_of,
    run_concurrently,
    tally,
)

Sessions = async_sessionmaker[AsyncSession]
LIMITS = ReservationLimits()
PROVIDER = OfflinePaymentProvider()


@pytest.fixture
async def catalog(sessions: Sessions) -> Catalog:
    """Two locations, Main (drawn from first) and Store; no products."""
    catalog = Catalog()
    async with sessions.begin() as session:
        catalog.locations["Main"] = await make_location(session, "Main", priority=10, default=True)
        catalog.locations["Store"] = await make_location(session, "Store", priority=20)
    return catalog


async def add_sku(
    sessions: Sessions,
    catalog: Catalog,
    sku: str,
    stock: dict[str, int],
    *,
    policy: str = "DENY",
    limit: int | None = None,
) -> None:
    """One product with one variant `sku`, received as `stock`, with its inventory policy
    set as an admin would (SQL on `variants`: the policy mutation is another slice's)."""
    async with sessions.begin() as session:
        await make_product(session, catalog, sku.lower(), sku, [(sku, "Default Title", 500, stock)])
        await session.execute(
            text("UPDATE variants SET inventory_policy = :p, backorder_limit = :l WHERE sku = :s"),
            {"p": policy, "l": limit, "s": sku},
        )


def uow(session: AsyncSession) -> UnitOfWork:
    return UnitOfWork(session, actor="system")


async def reserve(sessions: Sessions, sku: str, quantity: int) -> uuid.UUID:
    async with sessions.begin() as session:
        return await reservations.reserve(uow(session), [LineRequest(sku, quantity)], limits=LIMITS)


async def paid_order(sessions: Sessions, sku: str, quantity: int) -> uuid.UUID:
    """Reserve, check out and pay `quantity` units of `sku`: the order's id."""
    rid = await reserve(sessions, sku, quantity)
    async with sessions.begin() as session:
        order_id = (await checkout.checkout(uow(session), rid, provider=PROVIDER)).order_id
    async with sessions.begin() as session:
        await payment_outcomes.payment_succeeded(uow(session), order_id)
    return order_id


async def receive(sessions: Sessions, sku: str, units: int) -> None:
    async with sessions.begin() as session:
        await adjust.adjust_stock(
            uow(session),
            sku=sku,
            location_id=None,
            delta=units,
            reason=AdjustmentReason.RECEIVED,
        )


async def waiting(sessions: Sessions, order_id: uuid.UUID) -> tuple[int, int]:
    """``(units taken from stock, units still waiting)`` of an order."""
    row = await fetch_one(
        sessions,
        """SELECT coalesce(sum(a.quantity), 0) AS sold,
                  coalesce(sum(a.backordered_quantity), 0) AS waiting
             FROM order_allocations a JOIN order_lines ol ON ol.id = a.order_line_id
            WHERE ol.order_id = :order_id""",
        order_id=order_id,
    )
    return int(row.sold), int(row.waiting)


async def fills(sessions: Sessions, sku: str) -> list[tuple[str, int]]:
    """BACKORDER_FILL rows of `sku` in ledger order: ``(reference, units)``."""
    rows = await fetch_all(
        sessions,
        """SELECT m.reference, m.on_hand_delta, m.backordered_delta FROM stock_movements m
             JOIN variants v ON v.id = m.variant_id
            WHERE v.sku = :sku AND m.kind = 'BACKORDER_FILL' ORDER BY m.id""",
        sku=sku,
    )
    assert all(r.on_hand_delta == r.backordered_delta for r in rows)
    return [(r.reference, -int(r.on_hand_delta)) for r in rows]


async def level_figures(sessions: Sessions, sku: str) -> list[tuple[str, int, int, int]]:
    """``(location, on_hand, reserved, backordered)`` of each level of `sku`."""
    rows = await fetch_all(
        sessions,
        """SELECT l.name, sl.on_hand, sl.reserved, sl.backordered FROM stock_levels sl
             JOIN locations l ON l.id = sl.location_id JOIN variants v ON v.id = sl.variant_id
            WHERE v.sku = :sku ORDER BY l.priority""",
        sku=sku,
    )
    return [(r.name, r.on_hand, r.reserved, r.backordered) for r in rows]


# ---------------------------------------------------------------- fill order


async def test_receipts_fill_backorders_oldest_paid_order_first(
    sessions: Sessions, catalog: Catalog
) -> None:
    """Three orders wait for 3, 2 and 4 units; a receipt of 4 fills the first and part of
    the second, a transfer in of 6 the rest of the second, the third, and leaves 1."""
    await add_sku(sessions, catalog, "PRE", {"Main": 0, "Store": 6}, policy="CONTINUE")
    # Store's 6 are moved to Main later; reservations draw from Main first, so take
    # Store's 6 out of reach with a reservation that stays active.
    cart = await reserve(sessions, "PRE", 6)
    first = await paid_order(sessions, "PRE", 3)
    second = await paid_order(sessions, "PRE", 2)
    third = await paid_order(sessions, "PRE", 4)
    assert [await waiting(sessions, o) for o in (first, second, third)] == [(0, 3), (0, 2), (0, 4)]
    assert await level_figures(sessions, "PRE") == [("Main", 0, 0, 9), ("Store", 6, 6, 0)]

    await receive(sessions, "PRE", 4)

    assert [await waiting(sessions, o) for o in (first, second, third)] == [(3, 0), (1, 1), (0, 4)]
    assert await fills(sessions, "PRE") == [(f"order:{first}", 3), (f"order:{second}", 1)]

    async with sessions.begin() as session:
        await reservations.release_reservation(uow(session), cart)
    async with sessions.begin() as session:
        await transfers.transfer_stock(
            uow(session),
            sku="PRE",
            from_location_id=str(catalog.locations["Store"]),
            to_location_id=str(catalog.locations["Main"]),
            quantity=6,
        )

    assert [await waiting(sessions, o) for o in (first, second, third)] == [(3, 0), (2, 0), (4, 0)]
    assert await fills(sessions, "PRE") == [
        (f"order:{first}", 3),
        (f"order:{second}", 1),
        (f"order:{second}", 1),
        (f"order:{third}", 4),
    ]
    assert await level_figures(sessions, "PRE") == [("Main", 1, 0, 0), ("Store", 0, 0, 0)]
    await assert_invariants(sessions)


async def test_a_cart_backorders_beyond_stock_and_gives_both_parts_back(
    sessions: Sessions, catalog: Catalog
) -> None:
    await add_sku(sessions, catalog, "PART", {"Main": 2, "Store": 1}, policy="CONTINUE", limit=5)

    rid = await reserve(sessions, "PART", 7)

    lines = await fetch_all(
        sessions,
        """SELECT l.name, rl.quantity, rl.backordered_quantity FROM reservation_lines rl
             JOIN locations l ON l.id = rl.location_id WHERE rl.reservation_id = :rid
            ORDER BY l.priority""",
        rid=rid,
    )
    assert [tuple(r) for r in lines] == [("Main", 6, 4), ("Store", 1, 0)]
    assert await level_figures(sessions, "PART") == [("Main", 2, 2, 4), ("Store", 1, 1, 0)]
    rows = await fetch_all(
        sessions,
        """SELECT reserved_delta, backordered_delta, backordered_after FROM stock_movements
            WHERE reference = :ref ORDER BY id""",
        ref=f"reservation:{rid}",
    )
    assert [tuple(r) for r in rows] == [(2, 4, 4), (1, 0, 0)]
    await assert_invariants(sessions)

    async with sessions.begin() as session:
        await reservations.release_reservation(uow(session), rid)

    assert await level_figures(sessions, "PART") == [("Main", 2, 0, 0), ("Store", 1, 0, 0)]
    await assert_invariants(sessions)


async def test_the_backorder_limit_refuses_with_what_it_still_allows(
    sessions: Sessions, catalog: Catalog
) -> None:
    await add_sku(sessions, catalog, "LIM", {"Main": 1}, policy="CONTINUE", limit=3)
    await reserve(sessions, "LIM", 3)  # 1 covered, 2 promised
    before = await level_figures(sessions, "LIM")

    with pytest.raises(InsufficientStock) as refused:
        await reserve(sessions, "LIM", 2)

    assert (refused.value.requested, refused.value.available) == (2, 1)
    assert await level_figures(sessions, "LIM") == before == [("Main", 1, 1, 2)]
    await reserve(sessions, "LIM", 1)
    assert await level_figures(sessions, "LIM") == [("Main", 1, 1, 3)]
    await assert_invariants(sessions)


async def test_update_reservation_backorders_and_gives_promised_units_back_first(
    sessions: Sessions, catalog: Catalog
) -> None:
    await add_sku(sessions, catalog, "UPD", {"Main": 2}, policy="CONTINUE", limit=4)
    rid = await reserve(sessions, "UPD", 1)

    async with sessions.begin() as session:
        await reservations.update_reservation(
            uow(session), rid, [LineRequest("UPD", 5)], limits=LIMITS
        )
    assert await level_figures(sessions, "UPD") == [("Main", 2, 2, 3)]
    with pytest.raises(InsufficientStock) as refused:
        async with sessions.begin() as session:
            await reservations.update_reservation(
                uow(session), rid, [LineRequest("UPD", 8)], limits=LIMITS
            )
    assert (refused.value.requested, refused.value.available) == (8, 6)

    async with sessions.begin() as session:
        await reservations.update_reservation(
            uow(session), rid, [LineRequest("UPD", 3)], limits=LIMITS
        )
    assert await level_figures(sessions, "UPD") == [("Main", 2, 2, 1)]
    await assert_invariants(sessions)


async def test_refunded_waiting_units_are_released_first_and_never_restocked(
    sessions: Sessions, catalog: Catalog
) -> None:
    await add_sku(sessions, catalog, "REF", {"Main": 2}, policy="CONTINUE")
    order_id = await paid_order(sessions, "REF", 5)  # 2 sold, 3 waiting
    assert await waiting(sessions, order_id) == (2, 3)

    async with sessions.begin() as session:
        await refunds.refund_order(
            uow(session), order_id, provider=PROVIDER, lines=[LineRequest("REF", 4)]
        )

    assert await waiting(sessions, order_id) == (2, 0)
    # 3 waiting units given up, 1 sold unit restocked
    assert await level_figures(sessions, "REF") == [("Main", 1, 0, 0)]
    rows = await fetch_all(
        sessions,
        "SELECT kind, on_hand_delta, backordered_delta FROM stock_movements"
        " WHERE reference = :ref ORDER BY id",
        ref=f"order:{order_id}",
    )
    assert [tuple(r) for r in rows] == [("SALE", -2, 0), ("RELEASE", 0, -3), ("RETURN", 1, 0)]
    await assert_invariants(sessions)


async def test_cancelling_a_paid_order_with_only_waiting_units(
    sessions: Sessions, catalog: Catalog
) -> None:
    await add_sku(sessions, catalog, "CAN", {"Main": 0}, policy="CONTINUE")
    order_id = await paid_order(sessions, "CAN", 2)

    async with sessions.begin() as session:
        await refunds.cancel_order(uow(session), order_id, provider=PROVIDER)
    await receive(sessions, "CAN", 2)

    assert await waiting(sessions, order_id) == (0, 0)
    assert await level_figures(sessions, "CAN") == [("Main", 2, 0, 0)]
    assert await fills(sessions, "CAN") == []
    await assert_invariants(sessions)


# ---------------------------------------------------------------- 500 buyers


def reserve_work(sku: str) -> Any:
    async def work(session: AsyncSession) -> uuid.UUID:
        return await reservations.reserve(uow(session), [LineRequest(sku, 1)], limits=LIMITS)

    return work


async def test_a_deny_variant_never_goes_below_zero_under_500_buyers(
    sessions: Sessions, catalog: Catalog
) -> None:
    await add_sku(sessions, catalog, "DENY", {"Main": 30, "Store": 20})

    outcomes = await run_concurrently(sessions, [reserve_work("DENY")] * 500)

    assert_only(outcomes, InsufficientStock)
    assert tally(outcomes) == {"ok": 50, "INSUFFICIENT_STOCK": 450}
    assert await level_figures(sessions, "DENY") == [("Main", 30, 30, 0), ("Store", 20, 20, 0)]
    await assert_invariants(sessions)


async def test_a_continue_variant_never_goes_beyond_its_limit_under_500_buyers(
    sessions: Sessions, catalog: Catalog
) -> None:
    await add_sku(
        sessions, catalog, "MORE", {"Main": 30, "Store": 20}, policy="CONTINUE", limit=100
    )

    outcomes = await run_concurrently(sessions, [reserve_work("MORE")] * 500)

    assert_only(outcomes, InsufficientStock)
    assert tally(outcomes) == {"ok": 150, "INSUFFICIENT_STOCK": 350}
    refusals = [o.error for o in outcomes if isinstance(o.error, InsufficientStock)]
    assert {(e.requested, e.available) for e in refusals} == {(1, 0)}
    # the 100 promised units wait at Main, the location drawn from first
    assert await level_figures(sessions, "MORE") == [("Main", 30, 30, 100), ("Store", 20, 20, 0)]
    promised = await fetch_one(
        sessions,
        "SELECT sum(backordered_quantity) AS units, count(*) FILTER"
        " (WHERE backordered_quantity > 0) AS lines FROM reservation_lines",
    )
    assert (promised.units, promised.lines) == (100, 100)
    await assert_invariants(sessions)


def _figures(rows: Sequence[Any]) -> list[tuple[int, int]]:
    return [(int(r.on_hand), int(r.reserved)) for r in rows]


async def test_deny_levels_read_as_before(sessions: Sessions, catalog: Catalog) -> None:
    """A DENY variant with nothing backordered: levels and figures as before ADR 0018."""
    await add_sku(sessions, catalog, "PLAIN", {"Main": 3})
    await reserve(sessions, "PLAIN", 2)
    assert _figures(await levels_of(sessions, "PLAIN")) == [(3, 2)]
    with pytest.raises(InsufficientStock):
        await reserve(sessions, "PLAIN", 2)


# ---------------------------------------------------------------- events and alerts


async def _positioned(engine: AsyncEngine) -> list[StockEvent]:
    events = None
    while events is None:  # another relay pass holds the lock: try again
        events = await assign_positions(engine)
    return events


async def test_stock_events_and_low_stock_alerts_follow_available_with_backorders(
    sessions: Sessions, engine: AsyncEngine, catalog: Catalog
) -> None:
    """Threshold 5, 8 on hand: a cart of 10 leaves available -2 (OUT_OF_STOCK), a receipt
    of 9 leaves 7 (BACK_IN_STOCK), 4 more leave 3 (still LOW); the events carry
    backordered, on the wire too."""
    await add_sku(sessions, catalog, "EVT", {"Main": 8}, policy="CONTINUE")
    await _positioned(engine)  # the catalog's own movements
    tracker = AlertTracker(engine, ttl=3600)

    await reserve(sessions, "EVT", 10)
    [event] = await _positioned(engine)
    assert (event.kind, event.reserved, event.backordered, event.available) == (
        "RESERVATION",
        8,
        2,
        -2,
    )
    assert StockEvent.from_wire(json.loads(json.dumps(event.to_wire()))) == event
    alert = await tracker.apply(event)
    assert alert is not None
    assert (alert.state, alert.available) == (LowStockState.OUT_OF_STOCK, -2)

    await receive(sessions, "EVT", 9)
    [event] = await _positioned(engine)
    assert (event.kind, event.on_hand, event.backordered, event.available) == (
        "RECEIPT",
        17,
        2,
        7,
    )
    alert = await tracker.apply(event)
    assert alert is not None
    assert alert.state is LowStockState.BACK_IN_STOCK
    await reserve(sessions, "EVT", 3)  # 7 -> 4 available: LOW
    [event] = await _positioned(engine)
    assert await tracker.apply(event) is not None
    fresh = AlertTracker(engine)  # loads 4 from the ledger (6 if it forgot backorders)
    await reserve(sessions, "EVT", 1)
    [event] = await _positioned(engine)
    assert event.available == 3
    assert await fresh.apply(event) is None  # LOW -> LOW: no new alert
    await assert_invariants(sessions)


async def test_a_shipment_receipt_fills_backorders_before_it_becomes_available(
    sessions: Sessions, catalog: Catalog
) -> None:
    """Two preorders wait for 2 and 3 units; a shipment of 4 received in part (3) fills
    the first and 1 of the second, the rest (1) a second unit of the second: shipments
    fill backorders first, like every other receipt, oldest paid order first."""
    from gql_inventory.stock import shipments

    await add_sku(sessions, catalog, "SHIP", {"Main": 0}, policy="CONTINUE")
    first = await paid_order(sessions, "SHIP", 2)
    second = await paid_order(sessions, "SHIP", 3)
    async with sessions.begin() as session:
        shipment = await shipments.create_shipment(
            uow(session), location_id=None, lines=[LineRequest("SHIP", 4)]
        )

    async with sessions.begin() as session:
        await shipments.receive_shipment(
            uow(session), shipment_id=shipment, lines=[LineRequest("SHIP", 3)]
        )
    assert [await waiting(sessions, o) for o in (first, second)] == [(2, 0), (1, 2)]
    assert await fills(sessions, "SHIP") == [(f"order:{first}", 2), (f"order:{second}", 1)]

    async with sessions.begin() as session:
        await shipments.receive_shipment(uow(session), shipment_id=shipment)
    assert [await waiting(sessions, o) for o in (first, second)] == [(2, 0), (2, 1)]
    # Main: 4 received, 4 gone to the two orders; 1 unit still promised to the second
    assert await level_figures(sessions, "SHIP") == [("Main", 0, 0, 1)]
    await assert_invariants(sessions)
