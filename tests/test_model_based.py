"""Model-based test of the stock domain: random operation sequences, PostgreSQL vs a plain model.

Hypothesis drives reserve / updateReservation / release / checkout / payment outcomes /
cancel / expiry / adjust / set / refund / moveStockState against the real database and against an
in-memory model of the documented rules (DESIGN.md "Stock model" and "Lifecycle";
allocation as in `stock.allocate`, release order as in `update_reservation`, returns to
the levels sold from, late payments as in `payment_outcomes.payment_succeeded`). After
every step each level's on hand / reserved, the ledger rows the step wrote (kind and
deltas), each reservation's status and each order (status, total, lines, refunded and
returned units, the levels it was sold from) must match the model, and `find_violations`
must be empty.

Rules pick mostly objects they can work on (an ACTIVE reservation, a PENDING order...)
and sometimes others, where the domain must refuse or do nothing. Every reservation
lives at least 600 s, so only the sweeper (given an explicit `now`) expires one.

The state machine is synchronous; it runs the async domain on its own event loop and
its own engine (the session fixtures live on pytest-asyncio's loop).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.domain.errors import DomainError, DomainErrors
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.kit.db import create_engine, make_sessionmaker
from gql_inventory.models import StockState
from gql_inventory.orders import checkout, orders, payment_outcomes, refunds
from gql_inventory.payments.offline import OfflinePaymentProvider
from gql_inventory.stock import adjust, expiry, reservations
from gql_inventory.stock import states as stock_states
from gql_inventory.stock.invariants import find_violations
from gql_inventory.stock.levels import LineRequest
from gql_inventory.stock.reservations import ReservationLimits
from tests.conftest import _TABLES
from tests.support.catalog import Catalog, make_location, make_product

T = TypeVar("T")

SKUS = ("TEE", "MUG", "CAP")
PRICES = {"TEE": 1500, "MUG": 999, "CAP": 2500}
LOCATIONS = ("North", "South")
UNAVAILABLE = (StockState.DAMAGED, StockState.QUALITY_CONTROL, StockState.SAFETY_STOCK)
STATE_MOVES = [
    (StockState.AVAILABLE, StockState.DAMAGED),
    (StockState.DAMAGED, StockState.AVAILABLE),
    (StockState.AVAILABLE, StockState.SAFETY_STOCK),
    (StockState.SAFETY_STOCK, StockState.AVAILABLE),
    (StockState.DAMAGED, StockState.QUALITY_CONTROL),
    (StockState.QUALITY_CONTROL, StockState.AVAILABLE),
]
LIMITS = ReservationLimits()
PROVIDER = OfflinePaymentProvider()
PAYMENT_WINDOW_SECONDS = 900  # checkout holds the stock at least this long

ACTIVE, COMPLETED, RELEASED, EXPIRED = "ACTIVE", "COMPLETED", "RELEASED", "EXPIRED"
PENDING, PAID, PARTIAL, REFUNDED = "PENDING_PAYMENT", "PAID", "PARTIALLY_REFUNDED", "REFUNDED"
CANCELLED, ATTENTION = "CANCELLED", "NEEDS_ATTENTION"
REFUNDABLE = (PAID, PARTIAL)

LevelKey = tuple[str, str]  # (sku, location name)
#: ledger row: (kind, level, on hand delta, reserved delta, backordered delta)
Move = tuple[str, LevelKey, int, int, int]
#: where a line's units come from: {level: (units, of which backordered)} (ADR 0018)
Plan = dict[LevelKey, tuple[int, int]]
Errors = list[tuple[str, str | None]]  # sorted (code, sku) of every refusal


# ---------------------------------------------------------------- the model


class Refused(Exception):
    """The model refuses the operation with these (code, sku) errors; nothing changed."""

    def __init__(self, *errors: tuple[str, str | None]) -> None:
        super().__init__(errors)
        self.errors: Errors = sorted(errors, key=repr)


@dataclass
class MLevel:
    id: int
    on_hand: int = 0
    reserved: int = 0
    #: units in DAMAGED, QUALITY_CONTROL, SAFETY_STOCK (ADR 0017)
    states: dict[StockState, int] = field(default_factory=lambda: dict.fromkeys(UNAVAILABLE, 0))
    #: units promised beyond stock (ADR 0018)
    backordered: int = 0

    @property
    def unavailable(self) -> int:
        return sum(self.states.values())

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved - self.unavailable - self.backordered


@dataclass
class MReservation:
    status: str
    held: dict[LevelKey, int]
    expires_at: datetime
    #: of `held`, the units promised beyond stock per level
    promised: dict[LevelKey, int] = field(default_factory=dict)


@dataclass
class MAllocation:
    key: LevelKey
    quantity: int
    returned: int = 0
    #: units still waiting for stock (ADR 0018)
    waiting: int = 0


@dataclass
class MOrder:
    reservation_id: uuid.UUID
    status: str
    lines: dict[str, int]
    total: int
    refunded: dict[str, int] = field(default_factory=dict)
    allocations: dict[str, list[MAllocation]] = field(default_factory=dict)
    payment_received: bool = False
    #: when its payment was applied (a counter): backorders fill oldest first
    paid_at: int = 0


class Model:
    """The documented rules over plain dicts. Methods check everything, then mutate."""

    def __init__(self, priorities: dict[str, int], location_ids: dict[str, int]) -> None:
        self.priorities = priorities
        self.location_ids = location_ids
        self.levels: dict[LevelKey, MLevel] = {}
        self.reservations: dict[uuid.UUID, MReservation] = {}
        self.orders: dict[uuid.UUID, MOrder] = {}
        #: CONTINUE SKUs and their backorder limit (None: no limit); others are DENY
        self.limits: dict[str, int | None] = {}
        self.payments = 0
        #: ledger rows written since the last comparison with the database
        self.moves: list[Move] = []

    def move(
        self, kind: str, key: LevelKey, on_hand: int = 0, reserved: int = 0, backordered: int = 0
    ) -> None:
        """Change a level: one ledger row of this kind (Lifecycle table)."""
        level = self.levels.setdefault(key, MLevel(id=-1))
        level.on_hand += on_hand
        level.reserved += reserved
        level.backordered += backordered
        assert level.reserved >= 0, f"the model broke a CHECK on {key}"
        assert level.backordered >= 0, f"backordered below 0 on {key}"
        assert level.reserved + level.unavailable <= level.on_hand, f"a CHECK broke on {key}"
        self.moves.append((kind, key, on_hand, reserved, backordered))

    # -- allocation

    def by_priority(self, sku: str) -> list[LevelKey]:
        """The SKU's levels in allocation order: priority, then location id."""
        keys = [k for k in self.levels if k[0] == sku]
        return sorted(keys, key=lambda k: (self.priorities[k[1]], self.location_ids[k[1]]))

    def allocate(self, sku: str, quantity: int) -> Plan | None:
        """Drain levels in priority order; a CONTINUE SKU promises the rest at its first
        level within its limit; None when it does not fit."""
        plan: Plan = {}
        remaining = quantity
        order = self.by_priority(sku)
        for key in order:
            take = min(self.levels[key].available, remaining)
            if take > 0:
                plan[key] = (take, 0)
                remaining -= take
        if remaining and order and sku in self.limits:
            limit = self.limits[sku]
            promised = sum(self.levels[k].backordered for k in order)
            if limit is None or promised + remaining <= limit:
                event("backordered")
                plan[order[0]] = (plan.get(order[0], (0, 0))[0] + remaining, remaining)
                remaining = 0
        return plan if remaining == 0 else None

    def waiting_levels(self) -> list[LevelKey]:
        """Levels where paid orders wait for stock, in a stable order."""
        return sorted(
            {
                a.key
                for o in self.orders.values()
                for allocs in o.allocations.values()
                for a in allocs
                if a.waiting
            }
        )

    def fill(self, keys: Iterable[LevelKey]) -> None:
        """A receipt: waiting units at these levels are filled, oldest paid order first."""
        for key in sorted(set(keys), key=lambda k: self.levels[k].id):
            level = self.levels[key]
            free = level.on_hand - level.reserved - level.unavailable
            waiting = sorted(
                (
                    (o.paid_at, a)
                    for o in self.orders.values()
                    for allocs in o.allocations.values()
                    for a in allocs
                    if a.key == key and a.waiting
                ),
                key=lambda paid: paid[0],
            )
            for _, alloc in waiting:
                if free <= 0 or level.backordered == 0:
                    break
                units = min(free, alloc.waiting)
                event("backorder filled")
                self.move("BACKORDER_FILL", key, on_hand=-units, backordered=-units)
                alloc.quantity += units
                alloc.waiting -= units
                free -= units

    def order_of(self, rid: uuid.UUID) -> MOrder | None:
        return next((o for o in self.orders.values() if o.reservation_id == rid), None)

    # -- reservations

    def reserve(self, lines: list[tuple[str, int]], ttl: int) -> Plan:
        if not 1 <= ttl <= LIMITS.max_ttl_seconds:
            raise Refused(("INVALID_INPUT", None))
        wanted: dict[str, int] = {}
        for sku, quantity in lines:
            wanted[sku] = wanted.get(sku, 0) + quantity
        plan: Plan = {}
        short = []
        for sku, quantity in wanted.items():
            part = self.allocate(sku, quantity)
            if part is None:
                short.append(("INSUFFICIENT_STOCK", sku))
            else:
                plan.update(part)
        if short:
            raise Refused(*short)
        return plan

    def add_reservation(self, rid: uuid.UUID, plan: Plan, expires_at: datetime) -> None:
        for key, (units, promised) in plan.items():
            self.move("RESERVATION", key, reserved=units - promised, backordered=promised)
        held = {key: units for key, (units, _) in plan.items()}
        promised = {key: p for key, (_, p) in plan.items() if p}
        self.reservations[rid] = MReservation(ACTIVE, held, expires_at, promised)

    def update(self, rid: uuid.UUID, wanted: dict[str, int]) -> Plan:
        """Check an update; returns the reserved delta per level (apply with `apply_update`)."""
        res = self.reservations[rid]
        if res.status != ACTIVE:
            raise Refused(("RESERVATION_NOT_ACTIVE", None))
        if self.order_of(rid) is not None:
            # Checked out: the order's lines and the payment amount are frozen.
            raise Refused(("INVALID_ORDER_STATE", None))
        changes: Plan = {}
        short = []
        for sku, want in wanted.items():
            current = sum(q for k, q in res.held.items() if k[0] == sku)
            diff = want - current
            if diff > 0:
                plan = self.allocate(sku, diff)
                if plan is None:
                    short.append(("INSUFFICIENT_STOCK", sku))
                    continue
                changes.update(plan)
            elif diff < 0:
                to_release = -diff
                for key in reversed(self.by_priority(sku)):
                    take = min(res.held.get(key, 0), to_release)
                    if take:  # promised units go back first
                        changes[key] = (-take, -min(res.promised.get(key, 0), take))
                        to_release -= take
        if short:
            raise Refused(*short)
        return changes

    def apply_update(self, rid: uuid.UUID, changes: Plan, expires_at: datetime) -> None:
        res = self.reservations[rid]
        for key, (delta, promised) in changes.items():
            kind = "RESERVATION" if delta > 0 else "RELEASE"
            self.move(kind, key, reserved=delta - promised, backordered=promised)
            res.held[key] = res.held.get(key, 0) + delta
            res.promised[key] = res.promised.get(key, 0) + promised
            if res.held[key] == 0:
                del res.held[key]
            if res.promised[key] == 0:
                del res.promised[key]
        res.expires_at = expires_at

    def end_reservation(self, rid: uuid.UUID, status: str, kind: str = "RELEASE") -> None:
        res = self.reservations[rid]
        assert res.status == ACTIVE
        for key, units in res.held.items():
            promised = res.promised.get(key, 0)
            self.move(kind, key, reserved=promised - units, backordered=-promised)
        res.status = status

    def cancel_pending_order_of(self, rid: uuid.UUID) -> uuid.UUID | None:
        for oid, order in self.orders.items():
            if order.reservation_id == rid and order.status == PENDING:
                order.status = CANCELLED
                return oid
        return None

    def release(self, rid: uuid.UUID) -> None:
        if self.reservations[rid].status != ACTIVE:
            raise Refused(("RESERVATION_NOT_ACTIVE", None))
        self.end_reservation(rid, RELEASED)
        self.cancel_pending_order_of(rid)

    def expire(self, now: datetime) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
        expired, cancelled = set(), set()
        for rid, res in self.reservations.items():
            if res.status == ACTIVE and res.expires_at <= now:
                self.end_reservation(rid, EXPIRED, "EXPIRY")
                expired.add(rid)
                oid = self.cancel_pending_order_of(rid)
                if oid is not None:
                    cancelled.add(oid)
        return expired, cancelled

    # -- orders

    def checkout(
        self, rid: uuid.UUID, oid: uuid.UUID | None, now: datetime | None = None
    ) -> uuid.UUID:
        """`now`: the database clock of the checkout (the payment window counts from it)."""
        res = self.reservations[rid]
        if res.status != ACTIVE:
            raise Refused(("RESERVATION_NOT_ACTIVE", None))
        existing = self.order_of(rid)
        if existing is not None and existing.status == PENDING:
            return orders.order_id_for(rid)
        if existing is not None:  # NEEDS_ATTENTION after an amount mismatch
            raise Refused(("INVALID_ORDER_STATE", None))
        lines: dict[str, int] = {}
        for (sku, _), units in res.held.items():
            lines[sku] = lines.get(sku, 0) + units
        if not lines:
            raise Refused(("INVALID_INPUT", None))  # nothing to pay for
        assert oid == orders.order_id_for(rid)
        total = sum(q * PRICES[sku] for sku, q in lines.items())
        self.orders[oid] = MOrder(rid, PENDING, lines, total)
        if now is not None:  # checkout holds the stock for the whole payment window
            res.expires_at = max(res.expires_at, now + timedelta(seconds=PAYMENT_WINDOW_SECONDS))
        return oid

    def _sell(self, order: MOrder, sku: str, key: LevelKey, units: int, waiting: int = 0) -> None:
        order.allocations.setdefault(sku, []).append(MAllocation(key, units, waiting=waiting))

    def pay(self, oid: uuid.UUID, *, wrong_amount: bool = False) -> str:
        order = self.orders[oid]
        if order.status in (*REFUNDABLE, REFUNDED, ATTENTION):
            return "already_paid"
        if order.status == CANCELLED and order.payment_received:
            return "already_paid"  # sold, or flagged and then cancelled (refunded)
        order.payment_received = True
        if wrong_amount:  # flagged; the reservation (if still ACTIVE) keeps its units
            order.status = ATTENTION
            return "amount_mismatch"
        res = self.reservations[order.reservation_id]
        self.payments += 1
        order.paid_at = self.payments
        if res.status == ACTIVE:
            assert order.status == PENDING
            for key, units in res.held.items():
                covered = units - res.promised.get(key, 0)
                if covered:
                    self.move("SALE", key, on_hand=-covered, reserved=-covered)
                self._sell(order, key[0], key, covered, res.promised.get(key, 0))
            res.status = COMPLETED
            order.status = PAID
            self.fill(res.promised)
            return "sold"
        plans = {sku: self.allocate(sku, quantity) for sku, quantity in order.lines.items()}
        if any(plan is None for plan in plans.values()):
            order.status = ATTENTION
            return "needs_attention"
        waiting = []
        for sku, plan in plans.items():
            assert plan is not None
            for key, (units, promised) in plan.items():
                self.move("SALE", key, on_hand=promised - units, backordered=promised)
                self._sell(order, sku, key, units - promised, promised)
                if promised:
                    waiting.append(key)
        order.status = PAID
        self.fill(waiting)
        return "sold_late"

    def payment_canceled(self, oid: uuid.UUID) -> str:
        order = self.orders[oid]
        if order.status != PENDING:
            return "ignored"
        if self.reservations[order.reservation_id].status == ACTIVE:
            self.end_reservation(order.reservation_id, RELEASED)
        order.status = CANCELLED
        return "cancelled"

    def _refund(self, order: MOrder, quantities: dict[str, int], *, restock: bool) -> None:
        returns: dict[LevelKey, int] = {}
        released: dict[LevelKey, int] = {}
        for sku, quantity in quantities.items():
            order.refunded[sku] = order.refunded.get(sku, 0) + quantity
            remaining = quantity
            allocations = sorted(order.allocations.get(sku, []), key=lambda a: self.level_id(a))
            for alloc in allocations:  # units still waiting are given up first, never restocked
                take = min(alloc.waiting, remaining)
                if take:
                    alloc.waiting -= take
                    released[alloc.key] = released.get(alloc.key, 0) + take
                    remaining -= take
            order.allocations[sku] = [a for a in allocations if a.quantity or a.waiting]
            if not order.allocations[sku]:
                del order.allocations[sku]
            if not restock:
                continue
            for alloc in allocations:
                take = min(alloc.quantity - alloc.returned, remaining)
                if take <= 0:
                    continue
                alloc.returned += take
                returns[alloc.key] = returns.get(alloc.key, 0) + take
                remaining -= take
        for key, units in released.items():  # one RELEASE row per level
            self.move("RELEASE", key, backordered=-units)
        for key, units in returns.items():  # one RETURN row per level
            self.move("RETURN", key, on_hand=units)
        self.fill(returns)
        left = sum(q - order.refunded.get(sku, 0) for sku, q in order.lines.items())
        order.status = REFUNDED if left == 0 else PARTIAL

    def level_id(self, alloc: MAllocation) -> int:
        return self.levels[alloc.key].id

    def remaining(self, order: MOrder) -> dict[str, int]:
        return {
            sku: q - order.refunded.get(sku, 0)
            for sku, q in order.lines.items()
            if q > order.refunded.get(sku, 0)
        }

    def refund(self, oid: uuid.UUID, lines: list[tuple[str, int]] | None, *, restock: bool) -> bool:
        order = self.orders[oid]
        if order.status not in REFUNDABLE:
            raise Refused(("INVALID_ORDER_STATE", None))
        if lines is None:
            quantities = self.remaining(order)
        else:
            quantities = {}
            errors = []
            for sku, quantity in lines:
                quantities[sku] = quantities.get(sku, 0) + quantity
                refundable = order.lines.get(sku, 0) - order.refunded.get(sku, 0)
                if quantities[sku] > refundable:
                    errors.append(("REFUND_EXCEEDS_QUANTITY", sku))
            if errors:
                raise Refused(*errors)
        self._refund(order, quantities, restock=restock)
        return True

    def cancel_order(self, oid: uuid.UUID) -> None:
        order = self.orders[oid]
        if order.status in REFUNDABLE:
            self._refund(order, self.remaining(order), restock=True)
        elif order.status in (PENDING, ATTENTION):
            # pending: release its stock; flagged: never sold, a still held cart is released
            if self.reservations[order.reservation_id].status == ACTIVE:
                self.end_reservation(order.reservation_id, RELEASED)
        else:
            raise Refused(("INVALID_ORDER_STATE", None))
        order.status = CANCELLED

    # -- admin stock changes

    def adjust(self, key: LevelKey, delta: int, reason: adjust.AdjustmentReason) -> None:
        level = self.levels.get(key, MLevel(id=-1))
        if level.on_hand + delta < level.reserved + level.unavailable:
            raise Refused(("INSUFFICIENT_STOCK", key[0]))
        kind = {"RECEIVED": "RECEIPT", "CYCLE_COUNT": "COUNT"}.get(reason.value, "ADJUSTMENT")
        self.move(kind, key, on_hand=delta)
        if delta > 0:
            self.fill([key])

    def set(self, key: LevelKey, on_hand: int) -> None:
        level = self.levels.get(key, MLevel(id=-1))
        if on_hand < level.reserved + level.unavailable:
            raise Refused(("INSUFFICIENT_STOCK", key[0]))
        if on_hand == level.on_hand:  # a count that changes nothing writes no row
            self.levels.setdefault(key, level)
        else:
            raised = on_hand > level.on_hand
            self.move("COUNT", key, on_hand=on_hand - level.on_hand)
            if raised:
                self.fill([key])

    def move_state(
        self, key: LevelKey, quantity: int, source: StockState, target: StockState
    ) -> None:
        """moveStockState: the source state (AVAILABLE: the available units) must hold
        `quantity`; one STATE_CHANGE row, on hand and reserved unchanged."""
        level = self.levels.get(key, MLevel(id=-1))
        held = level.available if source is StockState.AVAILABLE else level.states[source]
        if held < quantity:
            raise Refused(("INSUFFICIENT_STOCK", key[0]))
        level = self.levels.setdefault(key, level)
        if source is not StockState.AVAILABLE:
            level.states[source] -= quantity
        if target is not StockState.AVAILABLE:
            level.states[target] += quantity
        self.moves.append(("STATE_CHANGE", key, 0, 0, 0))


