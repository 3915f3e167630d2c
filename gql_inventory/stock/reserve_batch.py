"""Group commit of reserveStock: many reservations planned in memory and written in one
transaction, each with the outcome it would have had alone (ADR 0008).

`reserve_batch` runs on a raw asyncpg connection (no ORM session, prepared statements
cached by asyncpg) in four round trips whatever the batch size: BEGIN; one statement
that resolves every SKU and locks every level of those variants FOR UPDATE in ascending
id (the domain's lock order, `stock.lock_levels`); one statement that writes every
reservation, line, level change and ledger row (arrays, `unnest`); COMMIT.

Between the two statements each request is planned, in arrival order, with the same
code as `reservations.reserve` (`reserve_plan`) against running figures: a request
sees the levels as the requests before it in the batch left them, as it would have
seen them had they committed one by one in that order. A refused request writes
nothing and changes no figure. Each level is updated once (``reserved += sum``,
``version += number of movements``) and gets one ledger row per reservation that
touched it, with the after-figures and consecutive versions the sequential path
would have written. The CHECK constraints still guard every level.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from gql_inventory.domain.errors import DomainError
from gql_inventory.domain.uow import AppliedMovement
from gql_inventory.models import MovementKind, ReservationStatus
from gql_inventory.stock.allocation import (
    ReservationLimits,
    checked_request,
    plan_reservation,
)
from gql_inventory.stock.levels import LineRequest, LockedLevel, check_known, line_positions


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """One reserveStock call: its lines, optional TTL (seconds) and who asks (`actor`,
    written on its ledger rows, see `domain.uow`). Idempotency keys are not batched."""

    lines: Sequence[LineRequest]
    ttl_seconds: int | None
    actor: str


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What a committed batch did: per request (same order) the new reservation's id or
    the `DomainError` that refused it; and every ledger row written, in ledger order."""

    outcomes: list[uuid.UUID | DomainError]
    movements: list[AppliedMovement]
    #: The `reservations` rows the batch inserted, by id, as the table holds them
    #: (``created_at``/``updated_at`` = the transaction's ``now()``): the GraphQL payload
    #: is answered from them without reading the row back.
    created: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)


class CommitFailed(Exception):
    """The COMMIT itself failed (e.g. the connection dropped while it was sent): the
    batch may or may not have committed, so its requests must not be retried.
    `__cause__` is the database error."""


_LOCK = """
WITH locked AS MATERIALIZED (
    SELECT sl.id, sl.variant_id, sl.location_id, l.priority, sl.on_hand, sl.reserved,
           sl.version
      FROM stock_levels sl
      JOIN locations l ON l.id = sl.location_id
     WHERE sl.variant_id IN (SELECT id FROM variants WHERE sku = ANY($1::text[]))
     ORDER BY sl.id
       FOR UPDATE OF sl
)
SELECT v.sku, v.id AS variant_id, k.id, k.location_id, k.priority, k.on_hand, k.reserved,
       k.version, now() AS tx_now
  FROM variants v
  LEFT JOIN locked k ON k.variant_id = v.id
 WHERE v.sku = ANY($1::text[])
 ORDER BY k.id
"""

_WRITE = f"""
WITH reservations_in AS (
    INSERT INTO reservations (id, status, expires_at, ttl_seconds)
    SELECT r.id, '{ReservationStatus.ACTIVE.value}', r.expires_at, r.ttl
      FROM unnest($1::uuid[], $2::timestamptz[], $3::int[]) AS r(id, expires_at, ttl)
), levels AS (
    UPDATE stock_levels sl
       SET reserved = sl.reserved + d.delta, version = sl.version + d.n, updated_at = now()
      FROM unnest($4::bigint[], $5::int[], $6::bigint[]) AS d(id, delta, n)
     WHERE sl.id = d.id
), rows AS (
    SELECT * FROM unnest($7::uuid[], $8::bigint[], $9::bigint[], $10::bigint[], $11::int[],
                         $12::int[], $13::int[], $14::bigint[], $15::text[], $16::int[])
           WITH ORDINALITY
           AS m(reservation_id, level_id, variant_id, location_id, quantity, on_hand,
                reserved, version, actor, line_ord, ord)
), lines_in AS (
    INSERT INTO reservation_lines (reservation_id, stock_level_id, variant_id, location_id,
                                   quantity)
    SELECT reservation_id, level_id, variant_id, location_id, quantity FROM rows
     ORDER BY line_ord
)
INSERT INTO stock_movements (
    stock_level_id, variant_id, location_id, kind, on_hand_delta, reserved_delta,
    on_hand_after, reserved_after, version, reference, actor)
SELECT level_id, variant_id, location_id, '{MovementKind.RESERVATION.value}', 0, quantity,
       on_hand, reserved, version, 'reservation:' || reservation_id::text, actor
  FROM rows
 ORDER BY ord
RETURNING id, stock_level_id, variant_id, location_id, kind, on_hand_delta, reserved_delta,
          on_hand_after, reserved_after, version, reason, reference, actor, txid, occurred_at
"""


@dataclass(slots=True)
class _Level:
    """A locked level's running figures while the batch is planned."""

    level: LockedLevel
    version: int
    movements: int = 0
    added: int = 0


