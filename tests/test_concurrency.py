"""Concurrency scenarios against the real PostgreSQL (DESIGN.md, "Transactions and concurrency").

Every scenario fires many transactions at once, each on its own pooled connection
(`tests.support.scenarios.run_concurrently`), then checks DESIGN.md invariants 1 and 2
(`find_violations`) and counts read back from the database. Interleavings vary from
run to run; the assertions hold for every interleaving: exact counts where the rules
fix them, otherwise the rule that relates the outcomes to the final state.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.domain.errors import (
    IdempotencyConflict,
    InvalidOrderState,
    ReservationNotActive,
    StockChanged,
)
from gql_inventory.domain.idempotency import IdempotencyKey
from gql_inventory.domain.shortages import (
    InsufficientStock,
)
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.orders import checkout, orders, payment_outcomes, refunds
from gql_inventory.payments.offline import OfflinePaymentProvider
from gql_inventory.stock import adjust, expiry, reservations
from gql_inventory.stock.adjust import AdjustmentReason, AdjustResult
from gql_inventory.stock.expiry import SweepResult
from gql_inventory.stock.levels import LineRequest
from gql_inventory.stock.reservations import ReservationLimits
from tests.support.catalog import Catalog, make_location, make_product
from tests.support.invariants import assert_invariants
from tests.support.scenarios import (
    Outcome,
    Work,
    assert_history_sound,
    assert_only,
    delayed,
    fetch_all,
    fetch_one,
    levels_of,
    movement_counts,
    run_concurrently,
    tally,
)

LIMITS = ReservationLimits()
PROVIDER = OfflinePaymentProvider()

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def catalog(sessions: Sessions) -> Catalog:
    """Three locations, in allocation order Main (the default), Store, Back; no products.

    Overrides the shared `catalog` (tests/support/fixtures.py) for this file."""
    catalog = Catalog()
    async with sessions.begin() as session:
        catalog.locations["Main"] = await make_location(session, "Main", priority=10, default=True)
        catalog.locations["Store"] = await make_location(session, "Store", priority=20)
        catalog.locations["Back"] = await make_location(session, "Back", priority=30)
    return catalog


async def add_sku(
    sessions: Sessions, catalog: Catalog, sku: str, stock: dict[str, int], price: int = 1000
) -> None:
    """One product with one variant `sku`, received as `stock` ({location: units})."""
    async with sessions.begin() as session:
        await make_product(
            session, catalog, sku.lower(), sku, [(sku, "Default Title", price, stock)]
        )


def reserve_work(lines: Sequence[LineRequest], **kwargs: Any) -> Work[uuid.UUID]:
    """A transaction body: `reservations.reserve` of `lines` (default limits)."""

    async def work(session: AsyncSession) -> uuid.UUID:
        return await reservations.reserve(
            UnitOfWork(session, actor="system"), lines, limits=LIMITS, **kwargs
        )

    return work


def release_work(reservation_id: uuid.UUID) -> Work[uuid.UUID]:
    """A transaction body: the buyer releases a reservation."""

    async def work(session: AsyncSession) -> uuid.UUID:
        return await reservations.release_reservation(
            UnitOfWork(session, actor="system"), reservation_id
        )

    return work


def sweep_work(now: datetime, *, limit: int = 500) -> Work[SweepResult]:
    """A transaction body: one expiry sweep as if the clock read `now`."""

    async def work(session: AsyncSession) -> SweepResult:
        return await expiry.expire_reservations(
            UnitOfWork(session, actor="system"), now=now, limit=limit
        )

    return work


def cart_lines(cart: dict[str, int]) -> list[LineRequest]:
    """Request lines of a cart, in the cart's (insertion) order."""
    return [LineRequest(sku, quantity) for sku, quantity in cart.items()]


async def held_by_reservation(sessions: Sessions, *, status: str | None = None) -> dict[Any, Any]:
    """``{reservation_id: {sku: units}}`` over the lines of reservations (of one `status`)."""
    rows = await fetch_all(
        sessions,
        """SELECT r.id, v.sku, sum(rl.quantity) AS units
             FROM reservations r
             JOIN reservation_lines rl ON rl.reservation_id = r.id
             JOIN variants v ON v.id = rl.variant_id
            WHERE CAST(:status AS text) IS NULL OR r.status = :status
            GROUP BY r.id, v.sku""",
        status=status,
    )
    held: dict[Any, dict[str, int]] = {}
    for r in rows:
        held.setdefault(r.id, {})[r.sku] = int(r.units)
    return held