# ---------------------------------------------------------------- the database side


def _errors(exc: DomainError) -> Errors:
    flat = exc.errors if isinstance(exc, DomainErrors) else [exc]
    return sorted(((e.code, getattr(e, "sku", None)) for e in flat), key=repr)


@dataclass
class Snapshot:
    levels: dict[LevelKey, tuple[int, int, int]]
    states: dict[LevelKey, tuple[int, int, int]]
    level_ids: dict[LevelKey, int]
    reservations: dict[uuid.UUID, str]
    orders: dict[uuid.UUID, tuple[str, int]]
    order_lines: dict[uuid.UUID, dict[str, tuple[int, int]]]
    allocations: dict[uuid.UUID, list[tuple[str, LevelKey, int, int, int]]]
    moves: list[Move]  # ledger rows after the `after` id given to `snapshot`
    last_movement_id: int
    violations: list[str]


_LEVELS = text(
    """
    SELECT v.sku, l.name, sl.id, sl.on_hand, sl.reserved, sl.damaged, sl.quality_control,
           sl.safety_stock, sl.backordered
      FROM stock_levels sl
      JOIN variants v ON v.id = sl.variant_id
      JOIN locations l ON l.id = sl.location_id
    """
)
_ORDER_LINES = text(
    """
    SELECT ol.order_id, v.sku, ol.quantity, ol.refunded_quantity
      FROM order_lines ol JOIN variants v ON v.id = ol.variant_id
    """
)
_ALLOCATIONS = text(
    """
    SELECT ol.order_id, v.sku, l.name, oa.quantity, oa.returned_quantity,
           oa.backordered_quantity
      FROM order_allocations oa
      JOIN order_lines ol ON ol.id = oa.order_line_id
      JOIN stock_levels sl ON sl.id = oa.stock_level_id
      JOIN variants v ON v.id = sl.variant_id
      JOIN locations l ON l.id = sl.location_id
    """
)
_MOVEMENTS = text(
    """
    SELECT m.id, m.kind, v.sku, l.name, m.on_hand_delta, m.reserved_delta, m.backordered_delta
      FROM stock_movements m
      JOIN variants v ON v.id = m.variant_id
      JOIN locations l ON l.id = m.location_id
     WHERE m.id > :after
     ORDER BY m.id
    """
)
_EXPIRES_AT = text("SELECT expires_at FROM reservations WHERE id = :id")
_CONTINUE = text(
    "UPDATE variants SET inventory_policy = 'CONTINUE', backorder_limit = :limit WHERE sku = :sku"
)
_NOW = text("SELECT now()")


