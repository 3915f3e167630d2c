"""New reservations, one or many in one transaction, each with the outcome it would have
had alone (ADR 0008, ADR 0013).

`reserve_many` runs inside a transaction its caller opened on an asyncpg connection (it
never commits): the group commit (`gql_inventory.reserving`) calls it with every request
that arrived meanwhile, `reserve` with one request on a unit of work's connection. Both
are the same code and the same statements (`stock.ledger`): whatever the number of
requests, one statement resolves every SKU and locks every level of those variants in
ascending id (`ledger.lock_for_reserve`) and one writes every reservation, line, level
change and ledger row (`ledger.write_reservations`).

In between, each request is planned in arrival order with `allocation.plan_reservation`
against running figures: it sees the levels as the requests before it left them, as it
would have had they committed one by one in that order. A refused request writes nothing
and changes no figure.

Idempotency keys are claimed for the whole batch in one statement before the levels are
locked (`idempotency.claim_many`, the rule of `idempotency.claim`): a key used by an
earlier committed call replays its reservation (same input) or is an
`IdempotencyConflict` (another input); a key first used earlier in the same batch does
the same against that request, so two identical keyed requests make one reservation; a
refused request gives its key back, so a retry with it may succeed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from gql_inventory.domain import idempotency
from gql_inventory.domain.errors import DomainError, IdempotencyConflict, in_input
from gql_inventory.domain.idempotency import IdempotencyKey, KeyId
from gql_inventory.domain.rows import RESERVATION_COLUMNS, ReservationRow, reservation_row
from gql_inventory.domain.uow import AppliedMovement, UnitOfWork, VariantStock
from gql_inventory.models import ReservationStatus
from gql_inventory.stock.allocation import ReservationLimits, checked_request, plan_reservation
from gql_inventory.stock.ledger import lock_for_reserve, write_reservations
from gql_inventory.stock.levels import LineRequest, check_known, line_positions
from gql_inventory.stock.reserve_writes import ReservationWrites

#: The `idempotency_records.scope` of reserveStock.
SCOPE = "reserveStock"


@dataclass(frozen=True, slots=True)
class ReserveRequest:
    """One reserveStock call: its lines, optional TTL (seconds), who asks (`actor`, written
    on its ledger rows, see `domain.uow`) and its optional idempotency key."""

    lines: Sequence[LineRequest]
    ttl_seconds: int | None
    actor: str
    idempotency_key: IdempotencyKey | None = None


@dataclass(slots=True)
class ReserveResult:
    """What `reserve_many` did, per request (same order): its reservation (`ReservationRow`,
    new or replayed) or the `DomainError` that refused it; and every ledger row written,
    in ledger order. `created` lists the new reservations' ids (known before the commit);
    `variant_stock` the changed variants as the batch leaves them (for its outbox events)."""

    outcomes: list[ReservationRow | DomainError]
    movements: list[AppliedMovement] = field(default_factory=list)
    created: list[uuid.UUID] = field(default_factory=list)
    variant_stock: dict[int, VariantStock] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Checked:
    ttl: int
    wanted: dict[str, int]
    digest: str | None


def _check(request: ReserveRequest, limits: ReservationLimits) -> _Checked:
    """The request's TTL, merged lines and key hash, checked in the order of the single
    path (TTL, lines, key). Raises `InvalidInput`."""
    ttl, wanted = checked_request(request.lines, request.ttl_seconds, limits)
    key = request.idempotency_key
    if key is None:
        return _Checked(ttl, wanted, None)
    idempotency.check_key(key)
    payload = {"lines": sorted(wanted.items()), "ttl": request.ttl_seconds}
    return _Checked(ttl, wanted, idempotency.request_hash(payload))


def _conflict() -> IdempotencyConflict:
    return IdempotencyConflict(
        "idempotency key was already used with a different input",
        field=in_input("idempotency_key"),
    )


_READ = f"SELECT {RESERVATION_COLUMNS} FROM reservations WHERE id = ANY($1::uuid[])"


async def reserve_many(
    conn: Any, requests: Sequence[ReserveRequest], *, limits: ReservationLimits
) -> ReserveResult:
    """Apply `requests` in their order in the open transaction of the asyncpg connection
    `conn`; see the module docstring. Never commits.

    A database error propagates (the caller rolls the transaction back: nothing of the
    batch is applied).
    """
    checked: list[_Checked | DomainError] = []
    claims: dict[KeyId, str] = {}
    for request in requests:
        try:
            first_check = _check(request, limits)
        except DomainError as error:
            checked.append(error)
            continue
        checked.append(first_check)
        sent = request.idempotency_key
        if sent is not None and first_check.digest is not None:
            claims.setdefault((sent.owner, sent.value), first_check.digest)
    stored = await idempotency.claim_many(conn, scope=SCOPE, wanted=claims)
    locks = await lock_for_reserve(
        conn, {sku for c in checked if isinstance(c, _Checked) for sku in c.wanted}
    )
    now = datetime.now(UTC)
    writes = ReservationWrites(locks)
    won: dict[KeyId, tuple[str, uuid.UUID]] = {}
    picks: list[uuid.UUID | DomainError] = []
    for request, item in zip(requests, checked, strict=True):
        if isinstance(item, DomainError):
            picks.append(item)
            continue
        key = request.idempotency_key
        kid = (key.owner, key.value) if key is not None else None
        if kid is not None and (kid in stored or kid in won):  # the key's first call
            if kid in stored:
                digest, result = stored[kid]
                first = uuid.UUID(result["reservation_id"])
            else:
                digest, first = won[kid]
            picks.append(first if digest == item.digest else _conflict())
            continue
        positions = line_positions(request.lines)
        try:
            check_known(list(item.wanted), locks.variant_ids, positions=positions)
            variants = {locks.variant_ids[sku] for sku in item.wanted}
            changes = plan_reservation(
                item.wanted, positions, locks.variant_ids, locks.current(variants)
            )
        except DomainError as error:
            picks.append(error)
            continue
        reservation_id = uuid.uuid4()
        writes.add(
            reservation_id,
            now + timedelta(seconds=item.ttl),
            item.ttl,
            key.value if key is not None else None,
            changes,
            request.actor,
        )
        if kid is not None and item.digest is not None:
            won[kid] = (item.digest, reservation_id)
        picks.append(reservation_id)
    movements = await write_reservations(conn, writes)
    await idempotency.settle_many(
        conn,
        scope=SCOPE,
        won={k: (h, {"reservation_id": str(rid)}) for k, (h, rid) in won.items()},
        unused=[k for k in claims if k not in stored and k not in won],
    )
    return ReserveResult(
        await _rows(conn, picks, writes, locks.now),
        movements,
        list(writes.reservations[0]),
        locks.variant_stock({m.variant_id for m in movements}),
    )


async def _rows(
    conn: Any,
    picks: list[uuid.UUID | DomainError],
    writes: ReservationWrites,
    tx_now: datetime | None,
) -> list[ReservationRow | DomainError]:
    """Each pick as its reservation row: new ones built from what was written (created at
    the transaction's ``now()``), replayed ones read back."""
    new = {
        rid: ReservationRow(
            id=rid,
            status=ReservationStatus.ACTIVE,
            expires_at=expires_at,
            ttl_seconds=ttl,
            idempotency_key=key,
            created_at=tx_now or expires_at,
            updated_at=tx_now or expires_at,
        )
        for rid, expires_at, ttl, key in zip(*writes.reservations, strict=True)
    }
    replayed = [p for p in picks if isinstance(p, uuid.UUID) and p not in new]
    read = {}
    if replayed:
        read = {r["id"]: reservation_row(r) for r in await conn.fetch(_READ, replayed)}
    out: list[ReservationRow | DomainError] = []
    for pick in picks:
        out.append(pick if isinstance(pick, DomainError) else new.get(pick) or read[pick])
    return out


async def reserve(
    uow: UnitOfWork,
    lines: Sequence[LineRequest],
    *,
    limits: ReservationLimits,
    ttl_seconds: int | None = None,
    idempotency_key: IdempotencyKey | None = None,
) -> uuid.UUID:
    """Reserve every line or none in the unit of work's transaction (a batch of one of
    `reserve_many`, on the session's connection); the reservation's id.

    Lines of the same SKU are merged; units come from locations by priority and may
    be split across them; the reservation expires `ttl_seconds` (default and cap from
    `limits`) from now. Raises `InvalidInput`, `UnknownSku`, `PurchaseLimitExceeded`
    (more of a SKU than its variant's `max_per_order`), `ShortAcrossLocations`
    (an `InsufficientStock`; one per short SKU, grouped in `DomainErrors`),
    `IdempotencyConflict`.
    """
    connection = await uow.session.connection()
    await connection.exec_driver_sql("SELECT 1")  # the driver's transaction is open now
    raw = await connection.get_raw_connection()
    request = ReserveRequest(lines, ttl_seconds, uow.actor, idempotency_key)
    result = await reserve_many(raw.driver_connection, [request], limits=limits)
    uow.movements.extend(result.movements)
    outcome = result.outcomes[0]
    if isinstance(outcome, DomainError):
        raise outcome
    return outcome.id


async def stored_count(conn: Any, reservation_ids: Sequence[uuid.UUID]) -> int:
    """How many of these reservations exist (asked on the asyncpg connection `conn`):
    whether a transaction that wrote them committed."""
    found: int = await conn.fetchval(
        "SELECT count(*) FROM reservations WHERE id = ANY($1::uuid[])", list(reservation_ids)
    )
    return found