async def totals_by_sku(sessions: Sessions) -> dict[str, tuple[int, int]]:
    """``{sku: (on_hand, reserved)}`` summed over locations."""
    rows = await fetch_all(
        sessions,
        """SELECT v.sku, sum(sl.on_hand) AS on_hand, sum(sl.reserved) AS reserved
             FROM stock_levels sl JOIN variants v ON v.id = sl.variant_id GROUP BY v.sku""",
    )
    return {r.sku: (int(r.on_hand), int(r.reserved)) for r in rows}


# ---------------------------------------------------------------- 1. a hot SKU


@pytest.mark.parametrize(
    "stock",
    [{"Main": 100}, {"Main": 40, "Store": 35, "Back": 25}],
    ids=["one-location", "three-locations"],
)
async def test_500_buyers_race_for_100_units(
    sessions: Sessions, catalog: Catalog, stock: dict[str, int]
) -> None:
    await add_sku(sessions, catalog, "HOT", stock)

    outcomes = await run_concurrently(sessions, [reserve_work([LineRequest("HOT", 1)])] * 500)

    assert_only(outcomes, InsufficientStock)
    print(f"\n500 attempts on {stock}: {dict(tally(outcomes))}")
    assert tally(outcomes) == {"ok": 100, "INSUFFICIENT_STOCK": 400}
    refusals = [o.error for o in outcomes if isinstance(o.error, InsufficientStock)]
    assert {(e.sku, e.requested, e.available) for e in refusals} == {("HOT", 1, 0)}
    assert len({o.value for o in outcomes if o.ok}) == 100
    levels = await levels_of(sessions, "HOT")
    assert [(lv.location, lv.on_hand, lv.reserved) for lv in levels] == [
        (name, units, units) for name, units in stock.items()
    ]
    assert await movement_counts(sessions, "HOT") == {"RECEIPT": len(stock), "RESERVATION": 100}
    held = await fetch_one(
        sessions,
        """SELECT count(DISTINCT r.id) AS reservations, count(rl.id) AS lines,
                  sum(rl.quantity) AS units
             FROM reservations r JOIN reservation_lines rl ON rl.reservation_id = r.id
            WHERE r.status = 'ACTIVE'""",
    )
    assert (held.reservations, held.lines, held.units) == (100, 100, 100)
    await assert_history_sound(sessions, "HOT")
    await assert_invariants(sessions)


# ---------------------------------------------------------------- 2. overlapping carts


@pytest.mark.parametrize("units_per_location", [500, 30], ids=["plenty", "scarce"])
async def test_carts_in_opposite_orders_never_deadlock(
    sessions: Sessions, catalog: Catalog, units_per_location: int
) -> None:
    """A,B against B,A carts, with the previous round's carts released at the same time."""
    stock = {"Main": units_per_location, "Store": units_per_location}
    total = sum(stock.values())
    await add_sku(sessions, catalog, "A", stock)
    await add_sku(sessions, catalog, "B", stock)
    ab = [LineRequest("A", 1), LineRequest("B", 1)]
    ba = [LineRequest("B", 1), LineRequest("A", 1)]
    active: list[uuid.UUID] = []
    carts_ok = 0
    for round_ in range(3):
        works = [reserve_work(ab if i % 2 else ba) for i in range(150)]
        releases = [release_work(rid) for rid in active]
        outcomes = await run_concurrently(sessions, works + releases)

        assert_only(outcomes, InsufficientStock)
        cart_outcomes, release_outcomes = outcomes[: len(works)], outcomes[len(works) :]
        print(
            f"\nA,B/B,A round {round_} ({total} units each): carts {dict(tally(cart_outcomes))},"
            f" releases {dict(tally(release_outcomes))}"
        )
        assert all(o.ok for o in release_outcomes)
        active = [o.value for o in cart_outcomes if o.value is not None]
        carts_ok += len(active)
        if total >= 150:
            assert len(active) == 150
        elif round_ == 0:
            assert len(active) == total  # nothing released yet: exactly the stock
        else:
            assert len(active) <= total
        assert await totals_by_sku(sessions) == {
            "A": (total, len(active)),
            "B": (total, len(active)),
        }
        assert set(await held_by_reservation(sessions, status="ACTIVE")) == set(active)
        await assert_invariants(sessions)
    for sku in ("A", "B"):
        counts = await movement_counts(sessions, sku)
        # one ledger row per level touched: every cart here took its unit from one level
        assert counts["RESERVATION"] == carts_ok
        assert counts["RELEASE"] == carts_ok - len(active)
        await assert_history_sound(sessions, sku)
    reservations_made = await fetch_one(sessions, "SELECT count(*) AS n FROM reservations")
    assert reservations_made.n == carts_ok


FIVE_SKUS = {
    "P1": {"Main": 40, "Store": 20},
    "P2": {"Main": 50},
    "P3": {"Store": 30, "Back": 30},
    "P4": {"Main": 25, "Store": 25, "Back": 10},
    "P5": {"Back": 60},
}