async def level_ids(session: AsyncSession) -> dict[LevelKey, int]:
    return {(r.sku, r.name): r.id for r in await session.execute(_LEVELS)}


async def snapshot(session: AsyncSession, after: int) -> Snapshot:
    """Everything the model predicts, read in one transaction; ledger rows after id `after`."""
    levels = (await session.execute(_LEVELS)).all()
    moves = (await session.execute(_MOVEMENTS, {"after": after})).all()
    lines: dict[uuid.UUID, dict[str, tuple[int, int]]] = {}
    for r in await session.execute(_ORDER_LINES):
        lines.setdefault(r.order_id, {})[r.sku] = (r.quantity, r.refunded_quantity)
    allocations: dict[uuid.UUID, list[tuple[str, LevelKey, int, int, int]]] = {}
    for r in await session.execute(_ALLOCATIONS):
        allocations.setdefault(r.order_id, []).append(
            (r.sku, (r.sku, r.name), r.quantity, r.returned_quantity, r.backordered_quantity)
        )
    return Snapshot(
        levels={(r.sku, r.name): (r.on_hand, r.reserved, r.backordered) for r in levels},
        states={(r.sku, r.name): (r.damaged, r.quality_control, r.safety_stock) for r in levels},
        level_ids={(r.sku, r.name): r.id for r in levels},
        moves=[
            (r.kind, (r.sku, r.name), r.on_hand_delta, r.reserved_delta, r.backordered_delta)
            for r in moves
        ],
        last_movement_id=max((r.id for r in moves), default=after),
        reservations={
            r.id: r.status
            for r in await session.execute(text("SELECT id, status FROM reservations"))
        },
        orders={
            r.id: (r.status, r.total_amount)
            for r in await session.execute(text("SELECT id, status, total_amount FROM orders"))
        },
        order_lines=lines,
        allocations={oid: sorted(a) for oid, a in allocations.items()},
        violations=[v.describe() for v in await find_violations(session)],
    )