class _Plan:
    """The rows a batch will write, built request by request."""

    def __init__(self) -> None:
        self.reservations: tuple[list[uuid.UUID], list[datetime], list[int]] = ([], [], [])
        self.rows: tuple[list[Any], ...] = tuple([] for _ in range(10))

    def add(
        self,
        reservation_id: uuid.UUID,
        expires_at: datetime,
        ttl: int,
        changes: dict[int, tuple[LockedLevel, int]],
        levels: dict[int, _Level],
        actor: str,
    ) -> None:
        """Record one accepted reservation and move the running figures on.

        Ledger rows in level-id order (as `reserve` applies them), each with the level's
        figures after this reservation and its next version; lines in the plan's order
        (as `reserve` inserts them: `line_ord`).
        """
        line_ord = {level_id: n for n, level_id in enumerate(changes, len(self.rows[0]))}
        self.reservations[0].append(reservation_id)
        self.reservations[1].append(expires_at)
        self.reservations[2].append(ttl)
        for level_id, (level, units) in sorted(changes.items()):
            state = levels[level_id]
            state.level = replace(state.level, reserved=state.level.reserved + units)
            state.version += 1
            state.movements += 1
            state.added += units
            after = state.level
            for column, value in zip(
                self.rows,
                (
                    reservation_id,
                    level_id,
                    level.variant_id,
                    level.location_id,
                    units,
                    after.on_hand,
                    after.reserved,
                    state.version,
                    actor,
                    line_ord[level_id],
                ),
                strict=True,
            ):
                column.append(value)


def _lock_rows(
    rows: Sequence[Any],
) -> tuple[dict[str, int], dict[int, list[int]], dict[int, _Level]]:
    """``({sku: variant_id}, {variant_id: [level_id ...]}, {level_id: running figures})``."""
    variant_ids: dict[str, int] = {}
    per_variant: dict[int, list[int]] = {}
    levels: dict[int, _Level] = {}
    for r in rows:
        variant_ids[r["sku"]] = r["variant_id"]
        if r["id"] is None:  # a variant without any stock level
            continue
        level = LockedLevel(
            id=r["id"],
            variant_id=r["variant_id"],
            location_id=r["location_id"],
            priority=r["priority"],
            on_hand=r["on_hand"],
            reserved=r["reserved"],
        )
        levels[level.id] = _Level(level=level, version=r["version"])
        per_variant.setdefault(level.variant_id, []).append(level.id)
    return variant_ids, per_variant, levels


async def reserve_batch(
    conn: Any, requests: Sequence[BatchRequest], *, limits: ReservationLimits
) -> BatchResult:
    """Apply `requests` in one transaction on the asyncpg connection `conn` (idle, not in
    a transaction), in their order; see the module docstring.

    Returns the outcome of each request (a reservation id or its `DomainError`) and the
    ledger rows written. A database error before the commit rolls everything back and
    propagates (nothing of the batch is applied); one raised by the COMMIT is wrapped in
    `CommitFailed` (its outcome is unknown).
    """
    checked: list[tuple[int, dict[str, int]] | DomainError] = []
    skus: set[str] = set()
    for request in requests:
        try:
            ttl, wanted = checked_request(request.lines, request.ttl_seconds, limits)
        except DomainError as error:
            checked.append(error)
            continue
        checked.append((ttl, wanted))
        skus.update(wanted)

    transaction = conn.transaction()
    await transaction.start()
    try:
        rows = await conn.fetch(_LOCK, sorted(skus)) if skus else []
        variant_ids, per_variant, levels = _lock_rows(rows)
        now = datetime.now(UTC)
        plan = _Plan()
        outcomes: list[uuid.UUID | DomainError] = []
        for request, item in zip(requests, checked, strict=True):
            if isinstance(item, DomainError):
                outcomes.append(item)
                continue
            ttl, wanted = item
            positions = line_positions(request.lines)
            try:
                check_known(list(wanted), variant_ids, positions=positions)
                current = {
                    vid: [levels[i].level for i in per_variant.get(vid, ())]
                    for vid in {variant_ids[sku] for sku in wanted}
                }
                changes = plan_reservation(wanted, positions, variant_ids, current)
            except DomainError as error:
                outcomes.append(error)
                continue
            reservation_id = uuid.uuid4()
            plan.add(
                reservation_id,
                now + timedelta(seconds=ttl),
                ttl,
                changes,
                levels,
                request.actor,
            )
            outcomes.append(reservation_id)
        written: list[Any] = []
        if plan.reservations[0]:
            touched = [(i, s) for i, s in sorted(levels.items()) if s.movements]
            written = await conn.fetch(
                _WRITE,
                *plan.reservations,
                [i for i, _ in touched],
                [s.added for _, s in touched],
                [s.movements for _, s in touched],
                *plan.rows,
            )
    except BaseException:
        with contextlib.suppress(Exception):  # a lost connection rolls back by itself
            await transaction.rollback()
        raise
    try:
        await transaction.commit()
    except Exception as exc:
        raise CommitFailed("the batch's COMMIT failed; its outcome is unknown") from exc
    created: dict[uuid.UUID, dict[str, Any]] = {}
    if rows:
        tx_now = rows[0]["tx_now"]
        for rid, expires_at, ttl in zip(*plan.reservations, strict=True):
            created[rid] = {
                "id": rid,
                "status": ReservationStatus.ACTIVE,
                "expires_at": expires_at,
                "ttl_seconds": ttl,
                "idempotency_key": None,
                "created_at": tx_now,
                "updated_at": tx_now,
            }
    return BatchResult(outcomes, [AppliedMovement.from_row(r) for r in written], created)
