"""The relay: gives committed movements their `position`, then publishes them.

Why positions and not ids: ids are handed out at insert, so a transaction that
commits later may carry a smaller id than one already sent, and a resume "after
id N" would skip it. The relay only ever sees committed rows (READ COMMITTED),
so it numbers movements in an order no later commit can undercut:

- one relay at a time across all processes (`pg_try_advisory_xact_lock`);
- it takes the visible, un-positioned movements in id order and numbers them on
  from ``max(position)``: gap-free and append-only;
- per stock level, id order = version order = commit order, because the level's
  row lock serialises its writers (a later writer cannot even insert before the
  earlier one commits); so per level, positions follow versions.

The relay runs in every app process; it is woken after each local commit that
wrote movements, and polls as a backstop (movements written by the CLI, or a
process that died between commit and wake-up, are positioned within a poll).

A pass borrows a pooled connection and talks to asyncpg directly (no SQLAlchemy
statement or result layer, no greenlet hop per statement): it runs after every
group commit of reserveStock, so its cost is per batch (docs/adr/0011-request-path.md).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from gql_inventory.kit import metrics
from gql_inventory.kit.logs import get_logger
from gql_inventory.live.ledger import EVENT_COLUMNS
from gql_inventory.live.wire import StockEvent

log = get_logger(__name__)

#: pg advisory lock key of the relay ("gqlinv-relay" folded into a bigint).
RELAY_LOCK_KEY = 0x67716C696E765F72

_TRY_LOCK = "SELECT pg_try_advisory_xact_lock($1)"

_ASSIGN = f"""
    WITH top AS (
        SELECT coalesce(max(position), 0) AS position FROM stock_movements
    ),
    pending AS (
        SELECT id, row_number() OVER (ORDER BY id) AS n
          FROM (SELECT id FROM stock_movements
                 WHERE position IS NULL
                 ORDER BY id
                 LIMIT $1) AS unpositioned
    ),
    positioned AS (
        UPDATE stock_movements m
           SET position = top.position + pending.n
          FROM top, pending
         WHERE m.id = pending.id
        RETURNING m.*
    )
    SELECT {EVENT_COLUMNS}
      FROM positioned m JOIN variants v ON v.id = m.variant_id
     ORDER BY m.position
    """

#: How often a pass retries while another relay holds the lock (then it waits for the poll).
_MAX_LOCK_RETRIES = 500

Publish = Callable[[Sequence[StockEvent]], Awaitable[None]]


async def assign_positions(engine: AsyncEngine, *, limit: int = 1000) -> list[StockEvent] | None:
    """Position up to `limit` committed movements in one transaction.

    Returns the newly positioned events in position order, or None when another
    relay holds the lock.
    """
    async with engine.connect() as conn:
        pg: Any = (await conn.get_raw_connection()).driver_connection  # asyncpg.Connection
        try:
            async with pg.transaction():
                if not await pg.fetchval(_TRY_LOCK, RELAY_LOCK_KEY):
                    return None
                rows = await pg.fetch(_ASSIGN, limit)
        except BaseException:
            # the pool never saw this connection fail: drop it rather than hand it on
            await conn.invalidate()
            raise
    return [StockEvent.from_row(_Row(row)) for row in rows]


class _Row:
    """An asyncpg record seen as a SQLAlchemy row (`StockEvent.from_row` reads `_mapping`)."""

    __slots__ = ("_mapping",)

    def __init__(self, record: Any) -> None:
        self._mapping = record


class Relay:
    """Positions and publishes movements; `wake()` after a commit, `run()` as a task."""

    def __init__(
        self,
        engine: AsyncEngine,
        publish: Publish,
        *,
        poll_seconds: float = 1.0,
        batch_size: int = 1000,
        lock_retry_seconds: float = 0.01,
    ) -> None:
        self._engine = engine
        self._publish = publish
        self._poll_seconds = poll_seconds
        self._batch_size = batch_size
        self._lock_retry_seconds = lock_retry_seconds
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Ask for a pass soon (movements were committed)."""
        self._wake.set()

    async def run_pass(self) -> int:
        """Position and publish everything committed so far; returns how many.

        When another process's relay holds the lock, waits for it and tries
        again (for a while), so the caller's committed movements are positioned
        on return, by this relay or the other.
        """
        total = 0
        busy = 0
        while True:
            events = await assign_positions(self._engine, limit=self._batch_size)
            if events is None:
                busy += 1
                if busy > _MAX_LOCK_RETRIES:  # a stuck relay elsewhere: leave it to the poll
                    return total
                await asyncio.sleep(self._lock_retry_seconds)
                continue
            busy = 0
            if events:
                total += len(events)
                metrics.RELAY_POSITIONED.inc(len(events))
                try:
                    await self._publish(events)
                except Exception as exc:  # hubs recover from the ledger
                    log.warning("relay.publish_failed", error=repr(exc), count=len(events))
            if len(events) < self._batch_size:
                return total

    async def run(self) -> None:
        """Loop until cancelled: a pass on every wake-up, and at least every poll interval."""
        while True:
            # `asyncio.timeout`, not `wait_for`: on 3.11 the latter can swallow the
            # cancellation that stops the relay (CPython gh-86296), hanging shutdown.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_seconds):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.run_pass()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("relay.pass_failed", error=repr(exc))
                await asyncio.sleep(self._poll_seconds)
