"""Many admin stock adjustments in one call: all or none (atomic), or each on its own.

Each line goes through `adjust.adjust_stock`, the same use case as adjustStock
(same checks, same ledger rows). A line's refusals are re-rooted under
``("lines", i, ...)`` so the caller can say which line was refused.

Lock order (DESIGN.md, `stock.locks`): stock levels by ascending id. An
atomic call first finds (or creates, in SKU/location order) every line's level,
then locks them all by ascending id before changing any, so it never deadlocks
with carts or with another bulk call listing the same levels in another order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial

from gql_inventory.domain.errors import (
    DomainError,
    DomainErrors,
    FieldPath,
    InvalidInput,
    in_input,
    raise_all,
)
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.models import StockState
from gql_inventory.stock.adjust import (
    AdjustmentReason,
    AdjustResult,
    adjust_stock,
    level_id_for,
)
from gql_inventory.stock.ledger import lock_level_ids

#: The most lines one call may carry.
MAX_BULK_LINES = 500


@dataclass(frozen=True, slots=True)
class BulkLine:
    """One adjustment of a bulk call (the fields of `adjust_stock`)."""

    sku: str
    location_id: str | None
    delta: int
    reason: AdjustmentReason
    note: str | None = None
    expected_on_hand: int | None = None
    has_idempotency_key: bool = False
    state: StockState = StockState.AVAILABLE


@dataclass(frozen=True, slots=True)
class LineOutcome:
    """What became of line `index`: its result, or the refusals (re-rooted)."""

    index: int
    result: AdjustResult | None
    errors: list[DomainError]


def _rerooted(index: int, error: DomainError) -> list[DomainError]:
    """`error` (or each of a group) with its field moved under ``lines[index]``."""
    errors = error.errors if isinstance(error, DomainErrors) else [error]
    for e in errors:
        parts = e.field.parts if e.field is not None and not e.field.argument else ()
        e.field = FieldPath(("lines", index, *parts))
    return errors


def check_lines(lines: Sequence[BulkLine]) -> None:
    """Refusals that need no database: no lines, too many, per-line idempotency keys,
    the same SKU and location twice (one movement per changed level). Raises
    `InvalidInput` (several as `DomainErrors`)."""
    if not 1 <= len(lines) <= MAX_BULK_LINES:
        raise InvalidInput(
            f"lines must hold between 1 and {MAX_BULK_LINES} adjustments",
            field=in_input("lines"),
        )
    errors: list[DomainError] = []
    seen: dict[tuple[str, str | None], int] = {}
    for i, line in enumerate(lines):
        if line.has_idempotency_key:
            errors.append(
                InvalidInput(
                    "idempotencyKey is not accepted on bulkAdjustStock lines: retry an "
                    "atomic call as a whole, or use adjustStock",
                    field=in_input("lines", i, "idempotency_key"),
                )
            )
        key = (line.sku, line.location_id)
        if key in seen:
            errors.append(
                InvalidInput(
                    f"line {i} repeats the SKU and location of line {seen[key]}: give one "
                    "line per level",
                    field=in_input("lines", i, "sku"),
                )
            )
        seen.setdefault(key, i)
    raise_all(errors)


async def _adjust(uow: UnitOfWork, *, line: BulkLine) -> AdjustResult:
    return await adjust_stock(
        uow,
        sku=line.sku,
        location_id=line.location_id,
        delta=line.delta,
        reason=line.reason,
        note=line.note,
        expected_on_hand=line.expected_on_hand,
        state=line.state,
    )


async def _lock_levels_in_order(uow: UnitOfWork, lines: Sequence[BulkLine]) -> None:
    """Find every line's level (creating missing ones in SKU/location order), then lock
    them all by ascending id. Lines whose SKU or location is unknown are skipped here:
    `adjust_stock` refuses them with the usual error."""
    ids: set[int] = set()
    for line in sorted(lines, key=lambda ln: (ln.sku, ln.location_id or "")):
        try:
            ids.add(await level_id_for(uow.session, line.sku, line.location_id))
        except DomainError:
            continue
    await lock_level_ids(uow.session, ids)


async def bulk_adjust_atomic(uow: UnitOfWork, lines: Sequence[BulkLine]) -> list[AdjustResult]:
    """Apply every line in one transaction, or none: every refusal of every line is
    raised together (`DomainErrors`, fields under ``("lines", i, ...)``) and the caller
    rolls back. Results are in line order; one movement per line."""
    check_lines(lines)
    await _lock_levels_in_order(uow, lines)
    results: list[AdjustResult] = []
    errors: list[DomainError] = []
    for i, line in enumerate(lines):
        try:
            results.append(await _adjust(uow, line=line))
        except DomainError as error:
            errors.extend(_rerooted(i, error))
    raise_all(errors)
    return results


async def bulk_adjust_each(
    run: Callable[[Callable[[UnitOfWork], Awaitable[AdjustResult]]], Awaitable[AdjustResult]],
    lines: Sequence[BulkLine],
) -> list[LineOutcome]:
    """Apply each line in its own transaction (`run` opens one per line, e.g.
    `run_in_transaction`): successes are kept, refusals reported per line (fields
    under ``("lines", i, ...)``). Raises only what `check_lines` raises."""
    check_lines(lines)
    outcomes: list[LineOutcome] = []
    for i, line in enumerate(lines):
        try:
            result = await run(partial(_adjust, line=line))
        except DomainError as error:
            outcomes.append(LineOutcome(index=i, result=None, errors=_rerooted(i, error)))
        else:
            outcomes.append(LineOutcome(index=i, result=result, errors=[]))
    return outcomes