def random_cart(rng: random.Random, skus: Sequence[str]) -> dict[str, int]:
    """2 to 5 distinct SKUs in a random order, 1 to 3 units each."""
    return {sku: rng.randint(1, 3) for sku in rng.sample(list(skus), rng.randint(2, 5))}


async def test_random_carts_over_five_skus(sessions: Sessions, catalog: Catalog) -> None:
    """Carts over random permutations of 5 SKUs (some split across locations), racing
    each other and the release of half the standing carts: all or nothing, no deadlock."""
    for sku, stock in FIVE_SKUS.items():
        await add_sku(sessions, catalog, sku, stock)
    rng = random.Random(20_240_607)
    made: dict[uuid.UUID, dict[str, int]] = {}
    active: set[uuid.UUID] = set()
    released: set[uuid.UUID] = set()
    seen: Counter[str] = Counter()
    for _ in range(4):
        carts = [random_cart(rng, list(FIVE_SKUS)) for _ in range(120)]
        to_release = rng.sample(sorted(active), len(active) // 2)
        jobs: list[tuple[str, Any, Work[uuid.UUID]]] = [
            ("cart", cart, reserve_work(cart_lines(cart))) for cart in carts
        ] + [("release", rid, release_work(rid)) for rid in to_release]
        rng.shuffle(jobs)
        outcomes = await run_concurrently(sessions, [work for _, _, work in jobs])

        assert_only(outcomes, InsufficientStock)
        seen.update(tally(outcomes))
        for (kind, payload, _), outcome in zip(jobs, outcomes, strict=True):
            if kind == "release":
                assert outcome.value == payload
                active.discard(payload)
                released.add(payload)
            elif outcome.value is not None:
                made[outcome.value] = payload
                active.add(outcome.value)
            else:  # refused: every error names a SKU of the cart that really was short
                errors = getattr(outcome.error, "errors", [outcome.error])
                assert errors
                for error in errors:
                    assert error.requested == payload[error.sku] > error.available
        assert await held_by_reservation(sessions, status="ACTIVE") == {
            rid: made[rid] for rid in active
        }
        reserved = Counter[str]()
        for rid in active:
            reserved.update(made[rid])
        assert await totals_by_sku(sessions) == {
            sku: (sum(stock.values()), reserved[sku]) for sku, stock in FIVE_SKUS.items()
        }
        await assert_invariants(sessions)

    # every cart that succeeded is in the database with exactly its lines, nothing else is
    assert await held_by_reservation(sessions) == made
    statuses = await fetch_all(
        sessions, "SELECT status, count(*) AS n FROM reservations GROUP BY status"
    )
    assert {r.status: r.n for r in statuses} == {
        k: v for k, v in {"ACTIVE": len(active), "RELEASED": len(released)}.items() if v
    }
    line_rows = await fetch_one(
        sessions,
        """SELECT count(*) AS lines,
                  count(*) FILTER (WHERE r.status = 'RELEASED') AS released_lines
             FROM reservation_lines rl JOIN reservations r ON r.id = rl.reservation_id""",
    )
    kinds = Counter[str]()
    for sku in FIVE_SKUS:
        kinds.update(await movement_counts(sessions, sku))
        await assert_history_sound(sessions, sku)
    assert kinds["RESERVATION"] == line_rows.lines
    assert kinds["RELEASE"] == line_rows.released_lines
    print(f"\nrandom carts over 5 SKUs: {dict(seen)}; {len(made)} carts, {len(released)} released")
    assert seen["ok"] == len(made) + len(released)
    assert seen["INSUFFICIENT_STOCK"] > 0  # the stock really was contended


# ---------------------------------------------------------------- 3. payment, cancel, expiry


def race_works(order_id: uuid.UUID, sku: str, quantity: int, now: datetime) -> dict[str, Work[Any]]:
    """Everything that can end a checked-out reservation, plus a rival buyer of its SKU."""

    async def pay(session: AsyncSession) -> str:
        return await payment_outcomes.payment_succeeded(
            UnitOfWork(session, actor="system"), order_id, reference=f"evt_ok_{order_id}"
        )

    async def canceled(session: AsyncSession) -> str:
        return await payment_outcomes.payment_canceled(
            UnitOfWork(session, actor="system"), order_id, reference=f"evt_cx_{order_id}"
        )

    async def cancel(session: AsyncSession) -> uuid.UUID:
        return await refunds.cancel_order(
            UnitOfWork(session, actor="system"), order_id, provider=PROVIDER, reason="race"
        )

    return {
        "pay": pay,
        "canceled": canceled,
        "cancel": cancel,
        "expire": sweep_work(now),
        "rival": reserve_work([LineRequest(sku, quantity)]),
    }


async def order_ledger(
    sessions: Sessions, reservation_id: uuid.UUID, order_id: uuid.UUID
) -> dict[str, int]:
    """Units moved for one reservation and its order, by what moved them."""
    row = await fetch_one(
        sessions,
        """SELECT
             coalesce(sum(-on_hand_delta) FILTER (
               WHERE kind = 'SALE' AND reference = :o AND reserved_delta < 0), 0) AS sold_reserved,
             coalesce(sum(-on_hand_delta) FILTER (
               WHERE kind = 'SALE' AND reference = :o AND reserved_delta = 0), 0) AS sold_late,
             coalesce(sum(on_hand_delta) FILTER (
               WHERE kind = 'RETURN' AND reference = :o), 0) AS returned,
             coalesce(sum(-reserved_delta) FILTER (
               WHERE kind = 'RELEASE' AND reference = :r), 0) AS released,
             coalesce(sum(-reserved_delta) FILTER (
               WHERE kind = 'EXPIRY' AND reference = :r), 0) AS expired,
             coalesce(sum(reserved_delta) FILTER (
               WHERE kind = 'RESERVATION' AND reference = :r), 0) AS reserved
           FROM stock_movements WHERE reference IN (:o, :r)""",
        o=orders.order_reference(order_id),
        r=reservations.reference_of(reservation_id),
    )
    return {key: int(value) for key, value in row._mapping.items()}


RACE_ROUNDS = 40


async def test_payment_cancel_and_expiry_race(sessions: Sessions, catalog: Catalog) -> None:
    """payment_succeeded, payment_canceled, cancel_order and an expiry sweep fire at one
    checked-out reservation at once (with a rival buyer of the same SKU), 40 times.

    The rules, from orders.py: the reservation ends exactly once (COMPLETED by a sale,
    RELEASED by either cancel, or EXPIRED); a payment arriving after it ended is a late
    sale from what is available (order PAID) or, when the rival took the units,
    NEEDS_ATTENTION with nothing sold; cancel_order of a PAID order refunds it with
    restock and ends CANCELLED. So each unit is sold at most once, and a CANCELLED
    order has returned every unit it sold.
    """
    rng = random.Random(31_337)
    quantity = 2
    seen: Counter[tuple[str, str, str]] = Counter()
    for round_ in range(RACE_ROUNDS):
        sku = f"RACE-{round_}"
        # even rounds: no spare unit, so a rival can only buy what a cancel gave back
        stock = quantity if round_ % 2 == 0 else quantity + 1
        await add_sku(sessions, catalog, sku, {"Main": stock})
        async with sessions.begin() as session:
            rid = await reservations.reserve(
                UnitOfWork(session, actor="system"), [LineRequest(sku, quantity)], limits=LIMITS
            )
        async with sessions.begin() as session:
            oid = (
                await checkout.checkout(UnitOfWork(session, actor="system"), rid, provider=PROVIDER)
            ).order_id
        works = race_works(oid, sku, quantity, datetime.now(UTC) + timedelta(days=1))
        names = list(works)
        rng.shuffle(names)
        # random head starts of up to 8 ms, so that each contender sometimes wins the lock
        results = await run_concurrently(
            sessions, [delayed(works[name], rng.uniform(0, 0.008)) for name in names]
        )
        out: dict[str, Outcome[Any]] = dict(zip(names, results, strict=True))

        assert_only(results, InsufficientStock, InvalidOrderState)
        assert out["pay"].ok
        assert out["canceled"].ok
        assert out["expire"].ok
        assert out["cancel"].ok or isinstance(out["cancel"].error, InvalidOrderState)
        assert out["rival"].ok or isinstance(out["rival"].error, InsufficientStock)
        sweep: SweepResult = out["expire"].value
        assert not (sweep.skipped_lock and sweep.expired)  # a skipped sweep does nothing

        state = await fetch_one(
            sessions,
            """SELECT r.status AS reservation, o.status AS order_status,
                      (SELECT count(*) FROM refunds f WHERE f.order_id = o.id) AS refunds
                 FROM orders o JOIN reservations r ON r.id = o.reservation_id
                WHERE o.id = :o""",
            o=oid,
        )
        moved = await order_ledger(sessions, rid, oid)
        pay = out["pay"].value
        seen[(state.reservation, state.order_status, pay)] += 1
        context = (round_, names, state, moved, {n: o.value or o.error for n, o in out.items()})

        # the reservation ended exactly once, by exactly one of sale, release, expiry
        assert moved["reserved"] == quantity, context
        endings = {
            "COMPLETED": moved["sold_reserved"],
            "RELEASED": moved["released"],
            "EXPIRED": moved["expired"],
        }
        assert endings == {k: quantity if k == state.reservation else 0 for k in endings}, context
        assert (rid in sweep.expired) == (state.reservation == "EXPIRED"), context
        assert (oid in sweep.cancelled_orders) == (state.reservation == "EXPIRED"), context
        if out["canceled"].value == "cancelled":
            assert state.reservation == "RELEASED", context
        # each unit sold at most once: a late sale only after the reservation ended otherwise
        sold = moved["sold_reserved"] + moved["sold_late"]
        assert sold in (0, quantity), context
        assert moved["sold_late"] == 0 or state.reservation in ("RELEASED", "EXPIRED"), context
        assert pay == {"COMPLETED": "sold"}.get(state.reservation, pay), context
        assert (pay == "sold") == (moved["sold_reserved"] == quantity), context
        assert (pay == "sold_late") == (moved["sold_late"] == quantity), context
        assert pay in ("sold", "sold_late", "needs_attention"), context
        # the order's status agrees with the ledger
        if state.order_status == "PAID":
            assert sold == quantity, context
            assert moved["returned"] == 0, context
            assert state.refunds == 0, context
        elif state.order_status == "CANCELLED":
            # the payment always lands here, so CANCELLED means cancelled after it: the money
            # went back in one refund, with the units when they had been sold
            assert moved["returned"] == sold, context
            assert state.refunds == 1, context
            assert out["cancel"].ok or sold == 0, context
        elif state.order_status == "NEEDS_ATTENTION":
            assert pay == "needs_attention", context
            assert sold == moved["returned"] == 0, context
            assert out["rival"].ok, context  # only the rival can have taken the units
        else:
            raise AssertionError(context)
        # the level: what was sold is gone, what was returned is back, the rival holds its units
        levels = await levels_of(sessions, sku)
        rival_status = None
        if out["rival"].ok:
            rival = await fetch_one(
                sessions, "SELECT status FROM reservations WHERE id = :r", r=out["rival"].value
            )
            rival_status = rival.status
        # the sweep runs as of tomorrow: a rival cart committed before it is expired with the rest
        assert rival_status in (None, "ACTIVE", "EXPIRED"), context
        assert rival_status != "EXPIRED" or out["rival"].value in sweep.expired, context
        rival_holds = quantity if rival_status == "ACTIVE" else 0
        assert [(lv.on_hand, lv.reserved) for lv in levels] == [
            (stock - sold + moved["returned"], rival_holds)
        ], context
        await assert_history_sound(sessions, sku)
        await assert_invariants(sessions)
        if rival_status == "ACTIVE":  # end the rival's cart so later sweeps find nothing of it
            async with sessions.begin() as session:
                await reservations.release_reservation(
                    UnitOfWork(session, actor="system"), out["rival"].value
                )
    print(f"\npayment/cancel/expiry race outcomes: {dict(seen)}")
    assert sum(seen.values()) == RACE_ROUNDS


# ---------------------------------------------------------------- 4. adjustments vs reservations


def adjust_work(delta: int, reason: AdjustmentReason, **kwargs: Any) -> Work[AdjustResult]:
    """A transaction body: an admin adjustment of SKU ADJ at the default location."""

    async def work(session: AsyncSession) -> AdjustResult:
        return await adjust.adjust_stock(
            UnitOfWork(session, actor="system"),
            sku="ADJ",
            location_id=None,
            delta=delta,
            reason=reason,
            **kwargs,
        )

    return work


def count_work(on_hand: int) -> Work[AdjustResult]:
    """A transaction body: a cycle count of SKU ADJ at the default location."""

    async def work(session: AsyncSession) -> AdjustResult:
        return await adjust.set_stock(
            UnitOfWork(session, actor="system"), sku="ADJ", location_id=None, on_hand=on_hand
        )

    return work


async def test_negative_adjustments_race_reservations(sessions: Sessions, catalog: Catalog) -> None:
    """Removals, receipts, counts and compare-and-set adjustments race reservations and
    releases on one level: on hand never goes below reserved and no CHECK ever fires."""
    await add_sku(sessions, catalog, "ADJ", {"Main": 200})
    standing: list[uuid.UUID] = []
    async with sessions.begin() as session:
        for _ in range(20):
            standing.append(
                await reservations.reserve(
                    UnitOfWork(session, actor="system"), [LineRequest("ADJ", 2)], limits=LIMITS
                )
            )
    rng = random.Random(4)
    reservations_made = len(standing)
    for round_ in range(2):
        jobs: list[tuple[str, Work[Any]]] = (
            [("reserve", reserve_work([LineRequest("ADJ", 1)])) for _ in range(70)]
            + [("remove", adjust_work(-3, AdjustmentReason.DAMAGED)) for _ in range(60)]
            + [("receive", adjust_work(2, AdjustmentReason.RECEIVED)) for _ in range(10)]
            + [("count", count_work(n)) for n in (60, 150, 10, 90, 0)]
            + [
                ("cas", adjust_work(-1, AdjustmentReason.LOST, expected_on_hand=200))
                for _ in range(5)
            ]
            + [("release", release_work(rid)) for rid in standing[round_ * 10 : round_ * 10 + 10]]
        )
        rng.shuffle(jobs)
        before = await totals_by_sku(sessions)
        movements_before = await fetch_one(sessions, "SELECT max(id) AS id FROM stock_movements")
        outcomes = await run_concurrently(sessions, [work for _, work in jobs])

        assert_only(outcomes, InsufficientStock, StockChanged)
        by_kind: dict[str, list[Outcome[Any]]] = {}
        for (kind, _), outcome in zip(jobs, outcomes, strict=True):
            by_kind.setdefault(kind, []).append(outcome)
        assert all(o.ok for o in by_kind["release"] + by_kind["receive"])
        for o in by_kind["remove"]:
            assert o.ok or (isinstance(o.error, InsufficientStock) and o.error.requested == 3)
        for o in by_kind["cas"]:
            assert o.ok or isinstance(o.error, StockChanged | InsufficientStock)
        for o in by_kind["reserve"]:
            assert o.ok or isinstance(o.error, InsufficientStock)

        # the ledger holds exactly the admin movements that were reported as written
        written = {
            o.value.movement_id
            for kind in ("remove", "receive", "count", "cas")
            for o in by_kind[kind]
            if o.ok and o.value.movement_id is not None
        }
        admin_rows = await fetch_all(
            sessions,
            """SELECT id, on_hand_delta FROM stock_movements
                WHERE id > :after AND kind IN ('ADJUSTMENT', 'RECEIPT', 'COUNT')""",
            after=movements_before.id,
        )
        assert {r.id for r in admin_rows} == written
        reserved_ok = sum(o.ok for o in by_kind["reserve"])
        on_hand, reserved = (await totals_by_sku(sessions))["ADJ"]
        assert on_hand == before["ADJ"][0] + sum(r.on_hand_delta for r in admin_rows)
        assert reserved == before["ADJ"][1] + reserved_ok - 2 * len(by_kind["release"])
        assert 0 <= reserved <= on_hand
        reservations_made += reserved_ok
        counts = await movement_counts(sessions, "ADJ")
        assert counts["RESERVATION"] == reservations_made
        assert counts["RELEASE"] == 10 * (round_ + 1)
        print(
            f"\nadjust race round {round_}: "
            + ", ".join(
                f"{kind} {sum(o.ok for o in group)}/{len(group)} ok"
                for kind, group in sorted(by_kind.items())
            )
            + f"; on hand {on_hand}, reserved {reserved}"
        )
        await assert_history_sound(sessions, "ADJ")
        await assert_invariants(sessions)


# ---------------------------------------------------------------- 5. idempotency keys

KEY_1, KEY_2, KEY_3, KEY_4 = (IdempotencyKey(f"cart-{n}-4f1c2a9e-5b7d") for n in range(1, 5))


async def test_same_idempotency_key_same_input(sessions: Sessions, catalog: Catalog) -> None:
    await add_sku(sessions, catalog, "IDEM", {"Main": 50})
    works = [reserve_work([LineRequest("IDEM", 3)], idempotency_key=KEY_1)] * 20

    outcomes = await run_concurrently(sessions, works)

    assert_only(outcomes)
    assert len({o.value for o in outcomes}) == 1
    made = await fetch_all(sessions, "SELECT id, idempotency_key FROM reservations")
    assert [(r.id, r.idempotency_key) for r in made] == [(outcomes[0].value, KEY_1.value)]
    assert await totals_by_sku(sessions) == {"IDEM": (50, 3)}
    assert (await movement_counts(sessions, "IDEM"))["RESERVATION"] == 1
    records = await fetch_all(sessions, "SELECT scope, key, result FROM idempotency_records")
    assert [(r.scope, r.key, r.result) for r in records] == [
        ("reserveStock", KEY_1.value, {"reservation_id": str(outcomes[0].value)})
    ]
    await assert_invariants(sessions)


async def test_same_idempotency_key_different_inputs(sessions: Sessions, catalog: Catalog) -> None:
    """Whichever input commits first owns the key: the calls with that very input replay
    its result (the same id), every other input is refused with IDEMPOTENCY_CONFLICT."""
    await add_sku(sessions, catalog, "IDEM", {"Main": 50})
    inputs = [[LineRequest("IDEM", 1)], [LineRequest("IDEM", 2)]]
    works = [reserve_work(inputs[i % 2], idempotency_key=KEY_2) for i in range(20)]

    outcomes = await run_concurrently(sessions, works)

    assert_only(outcomes, IdempotencyConflict)
    print(f"\nsame key, two inputs: {dict(tally(outcomes))}")
    made = await held_by_reservation(sessions)
    assert len(made) == 1
    ((rid, lines),) = made.items()
    winner = lines["IDEM"] - 1  # index of the input that owns the key
    for i, outcome in enumerate(outcomes):
        if i % 2 == winner:
            assert outcome.value == rid
        else:
            assert isinstance(outcome.error, IdempotencyConflict)
    assert tally(outcomes) == {"ok": 10, "IDEMPOTENCY_CONFLICT": 10}
    assert await totals_by_sku(sessions) == {"IDEM": (50, winner + 1)}
    await assert_invariants(sessions)


async def test_same_idempotency_key_when_some_inputs_fail(
    sessions: Sessions, catalog: Catalog
) -> None:
    """A failed call stores nothing, so a refused input never owns the key: the input
    that can be served always ends up owning it."""
    await add_sku(sessions, catalog, "IDEM", {"Main": 5})
    fits, too_many = [LineRequest("IDEM", 5)], [LineRequest("IDEM", 6)]
    works = [reserve_work(fits if i % 2 else too_many, idempotency_key=KEY_3) for i in range(20)]

    outcomes = await run_concurrently(sessions, works)

    assert_only(outcomes, IdempotencyConflict, InsufficientStock)
    print(f"\nsame key, one input too big: {dict(tally(outcomes))}")
    ids = {o.value for i, o in enumerate(outcomes) if i % 2}
    assert len(ids) == 1
    assert None not in ids
    for outcome in outcomes[::2]:  # too many: refused before or after the key was owned
        assert isinstance(outcome.error, InsufficientStock | IdempotencyConflict)
    assert list(await held_by_reservation(sessions)) == list(ids)
    assert await totals_by_sku(sessions) == {"IDEM": (5, 5)}
    await assert_invariants(sessions)


async def test_same_idempotency_key_nothing_fits(sessions: Sessions, catalog: Catalog) -> None:
    await add_sku(sessions, catalog, "IDEM", {"Main": 2})
    works = [reserve_work([LineRequest("IDEM", 3)], idempotency_key=KEY_4)] * 20

    outcomes = await run_concurrently(sessions, works)

    assert_only(outcomes, InsufficientStock)
    assert tally(outcomes) == {"INSUFFICIENT_STOCK": 20}
    assert await fetch_all(sessions, "SELECT id FROM reservations") == []
    assert await fetch_all(sessions, "SELECT key FROM idempotency_records") == []
    await assert_invariants(sessions)


# ---------------------------------------------------------------- 6. expiry sweeps


async def make_due_carts(
    sessions: Sessions, catalog: Catalog, rng: random.Random, count: int
) -> dict[uuid.UUID, dict[str, int]]:
    """The five SKUs and `count` random carts made concurrently; returns the carts made."""
    for sku, stock in FIVE_SKUS.items():
        await add_sku(sessions, catalog, sku, {loc: units * 10 for loc, units in stock.items()})
    carts = [random_cart(rng, list(FIVE_SKUS)) for _ in range(count)]
    outcomes = await run_concurrently(sessions, [reserve_work(cart_lines(c)) for c in carts])
    assert_only(outcomes)
    return {o.value: cart for o, cart in zip(outcomes, carts, strict=True) if o.value}


async def assert_expired_once(sessions: Sessions) -> None:
    """Every line of every EXPIRED reservation has exactly one EXPIRY movement, and no
    other reservation has any."""
    rows = await fetch_all(
        sessions,
        """SELECT rl.reservation_id, rl.stock_level_id, r.status, rl.quantity,
                  count(m.id) AS expiries, coalesce(sum(-m.reserved_delta), 0) AS units
             FROM reservation_lines rl
             JOIN reservations r ON r.id = rl.reservation_id
             LEFT JOIN stock_movements m
               ON m.kind = 'EXPIRY' AND m.stock_level_id = rl.stock_level_id
              AND m.reference = 'reservation:' || rl.reservation_id::text
            GROUP BY rl.reservation_id, rl.stock_level_id, r.status, rl.quantity""",
    )
    for r in rows:
        if r.status == "EXPIRED":
            assert (r.expiries, r.units) == (1, r.quantity), r
        else:
            assert r.expiries == 0, r
    expiry_rows = await fetch_one(
        sessions, "SELECT count(*) AS n FROM stock_movements WHERE kind = 'EXPIRY'"
    )
    assert expiry_rows.n == sum(r.expiries for r in rows)


@pytest.mark.parametrize("sweepers", [2, 4])
async def test_expiry_sweeps_at_once(sessions: Sessions, catalog: Catalog, sweepers: int) -> None:
    """Sweeps started together: the advisory lock lets one work and the others skip (or
    they run one after the other on disjoint work); nothing is expired twice."""
    made = await make_due_carts(sessions, catalog, random.Random(sweepers), 150)
    now = datetime.now(UTC) + timedelta(days=1)
    expired: list[uuid.UUID] = []
    skipped = rounds = 0
    while True:
        rounds += 1
        assert rounds <= 40, "sweeps stopped making progress"
        outcomes = await run_concurrently(sessions, [sweep_work(now, limit=40)] * sweepers)
        assert_only(outcomes)
        results = [o.value for o in outcomes if o.value is not None]
        skipped += sum(r.skipped_lock for r in results)
        assert all(r.expired == [] for r in results if r.skipped_lock)
        flat = [rid for r in results for rid in r.expired]
        assert len(flat) == len(set(flat))  # disjoint within the round
        expired.extend(flat)
        active = await fetch_one(
            sessions, "SELECT count(*) AS n FROM reservations WHERE status = 'ACTIVE'"
        )
        if active.n == 0:
            break
    assert len(expired) == len(set(expired)) == len(made)
    assert set(expired) == set(made)
    statuses = await fetch_all(
        sessions, "SELECT status, count(*) AS n FROM reservations GROUP BY status"
    )
    assert {r.status: r.n for r in statuses} == {"EXPIRED": len(made)}
    reserved = {sku: figures[1] for sku, figures in (await totals_by_sku(sessions)).items()}
    assert reserved == dict.fromkeys(FIVE_SKUS, 0)
    await assert_expired_once(sessions)
    await assert_invariants(sessions)
    print(f"\n{sweepers} sweepers: {len(made)} expired in {rounds} rounds, {skipped} skipped")


SWEEPS_PER_ROUND = 8


async def test_expiry_sweep_races_carts_and_releases(sessions: Sessions, catalog: Catalog) -> None:
    """Sweeps expire multi-SKU carts while new carts over the same SKUs are reserved in
    random orders and buyers release due carts: no deadlock, each cart ends once."""
    rng = random.Random(99)
    made = await make_due_carts(sessions, catalog, rng, 150)
    due = sorted(made)
    now = datetime.now(UTC) + timedelta(days=1)
    for _ in range(4):
        new_carts = [random_cart(rng, list(FIVE_SKUS)) for _ in range(80)]
        to_release = rng.sample(due, 25)
        jobs: list[tuple[str, Any, Work[Any]]] = (
            [("cart", cart, reserve_work(cart_lines(cart))) for cart in new_carts]
            + [("release", rid, release_work(rid)) for rid in to_release]
            # sweeps of a few carts each, started through the storm of carts and releases
            + [
                ("sweep", None, delayed(sweep_work(now, limit=15), rng.uniform(0, 0.05)))
                for _ in range(SWEEPS_PER_ROUND)
            ]
        )
        rng.shuffle(jobs)
        outcomes = await run_concurrently(sessions, [work for _, _, work in jobs])

        assert_only(outcomes, ReservationNotActive, InsufficientStock)
        kinds: dict[str, list[Outcome[Any]]] = {}
        for (kind, _, _), outcome in zip(jobs, outcomes, strict=True):
            kinds.setdefault(kind, []).append(outcome)
        print(f"\nsweep vs carts: { {k: dict(tally(v)) for k, v in sorted(kinds.items())} }")
        for (kind, payload, _), outcome in zip(jobs, outcomes, strict=True):
            if kind == "cart" and outcome.value is not None:
                made[outcome.value] = payload
            elif kind == "release" and outcome.ok:
                assert outcome.value == payload
            elif kind == "release":  # the sweeper (or an earlier round) got there first
                assert isinstance(outcome.error, ReservationNotActive)
        assert await held_by_reservation(sessions) == made
        await assert_expired_once(sessions)
        await assert_invariants(sessions)
        due = sorted(made)
    ended = await fetch_one(
        sessions,
        """SELECT count(*) FILTER (WHERE status = 'EXPIRED') AS expired,
                  count(*) FILTER (WHERE status = 'RELEASED') AS released
             FROM reservations""",
    )
    release_rows = await fetch_one(
        sessions,
        "SELECT count(DISTINCT reference) AS n FROM stock_movements WHERE kind = 'RELEASE'",
    )
    assert release_rows.n == ended.released
    assert ended.expired > 0