async def make_stock(
    session: AsyncSession, priorities: dict[str, int], stock: dict[LevelKey, int | None]
) -> Catalog:
    """Two locations and one single-variant product per SKU; a None quantity means no level."""
    await session.execute(text(f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE"))
    catalog = Catalog()
    for i, name in enumerate(LOCATIONS):
        catalog.locations[name] = await make_location(
            session, name, priority=priorities[name], default=i == 0
        )
    for sku in SKUS:
        units = {loc: q for loc in LOCATIONS if (q := stock[sku, loc]) is not None}
        await make_product(
            session, catalog, sku.lower(), sku.title(), [(sku, "Default Title", PRICES[sku], units)]
        )
    return catalog


# ---------------------------------------------------------------- the machine


def payable(o: MOrder) -> bool:
    return o.status == PENDING or (o.status == CANCELLED and not o.payment_received)


def pending(o: MOrder) -> bool:
    return o.status == PENDING


def refundable(o: MOrder) -> bool:
    return o.status in REFUNDABLE


def cancellable(o: MOrder) -> bool:
    return o.status not in (CANCELLED, REFUNDED)


def some_order(wanted: Callable[[MOrder], bool]) -> Callable[[StockMachine], bool]:
    """Precondition: an order exists on which the rule can do its work."""
    return lambda machine: any(wanted(o) for o in machine.model.orders.values())


def some_active_reservation(machine: StockMachine) -> bool:
    return any(r.status == ACTIVE for r in machine.model.reservations.values())


skus = st.sampled_from(SKUS)
locations = st.sampled_from(LOCATIONS)
# sampled_from draws uniformly (integers() favours 0 and the bounds): stock stays scarce but
# not empty, so both successes and shortages are common.
quantities = st.sampled_from([1, 2, 3])
#: CONTINUE SKUs and their backorder limits (None: no limit); a third of the runs all DENY
POLICIES = st.sampled_from([{}, {}, {"CAP": None}, {"CAP": 3}, {"CAP": 0}, {"MUG": 2, "CAP": 5}])
on_hand_figures = st.sampled_from([3, 5, 2, 0, 6, 1, 4])


class StockMachine(RuleBasedStateMachine):
    """Each rule runs the domain call in one transaction and the same step on the model."""

    def __init__(self, runner: asyncio.Runner, sessions: async_sessionmaker[AsyncSession]) -> None:
        super().__init__()
        self.runner = runner
        self.sessions = sessions
        self.model = Model({}, {})
        self.last_movement_id = 0

    def run(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async def in_transaction() -> T:
            async with self.sessions.begin() as session:
                return await work(session)

        return self.runner.run(in_transaction())

    def attempt(self, work: Callable[[AsyncSession], Awaitable[T]]) -> tuple[T | None, Errors]:
        """Run `work`; a domain refusal rolls back and is returned as its (code, sku) list."""
        try:
            return self.run(work), []
        except DomainError as exc:
            return None, _errors(exc)

    @staticmethod
    def expect(name: str, db_errors: Errors, step: Callable[[], T]) -> T | None:
        """Run the model step; its refusal (or success) must be the database's."""
        try:
            result = step()
        except Refused as refused:
            model_errors = refused.errors
        else:
            assert db_errors == [], f"database refused {db_errors}, the model accepted"
            event(f"{name}: done")
            return result
        assert db_errors == model_errors, f"database {db_errors}, model {model_errors}"
        event(f"{name}: refused {sorted({code for code, _ in model_errors})}")
        return None

    @staticmethod
    def pick(data: st.DataObject, label: str, preferred: list[T], others: list[T]) -> T:
        """Mostly one of `preferred` (where the rule can do its work), sometimes one of
        `others` (where it must refuse or do nothing). Lists in creation order, so a
        replayed example picks the same objects."""
        productive = st.sampled_from([True, True, True, False])  # uniform, unlike integers()
        if not others or (preferred and data.draw(productive, label=f"{label} productive")):
            return data.draw(st.sampled_from(preferred), label=label)
        return data.draw(st.sampled_from(others), label=label)

    def reservation(self, data: st.DataObject, open_cart: bool = False) -> uuid.UUID:
        """Mostly an ACTIVE reservation (with `open_cart`: one not checked out, if any)."""
        every = self.model.reservations
        active = [r for r in every if every[r].status == ACTIVE]
        carts = [r for r in active if self.model.order_of(r) is None]
        wanted = carts if open_cart and carts else active
        return self.pick(data, "reservation", wanted, [r for r in every if r not in wanted])

    def order(self, data: st.DataObject, *wanted: Callable[[MOrder], bool]) -> uuid.UUID:
        """An order matching the first predicate that some order matches."""
        every = self.model.orders
        want = next(w for w in wanted if any(map(w, every.values())))
        return self.pick(
            data,
            "order",
            [o for o in every if want(every[o])],
            [o for o in every if not want(every[o])],
        )

    def refresh_level_ids(self) -> None:
        ids = self.run(level_ids)
        for key, level in self.model.levels.items():
            level.id = ids[key]

    # -- set-up

    @initialize(
        priorities=st.fixed_dictionaries({loc: st.sampled_from([10, 20]) for loc in LOCATIONS}),
        stock=st.fixed_dictionaries(
            {
                (sku, loc): st.sampled_from([3, 5, 2, 0, 6, None])
                for sku in SKUS
                for loc in LOCATIONS
            }
        ),
        backorders=POLICIES,
    )
    def catalog(
        self,
        priorities: dict[str, int],
        stock: dict[LevelKey, int | None],
        backorders: dict[str, int | None],
    ) -> None:
        """`backorders`: the CONTINUE SKUs and their limits (ADR 0018); others are DENY."""

        async def make(session: AsyncSession) -> Catalog:
            catalog = await make_stock(session, priorities, stock)
            for sku, limit in backorders.items():
                await session.execute(_CONTINUE, {"sku": sku, "limit": limit})
            return catalog

        catalog = self.run(make)
        self.model = Model(priorities, dict(catalog.locations))
        self.model.limits = dict(backorders)
        self.last_movement_id = 0  # identities restarted with the tables
        for key, units in stock.items():
            if units is not None:
                self.model.levels[key] = MLevel(id=-1)
                if units:
                    self.model.move("RECEIPT", key, on_hand=units)
        self.refresh_level_ids()

    # -- storefront

    @rule(
        lines=st.lists(st.tuples(skus, quantities), min_size=1, max_size=3),
        ttl=st.sampled_from([600, 900, 1800, 3600, 7200, 600, 900, 3600, 0]),  # 0 is refused
    )
    def reserve(self, lines: list[tuple[str, int]], ttl: int) -> None:
        async def work(session: AsyncSession) -> tuple[uuid.UUID, datetime]:
            rid = await reservations.reserve(
                UnitOfWork(session, actor="system"),
                [LineRequest(s, q) for s, q in lines],
                limits=LIMITS,
                ttl_seconds=ttl,
            )
            return rid, (await session.execute(_EXPIRES_AT, {"id": rid})).scalar_one()

        made, errors = self.attempt(work)
        plan = self.expect("reserve", errors, lambda: self.model.reserve(lines, ttl))
        if plan is not None and made is not None:
            self.model.add_reservation(made[0], plan, made[1])

    @rule(sku=skus, offset=st.sampled_from([0, -1, 1]))
    def reserve_boundary(self, sku: str, offset: int) -> None:
        """Reserve everything available of a SKU (one less, one more): drains every level,
        so carts split across locations, and the shortage boundary is exact."""
        available = sum(lv.available for k, lv in self.model.levels.items() if k[0] == sku)
        if available + offset >= 1:
            self.reserve([(sku, available + offset)], 900)

    @precondition(some_active_reservation)
    @rule(
        data=st.data(),
        wanted=st.dictionaries(skus, st.sampled_from([2, 0, 1, 3, 4]), min_size=1, max_size=3),
    )
    def update_reservation(self, data: st.DataObject, wanted: dict[str, int]) -> None:
        rid = self.reservation(data, open_cart=True)

        async def work(session: AsyncSession) -> datetime:
            await reservations.update_reservation(
                UnitOfWork(session, actor="system"),
                rid,
                [LineRequest(s, q) for s, q in wanted.items()],
                limits=LIMITS,
            )
            return (await session.execute(_EXPIRES_AT, {"id": rid})).scalar_one()

        expires_at, errors = self.attempt(work)
        changes = self.expect("update", errors, lambda: self.model.update(rid, wanted))
        if changes is not None and expires_at is not None:
            self.model.apply_update(rid, changes, expires_at)

    @precondition(some_active_reservation)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        rid = self.reservation(data)
        _, errors = self.attempt(
            lambda s: reservations.release_reservation(UnitOfWork(s, actor="system"), rid)
        )
        self.expect("release", errors, lambda: self.model.release(rid))

    @precondition(lambda machine: bool(machine.model.limits))
    @rule(data=st.data(), extra=st.sampled_from([1, 2, 3]))
    def preorder(self, data: st.DataObject, extra: int) -> None:
        """A CONTINUE SKU bought beyond its stock (ADR 0018): reserve, check out and pay,
        each step in its own transaction and compared with the model."""
        sku = data.draw(st.sampled_from(sorted(self.model.limits)), label="sku")
        levels = [lv for k, lv in self.model.levels.items() if k[0] == sku]
        before = set(self.model.reservations)
        self.reserve([(sku, max(sum(lv.available for lv in levels), 0) + extra)], 900)
        made = [rid for rid in self.model.reservations if rid not in before]
        if not made:  # refused: beyond the limit
            return
        self.check_out(made[0])
        [oid] = [o for o, order in self.model.orders.items() if order.reservation_id == made[0]]
        outcome, errors = self.attempt(
            lambda s: payment_outcomes.payment_succeeded(UnitOfWork(s, actor="system"), oid)
        )
        assert errors == []
        assert outcome == self.model.pay(oid)

    @precondition(some_active_reservation)
    @rule(data=st.data())
    def checkout(self, data: st.DataObject) -> None:
        self.check_out(self.reservation(data, open_cart=True))

    def check_out(self, rid: uuid.UUID) -> None:
        """checkout of `rid`, in the database and in the model."""

        async def work(session: AsyncSession) -> tuple[uuid.UUID, datetime]:
            result = await checkout.checkout(
                UnitOfWork(session, actor="system"),
                rid,
                provider=PROVIDER,
                payment_window_seconds=PAYMENT_WINDOW_SECONDS,
            )
            return result.order_id, (await session.execute(_NOW)).scalar_one()

        done, errors = self.attempt(work)
        oid, now = done if done is not None else (None, None)
        expected = self.expect("checkout", errors, lambda: self.model.checkout(rid, oid, now))
        assert oid == expected

    # -- payment outcomes

    @precondition(some_order(payable))
    @rule(data=st.data(), wrong_amount=st.sampled_from([False] * 5 + [True]))
    def payment_succeeded(self, data: st.DataObject, wrong_amount: bool) -> None:
        oid = self.order(data, pending, payable)
        amount = self.model.orders[oid].total + 1 if wrong_amount else None
        outcome, errors = self.attempt(
            lambda s: payment_outcomes.payment_succeeded(
                UnitOfWork(s, actor="system"), oid, amount=amount
            )
        )
        assert errors == []
        assert outcome == self.model.pay(oid, wrong_amount=wrong_amount)
        event(f"pay: {outcome}")

    @precondition(some_order(lambda o: True))
    @rule(data=st.data())
    def payment_noise(self, data: st.DataObject) -> None:
        """Webhook events that change nothing: another success for an order whose payment
        was applied (sold, or flagged; then maybe refunded or cancelled) is `already_paid`
        (each unit is sold at most once); a declined card on any other order is recorded
        and keeps the reservation (the buyer may retry)."""
        oid = self.order(data, lambda o: o.payment_received, lambda o: True)
        if self.model.orders[oid].payment_received:
            outcome, errors = self.attempt(
                lambda s: payment_outcomes.payment_succeeded(UnitOfWork(s, actor="system"), oid)
            )
            assert (outcome, errors) == ("already_paid", [])
            assert self.model.pay(oid) == "already_paid"
            event(f"redelivered: {self.model.orders[oid].status}")
        else:
            outcome, errors = self.attempt(
                lambda s: payment_outcomes.payment_failed(
                    UnitOfWork(s, actor="system"), oid, error="card_declined"
                )
            )
            assert (outcome, errors) == ("recorded", [])
            event(f"declined: {self.model.orders[oid].status}")

    # -- expiry

    @precondition(some_active_reservation)
    @rule(data=st.data(), far_ahead=st.sampled_from([False] * 4 + [True]))
    def expire(self, data: st.DataObject, far_ahead: bool) -> None:
        """Sweep with `now` at the chosen reservation's expiry (or a day ahead)."""
        rid = self.reservation(data)
        now = (
            datetime.now(UTC) + timedelta(days=1)
            if far_ahead
            else self.model.reservations[rid].expires_at
        )
        swept, errors = self.attempt(
            lambda s: expiry.expire_reservations(UnitOfWork(s, actor="system"), now=now)
        )
        assert errors == []
        assert swept is not None
        assert not swept.skipped_lock
        expired, cancelled = self.model.expire(now)
        assert set(swept.expired) == expired
        assert set(swept.cancelled_orders) == cancelled
        event(f"expire: {min(len(expired), 2)}+ reservations, {min(len(cancelled), 1)}+ orders")

    # -- admin

    @precondition(some_order(refundable))
    @rule(
        data=st.data(),
        partial=st.sampled_from([True, True, False]),
        restock=st.sampled_from([True, True, False]),
    )
    def refund_order(self, data: st.DataObject, partial: bool, restock: bool) -> None:
        """Refund some units, mostly of SKUs the order has (others must be refused), or
        every unit not refunded yet (`lines` null)."""
        oid = self.order(data, refundable)
        lines = None
        if partial:
            sku = st.one_of(st.sampled_from(list(self.model.orders[oid].lines)), skus)
            lines = data.draw(
                st.lists(st.tuples(sku, st.sampled_from([1, 2, 1, 3])), min_size=1, max_size=2),
                label="lines",
            )
        self.refund(oid, lines, restock=restock)

    def refund(self, oid: uuid.UUID, lines: list[tuple[str, int]] | None, *, restock: bool) -> None:
        requests = None if lines is None else [LineRequest(s, q) for s, q in lines]
        _, errors = self.attempt(
            lambda s: refunds.refund_order(
                UnitOfWork(s, actor="system"),
                oid,
                provider=PROVIDER,
                lines=requests,
                restock=restock,
            )
        )
        order = self.model.orders[oid]
        split = any(len(allocs) > 1 for allocs in order.allocations.values())
        if self.expect("refund", errors, lambda: self.model.refund(oid, lines, restock=restock)):
            event(f"refund: {'partial' if lines else 'rest'}, restock={restock}, split={split}")

    @precondition(some_order(cancellable))
    @rule(data=st.data(), by_admin=st.booleans())
    def cancel(self, data: st.DataObject, by_admin: bool) -> None:
        """An admin cancels an order (cancelOrder), or Stripe reports its payment
        cancelled (payment_intent.canceled: only a pending order is affected)."""
        if by_admin:
            oid = self.order(data, cancellable)
            _, errors = self.attempt(
                lambda s: refunds.cancel_order(
                    UnitOfWork(s, actor="system"), oid, provider=PROVIDER
                )
            )
            self.expect("cancel_order", errors, lambda: self.model.cancel_order(oid))
        else:
            oid = self.order(data, pending, cancellable)
            outcome, errors = self.attempt(
                lambda s: payment_outcomes.payment_canceled(UnitOfWork(s, actor="system"), oid)
            )
            assert errors == []
            assert outcome == self.model.payment_canceled(oid)
            event(f"payment_canceled: {outcome}")

    @precondition(lambda machine: bool(machine.model.waiting_levels()))
    @rule(data=st.data(), units=st.sampled_from([1, 2, 4]))
    def receive_for_backorders(self, data: st.DataObject, units: int) -> None:
        """A receipt where paid orders wait (ADR 0018): adjustStock RECEIVED there."""
        sku, location = data.draw(st.sampled_from(self.model.waiting_levels()), label="level")
        loc = str(self.model.location_ids[location])
        reason = adjust.AdjustmentReason.RECEIVED
        _, errors = self.attempt(
            lambda s: adjust.adjust_stock(
                UnitOfWork(s, actor="system"), sku=sku, location_id=loc, delta=units, reason=reason
            )
        )
        self.expect("receive", errors, lambda: self.model.adjust((sku, location), units, reason))

    @rule(
        sku=skus,
        location=locations,
        change=st.one_of(
            st.tuples(st.just("adjust"), st.sampled_from([3, -1, 1, -2, 2, 5, -3])),
            st.tuples(st.just("set"), on_hand_figures),
        ),
        reason=st.sampled_from(adjust.AdjustmentReason),
    )
    def change_stock(
        self, sku: str, location: str, change: tuple[str, int], reason: adjust.AdjustmentReason
    ) -> None:
        """adjustStock by a delta, or setStock to a counted figure (one rule: they share
        the swarm's budget with the order rules)."""
        loc = str(self.model.location_ids[location])
        how, figure = change
        if how == "adjust":
            _, errors = self.attempt(
                lambda s: adjust.adjust_stock(
                    UnitOfWork(s, actor="system"),
                    sku=sku,
                    location_id=loc,
                    delta=figure,
                    reason=reason,
                )
            )
            self.expect(
                "adjust", errors, lambda: self.model.adjust((sku, location), figure, reason)
            )
        else:
            _, errors = self.attempt(
                lambda s: adjust.set_stock(
                    UnitOfWork(s, actor="system"), sku=sku, location_id=loc, on_hand=figure
                )
            )
            self.expect("set", errors, lambda: self.model.set((sku, location), figure))
        self.refresh_level_ids()

    @rule(
        sku=skus,
        location=locations,
        quantity=st.sampled_from([1, 2, 3, 5]),
        states=st.sampled_from(STATE_MOVES),
    )
    def move_state(
        self, sku: str, location: str, quantity: int, states: tuple[StockState, StockState]
    ) -> None:
        """moveStockState between AVAILABLE and a state, or between two states."""
        loc = str(self.model.location_ids[location])
        source, target = states
        _, errors = self.attempt(
            lambda s: stock_states.move_stock_state(
                UnitOfWork(s, actor="system"),
                sku=sku,
                location_id=loc,
                quantity=quantity,
                source=source,
                target=target,
            )
        )
        self.expect(
            "move_state",
            errors,
            lambda: self.model.move_state((sku, location), quantity, source, target),
        )
        self.refresh_level_ids()

    # -- after every step

    @invariant()
    def database_matches_model(self) -> None:
        snap = self.run(lambda s: snapshot(s, self.last_movement_id))
        self.last_movement_id = snap.last_movement_id
        assert snap.violations == []
        model = self.model
        assert sorted(snap.moves) == sorted(model.moves), "ledger rows of the last step"
        model.moves.clear()
        assert snap.levels == {
            k: (lv.on_hand, lv.reserved, lv.backordered) for k, lv in model.levels.items()
        }
        assert snap.states == {
            k: tuple(lv.states[s] for s in UNAVAILABLE) for k, lv in model.levels.items()
        }
        assert snap.reservations == {rid: r.status for rid, r in model.reservations.items()}
        assert snap.orders == {oid: (o.status, o.total) for oid, o in model.orders.items()}
        assert snap.order_lines == {
            oid: {sku: (q, o.refunded.get(sku, 0)) for sku, q in o.lines.items()}
            for oid, o in model.orders.items()
        }
        assert snap.allocations == {
            oid: sorted(_flatten(o.allocations.items()))
            for oid, o in model.orders.items()
            if o.allocations
        }


def _flatten(
    allocations: Iterable[tuple[str, list[MAllocation]]],
) -> list[tuple[str, LevelKey, int, int, int]]:
    return [
        (sku, a.key, a.quantity, a.returned, a.waiting)
        for sku, allocs in allocations
        for a in allocs
    ]


@pytest.mark.slow
def test_stock_domain_matches_model(database_url: str) -> None:
    with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
        engine = create_engine(database_url, pool_size=2, max_overflow=2)
        sessions = make_sessionmaker(engine)
        try:
            run_state_machine_as_test(
                lambda: StockMachine(runner, sessions),
                settings=settings(
                    max_examples=80,
                    stateful_step_count=30,
                    deadline=None,
                    suppress_health_check=[HealthCheck.too_slow],
                ),
            )
        finally:
            runner.run(engine.dispose())
