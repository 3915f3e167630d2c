"""Helpers of the concurrency scenarios: many transactions at once, each on its own connection.

`run_concurrently` runs each piece of work in its own ``sessions.begin()`` transaction
(so on its own pooled connection), at most `limit` at a time, and records what each
returned or raised. The first wave is held at a start gate until every transaction
in it has checked out its connection and begun, so they really do start together.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import asyncpg
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.domain.errors import DomainError, DomainErrors

T = TypeVar("T")
Work = Callable[[AsyncSession], Awaitable[T]]

#: Transactions in flight at once. The test engine's pool allows 100 connections and so
#: does the server (max_connections = 100, a few kept for superusers, and other test
#: processes may share it): 50 at once keeps real contention without exhausting either.
MAX_CONCURRENT = 50

#: Tries to get a connection when the server is full (another test run may share it).
CONNECT_ATTEMPTS = 40

#: Seconds after which a batch is deemed hung (a generous safety net, never a timing check).
HANG_TIMEOUT = 300.0


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """What one transaction returned (`value`) or raised (`error`, rolled back)."""

    value: T | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        """True when the work returned and its transaction committed."""
        return self.error is None


async def run_concurrently(
    sessions: async_sessionmaker[AsyncSession],
    works: Sequence[Work[T]],
    *,
    limit: int = MAX_CONCURRENT,
) -> list[Outcome[T]]:
    """Run every work in its own transaction, at most `limit` at once; outcomes in order.

    An exception inside a work rolls its transaction back and is recorded, never raised.
    """
    semaphore = asyncio.Semaphore(limit)
    first_wave = min(limit, len(works))
    ready = 0
    gate = asyncio.Event()

    def arrive() -> None:
        nonlocal ready
        ready += 1
        if ready >= first_wave:
            gate.set()

    async def one(work: Work[T]) -> Outcome[T]:
        arrived = False
        async with semaphore:
            for attempt in range(CONNECT_ATTEMPTS):
                try:
                    async with sessions.begin() as session:
                        try:  # hold a connection, in a transaction, before the gate opens
                            await session.execute(text("SELECT 1"))
                        except Exception as exc:
                            if attempt + 1 < CONNECT_ATTEMPTS and is_server_full(exc):
                                raise _ServerFull from exc
                            raise
                        arrived = True
                        arrive()
                        await gate.wait()
                        value = await work(session)
                except _ServerFull:
                    await asyncio.sleep(0.05 * (attempt + 1))
                    continue
                except Exception as exc:  # recorded and judged by the test
                    if not arrived:
                        arrive()
                    return Outcome(error=exc)
                return Outcome(value=value)
        raise AssertionError("unreachable")  # pragma: no cover

    # A safety net against a hang (a lost wakeup, a lock never released), not a timing check.
    return list(
        await asyncio.wait_for(asyncio.gather(*(one(work) for work in works)), HANG_TIMEOUT)
    )


class _ServerFull(Exception):
    """The server refused a connection for now (other test runs may share it): retry."""


def is_server_full(exc: BaseException) -> bool:
    """PostgreSQL refused a new connection: max_connections reached."""
    return any(
        isinstance(e, asyncpg.exceptions.TooManyConnectionsError)
        or "too many clients" in str(e).lower()
        for e in _chain(exc)
    )


def delayed(work: Work[T], seconds: float) -> Work[T]:
    """`work` started `seconds` late (inside its transaction): varies who gets a lock first."""

    async def later(session: AsyncSession) -> T:
        await asyncio.sleep(seconds)
        return await work(session)

    return later


def _chain(exc: BaseException) -> Iterable[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_database_error(exc: BaseException) -> bool:
    """A driver or server error anywhere in the chain (deadlock, constraint violation...)."""
    return any(
        isinstance(e, sa_exc.DBAPIError | asyncpg.PostgresError | asyncpg.InterfaceError)
        for e in _chain(exc)
    )


def is_deadlock(exc: BaseException) -> bool:
    """PostgreSQL aborted the transaction to break a deadlock."""
    return any(
        isinstance(e, asyncpg.exceptions.DeadlockDetectedError) or "deadlock" in str(e).lower()
        for e in _chain(exc)
    )


def error_codes(exc: BaseException) -> list[str]:
    """Domain codes of a refusal (every code of a `DomainErrors`); class name otherwise."""
    if isinstance(exc, DomainErrors):
        return [e.code for e in exc.errors]
    if isinstance(exc, DomainError):
        return [exc.code]
    return [type(exc).__name__]


def tally(outcomes: Sequence[Outcome[Any]]) -> Counter[str]:
    """``{"ok": n, "INSUFFICIENT_STOCK": m, ...}``: one count per outcome (codes joined)."""
    return Counter(
        "ok" if o.error is None else "+".join(sorted(set(error_codes(o.error)))) for o in outcomes
    )


def assert_only(
    outcomes: Sequence[Outcome[Any]], *allowed: type[DomainError], codes: Sequence[str] = ()
) -> None:
    """Fail on any error other than the `allowed` refusals; deadlocks and database
    errors (IntegrityError from a CHECK, DeadlockDetectedError...) are named first."""
    deadlocks = [o.error for o in outcomes if o.error is not None and is_deadlock(o.error)]
    assert deadlocks == [], f"{len(deadlocks)} deadlock(s): {deadlocks[:3]!r}"
    database = [o.error for o in outcomes if o.error is not None and is_database_error(o.error)]
    assert database == [], f"{len(database)} database error(s): {database[:3]!r}"
    unexpected = []
    for o in outcomes:
        if o.error is None:
            continue
        parts = o.error.errors if isinstance(o.error, DomainErrors) else [o.error]
        if not all(isinstance(p, allowed) or p.code in codes for p in parts):
            unexpected.append(o.error)
    assert unexpected == [], f"{len(unexpected)} unexpected error(s): {unexpected[:3]!r}"


async def fetch_all(
    sessions: async_sessionmaker[AsyncSession], sql: str, **params: Any
) -> list[Any]:
    """Rows of a read-only query, in a fresh transaction."""
    async with sessions.begin() as session:
        return list((await session.execute(text(sql), params)).all())


async def fetch_one(sessions: async_sessionmaker[AsyncSession], sql: str, **params: Any) -> Any:
    """The single row of a read-only query."""
    rows = await fetch_all(sessions, sql, **params)
    assert len(rows) == 1, rows
    return rows[0]


async def levels_of(sessions: async_sessionmaker[AsyncSession], sku: str) -> list[Any]:
    """``(level_id, location, on_hand, reserved, version)`` of a SKU, by location id."""
    return await fetch_all(
        sessions,
        """SELECT sl.id AS level_id, l.name AS location, sl.on_hand, sl.reserved, sl.version
             FROM stock_levels sl JOIN variants v ON v.id = sl.variant_id
             JOIN locations l ON l.id = sl.location_id
            WHERE v.sku = :sku ORDER BY sl.location_id""",
        sku=sku,
    )


async def movement_counts(sessions: async_sessionmaker[AsyncSession], sku: str) -> Counter[str]:
    """Ledger rows of a SKU by kind."""
    rows = await fetch_all(
        sessions,
        """SELECT m.kind, count(*) AS n FROM stock_movements m
             JOIN variants v ON v.id = m.variant_id WHERE v.sku = :sku GROUP BY m.kind""",
        sku=sku,
    )
    return Counter({r.kind: int(r.n) for r in rows})


async def assert_history_sound(sessions: async_sessionmaker[AsyncSession], sku: str) -> None:
    """Replaying a SKU's ledger: versions run 1..n per level with no gap, every delta
    leads from the previous figures to the recorded ones, and no recorded state ever
    had reserved plus unavailable above on hand (nor either below zero, ADR 0017)."""
    rows = await fetch_all(
        sessions,
        """SELECT m.stock_level_id, m.version, m.on_hand_delta, m.reserved_delta,
                  m.on_hand_after, m.reserved_after,
                  m.damaged_after + m.quality_control_after + m.safety_stock_after
                    AS unavailable_after
             FROM stock_movements m JOIN variants v ON v.id = m.variant_id
            WHERE v.sku = :sku ORDER BY m.stock_level_id, m.version""",
        sku=sku,
    )
    state: dict[int, tuple[int, int, int]] = {}
    for r in rows:
        version, on_hand, reserved = state.get(r.stock_level_id, (0, 0, 0))
        assert r.version == version + 1, r
        assert (r.on_hand_after, r.reserved_after) == (
            on_hand + r.on_hand_delta,
            reserved + r.reserved_delta,
        ), r
        assert 0 <= r.reserved_after <= r.reserved_after + r.unavailable_after <= r.on_hand_after, r
        state[r.stock_level_id] = (r.version, r.on_hand_after, r.reserved_after)
