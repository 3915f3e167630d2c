"""bulkAdjustStock (issue 10): many adjustStock lines in one call, all or none (atomic) or
each on its own; refusals carry ["lines", "<index>", ...] paths and change nothing."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.domain.shortages import (
    InsufficientStock,
)
from gql_inventory.domain.uow import STOREFRONT, UnitOfWork, admin_actor
from gql_inventory.stock import reservations
from gql_inventory.stock.adjust import AdjustmentReason
from gql_inventory.stock.bulk_adjust import BulkLine, bulk_adjust_atomic
from gql_inventory.stock.levels import LineRequest
from gql_inventory.stock.reservations import ReservationLimits
from tests.conftest import GraphQLCaller
from tests.support.catalog import Catalog, make_product
from tests.support.graphql import MOVEMENT, USER_ERRORS, errors_of, snapshot, variant_levels
from tests.support.invariants import assert_invariants
from tests.support.scenarios import Work, assert_only, movement_counts, run_concurrently

BULK = f"""mutation($input: BulkAdjustStockInput!) {{ bulkAdjustStock(input: $input) {{
  movements {{ {MOVEMENT} }} {USER_ERRORS} }} }}"""


def _line(sku: str, delta: int, **extra: Any) -> dict[str, Any]:
    return {"sku": sku, "delta": delta, "reason": "RECEIVED" if delta > 0 else "LOST", **extra}


async def _bulk(gql: GraphQLCaller, lines: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    body = await gql(BULK, {"input": {"lines": lines, **extra}}, admin=True)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["bulkAdjustStock"]
    return payload


async def test_atomic_applies_every_line(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    store = str(catalog.locations["Store"])
    payload = await _bulk(
        gql, [_line("MUG", -5), _line("SHIRT-L", 4, locationId=store), _line("CAP", 7)]
    )
    assert payload["userErrors"] == []
    assert [(m["sku"], m["onHandDelta"], m["kind"]) for m in payload["movements"]] == [
        ("MUG", -5, "ADJUSTMENT"),
        ("SHIRT-L", 4, "RECEIPT"),
        ("CAP", 7, "RECEIPT"),
    ]
    assert await variant_levels(gql, "MUG") == {"Main": (45, 0)}
    assert await variant_levels(gql, "SHIRT-L") == {"Main": (0, 0), "Store": (24, 0)}
    assert await variant_levels(gql, "CAP") == {"Main": (7, 0)}
    await assert_invariants(sessions)


async def test_atomic_refuses_all_and_reports_every_line(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    before = await snapshot(sessions)
    payload = await _bulk(
        gql,
        [
            _line("MUG", 5),
            _line("NOPE", 1),
            _line("SHIRT-M", -4),  # 3 available
            _line("CAP", 1, locationId="424242"),
            _line("SHIRT-S", 0),
        ],
    )
    assert payload["movements"] == []
    assert errors_of(payload) == [
        ("UNKNOWN_SKU", ["lines", "1", "sku"]),
        ("INSUFFICIENT_STOCK", ["lines", "2", "delta"]),
        ("UNKNOWN_LOCATION", ["lines", "3", "locationId"]),
        ("INVALID_INPUT", ["lines", "4", "delta"]),
    ]
    assert await snapshot(sessions) == before


async def test_not_atomic_keeps_the_lines_that_succeed(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    payload = await _bulk(
        gql, [_line("MUG", -5), _line("SHIRT-M", -4), _line("CAP", 2)], atomic=False
    )
    assert [(m["sku"], m["onHandDelta"]) for m in payload["movements"]] == [
        ("MUG", -5),
        ("CAP", 2),
    ]
    assert errors_of(payload) == [("INSUFFICIENT_STOCK", ["lines", "1", "delta"])]
    assert await variant_levels(gql, "MUG") == {"Main": (45, 0)}
    assert await variant_levels(gql, "SHIRT-M") == {"Main": (3, 0)}
    assert await variant_levels(gql, "CAP") == {"Main": (2, 0)}
    await assert_invariants(sessions)


@pytest.mark.parametrize("atomic", [True, False])
@pytest.mark.parametrize(
    ("lines", "errors"),
    [
        pytest.param([], [("INVALID_INPUT", ["lines"])], id="no-lines"),
        pytest.param([_line("MUG", 1)] * 501, [("INVALID_INPUT", ["lines"])], id="501-lines"),
        pytest.param(
            [_line("MUG", 1), _line("CAP", 1, idempotencyKey="k-1")],
            [("INVALID_INPUT", ["lines", "1", "idempotencyKey"])],
            id="line-idempotency-key",
        ),
        pytest.param(
            [_line("MUG", 1), _line("CAP", 1), _line("MUG", 2)],
            [("INVALID_INPUT", ["lines", "2", "sku"])],
            id="same-level-twice",
        ),
    ],
)
async def test_limits_refuse_the_call_and_change_nothing(
    gql: GraphQLCaller,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    lines: list[dict[str, Any]],
    errors: list[tuple[str, list[str]]],
    atomic: bool,
) -> None:
    before = await snapshot(sessions)
    payload = await _bulk(gql, lines, atomic=atomic)
    assert payload["movements"] == []
    assert errors_of(payload) == errors
    assert await snapshot(sessions) == before


async def test_500_lines_are_accepted(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    async with sessions.begin() as session:
        await make_product(
            session,
            catalog,
            "many",
            "Many",
            [(f"M-{i}", f"V{i}", 100, {"Main": 1}) for i in range(500)],
        )
    payload = await _bulk(gql, [_line(f"M-{i}", 1) for i in range(500)])
    assert payload["userErrors"] == []
    assert len(payload["movements"]) == 500


async def test_admin_only(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    before = await snapshot(sessions)
    body = await gql(BULK, {"input": {"lines": [_line("MUG", 1)]}})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await snapshot(sessions) == before


# ---------------------------------------------------------------- concurrency


def _bulk_work(lines: Sequence[BulkLine]) -> Work[int]:
    async def work(session: AsyncSession) -> int:
        return len(await bulk_adjust_atomic(UnitOfWork(session, actor=admin_actor("bulk")), lines))

    return work


def _cart_work(lines: Sequence[LineRequest]) -> Work[uuid.UUID]:
    async def work(session: AsyncSession) -> uuid.UUID:
        return await reservations.reserve(
            UnitOfWork(session, actor=STOREFRONT), lines, limits=ReservationLimits()
        )

    return work


async def test_bulk_in_opposite_orders_with_carts_never_deadlocks(
    sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    """Bulk calls listing the same four levels in opposite orders, racing carts over both
    SKUs in both orders: no deadlock, no database error, invariants hold every round."""
    async with sessions.begin() as session:
        for sku in ("A", "B"):
            await make_product(
                session,
                catalog,
                sku.lower(),
                sku,
                [(sku, "Default Title", 100, {"Main": 40, "Store": 40})],
            )
    store = str(catalog.locations["Store"])
    lines = [
        BulkLine("A", None, -1, AdjustmentReason.LOST),
        BulkLine("B", None, -1, AdjustmentReason.LOST),
        BulkLine("A", store, 1, AdjustmentReason.FOUND),
        BulkLine("B", store, 1, AdjustmentReason.FOUND),
    ]
    forward, backward = _bulk_work(lines), _bulk_work(lines[::-1])
    ab = _cart_work([LineRequest("A", 1), LineRequest("B", 1)])
    ba = _cart_work([LineRequest("B", 1), LineRequest("A", 1)])
    bulks_ok = 0
    for _ in range(4):
        works: list[Work[Any]] = []
        for i in range(40):
            works += [forward, backward, ab if i % 2 else ba]
        outcomes = await run_concurrently(sessions, works)
        assert_only(outcomes, InsufficientStock)
        bulks_ok += sum(1 for i, o in enumerate(outcomes) if i % 3 != 2 and o.ok)
        await assert_invariants(sessions)
    assert bulks_ok > 0
    for sku in ("A", "B"):
        counts = await movement_counts(sessions, sku)
        assert counts["ADJUSTMENT"] == 2 * bulks_ok  # one movement per changed level
