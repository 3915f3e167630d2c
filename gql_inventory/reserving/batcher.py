"""The per-process group-commit queue of reserveStock: the only path of the mutation
(ADR 0008, ADR 0013).

Requests wait in a queue; a worker takes everything queued (up to `max_batch`) and
applies it (`stock.reserve.reserve_many`) in one transaction on its own asyncpg
connection: the transaction and its COMMIT live here, outside the domain. While a batch
is in flight the next one accumulates, so there is no added wait at low load (a lone
request is a batch of one) and one commit is shared by everyone who arrived meanwhile.

Right before the COMMIT the batch's outbox events are written on the same connection
(`outbound.events.write_events`, the function `uow.run_in_transaction` calls; the
variants' figures come from the batch's lock, so it costs one statement).
After the commit each request gets its own outcome and the batch is announced once by
the after-commit function every transaction uses (`Services.after_commit`). A batch that
fails before its COMMIT applied nothing: each of its requests is retried alone, through
the same code (a batch of one); a request that fails alone gets the database error. When
the COMMIT itself fails, its outcome is checked on a fresh connection (the new
reservations' ids are known before the COMMIT): if the reservations are there, every
caller gets its committed outcome; if not, nothing was applied and the requests are
retried alone as above. Only when the database stays unreachable through the whole
check (`VERIFY_DELAYS`) is a caller answered with the database error without knowing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no stubs, no py.typed

from gql_inventory.domain.errors import DomainError
from gql_inventory.domain.rows import ReservationRow
from gql_inventory.domain.uow import Announcements
from gql_inventory.kit import metrics
from gql_inventory.kit.db import asyncpg_options
from gql_inventory.kit.logs import get_logger
from gql_inventory.outbound.events import EmailRouting, write_events
from gql_inventory.stock.allocation import ReservationLimits
from gql_inventory.stock.reserve import ReserveRequest, ReserveResult, reserve_many, stored_count

log = get_logger(__name__)

#: Batches applied at once by one process (each on its own connection). One: a second
#: batch mostly waits for the first one's row locks and halves the batches; measured
#: 2.6-3.8x the throughput of two on 23 SKUs (ADR 0008).
IN_FLIGHT = 1

#: Seconds waited before each try at learning whether a failed COMMIT landed (ADR 0013).
VERIFY_DELAYS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)

AfterCommit = Callable[[Announcements], Awaitable[None]]


class BatcherClosed(Exception):
    """The batcher was closed (the process is stopping): nothing was applied."""


@dataclass(slots=True)
class _Pending:
    request: ReserveRequest
    future: asyncio.Future[ReservationRow]


class ReserveBatcher:
    """Group commit of reserveStock for one process.

    `database_url` is a libpq URL (each worker opens its own asyncpg connection on
    first use and reopens it after a failure); `limits` are the reservation limits;
    `after_commit` announces each committed batch (`Services.after_commit`);
    `max_batch` caps the requests per transaction (1: each its own); `emails` routes the
    outbox events by e-mail (`EmailRouting`, off by default); `statement_cache` False
    opens the connections without asyncpg's statement cache (`DB_STATEMENT_CACHE`,
    PgBouncer in transaction mode). Workers start on
    first use in the running event loop; `close` stops them after the queue drains.
    """

    def __init__(
        self,
        database_url: str,
        limits: ReservationLimits,
        after_commit: AfterCommit,
        *,
        max_batch: int = 256,
        in_flight: int = IN_FLIGHT,
        emails: EmailRouting | None = None,
        statement_cache: bool = True,
    ) -> None:
        self._url = database_url
        self._connect_options = asyncpg_options(statement_cache=statement_cache)
        self._limits = limits
        self._after_commit = after_commit
        self._max_batch = max_batch
        self._in_flight = in_flight
        self._emails = emails or EmailRouting()
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    async def reserve(self, request: ReserveRequest) -> ReservationRow:
        """Apply `request` in the next batch: its reservation (new, or the first one made
        with its idempotency key).

        Raises what `stock.reserve.reserve` raises (`InvalidInput`, `UnknownSku`,
        `ShortAcrossLocations`, `DomainErrors`, `IdempotencyConflict`), the database
        error when it could not be applied (nothing of it was), or `BatcherClosed`.
        """
        if self._closed:
            raise BatcherClosed("the reserve batcher is closed")
        self._start()
        future: asyncio.Future[ReservationRow] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(request, future))
        return await future

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        self._loop = loop  # first use (or a new loop: the old one's workers are gone)
        self._queue = asyncio.Queue()
        self._workers = [
            loop.create_task(self._work(), name=f"reserve-batcher-{n}")
            for n in range(self._in_flight)
        ]

    async def close(self) -> None:
        """Apply what is queued, stop the workers and close their connections."""
        self._closed = True
        if self._loop is not asyncio.get_running_loop():
            return  # never started here
        for _ in self._workers:
            self._queue.put_nowait(None)
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        self._loop = None

    def _take(self, first: _Pending) -> tuple[list[_Pending], bool]:
        """`first` and whatever else is queued (up to `max_batch`, cancelled callers
        left out); and whether a stop marker was met."""
        batch = [first] if not first.future.done() else []
        while len(batch) < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            if item is None:
                return batch, True
            if not item.future.done():
                batch.append(item)
        return batch, False

    async def _work(self) -> None:
        conn: Any = None
        try:
            while True:
                first = await self._queue.get()
                if first is None:
                    return
                batch, stop = self._take(first)
                if batch:
                    conn = await self._apply(conn, batch)
                if stop:
                    return
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()

    async def _apply(self, conn: Any, batch: list[_Pending]) -> Any:
        """Apply one batch and answer its callers; the connection to use next (None
        after a failure: it is reopened for the next batch)."""
        try:
            if conn is None or conn.is_closed():
                conn = await asyncpg.connect(self._url, **self._connect_options)
            transaction = conn.transaction()
            await transaction.start()
            try:
                result = await reserve_many(conn, [p.request for p in batch], limits=self._limits)
                await write_events(conn, _announcements(result), self._emails)
            except BaseException:
                with contextlib.suppress(Exception):  # a lost connection rolls back by itself
                    await transaction.rollback()
                raise
        except Exception as exc:  # nothing of the batch was applied
            log.warning("reserve_batch.aborted", requests=len(batch), error=repr(exc))
            await _discard(conn)
            return await self._alone(batch, exc)
        try:
            await transaction.commit()
        except Exception as exc:
            await _discard(conn)
            landed = await self._landed(result)
            log.warning(
                "reserve_batch.commit_failed",
                requests=len(batch),
                error=repr(exc),
                landed="unknown" if landed is None else landed,
            )
            if landed is None:
                _fail(batch, exc)
                return None
            if not landed:
                return await self._alone(batch, exc)
            conn = None
        await self._answer(batch, result)
        return conn

    async def _alone(self, batch: list[_Pending], error: Exception) -> Any:
        """After a batch applied nothing: retry each request as a batch of one; a lone
        request gets `error`. The connection to use next."""
        if len(batch) == 1:
            _fail(batch, error)
            return None
        conn = None
        for pending in batch:
            if not pending.future.done():
                conn = await self._apply(conn, [pending])
        return conn

    async def _landed(self, result: ReserveResult) -> bool | None:
        """Whether a batch whose COMMIT failed committed (its new reservations exist),
        asked on fresh connections until one answers; None if none did."""
        if not result.created:
            return True  # nothing new to find: replays and refusals are true either way
        for delay in VERIFY_DELAYS:
            await asyncio.sleep(delay)
            try:
                conn = await asyncpg.connect(self._url, **self._connect_options)
                try:
                    found = await stored_count(conn, result.created)
                finally:
                    await _discard(conn)
            except Exception as exc:
                log.warning("reserve_batch.verify_failed", error=repr(exc))
                continue
            return found > 0  # one transaction: all of them or none
        return None

    async def _answer(self, batch: list[_Pending], result: ReserveResult) -> None:
        """Announce a committed batch once, then give each caller its outcome."""
        try:
            await self._after_commit(_announcements(result))
        except Exception as exc:  # committed: subscribers catch up from the ledger
            log.warning("reserve_batch.announce_failed", error=repr(exc))
        for pending, outcome in zip(batch, result.outcomes, strict=True):
            if isinstance(outcome, DomainError):
                metrics.count_refusal(outcome)
                if not pending.future.done():
                    pending.future.set_exception(outcome)
            elif not pending.future.done():
                pending.future.set_result(outcome)


def _announcements(result: ReserveResult) -> Announcements:
    """What a batch announces: its ledger rows, and its variants' figures as its lock left
    them (for its outbox events)."""
    return Announcements(movements=result.movements, variant_stock=result.variant_stock)


def _fail(batch: list[_Pending], error: BaseException) -> None:
    for pending in batch:
        if not pending.future.done():
            pending.future.set_exception(error)


async def _discard(conn: Any) -> None:
    """Close a connection after a failure or a check (it may be dead or mid-transaction)."""
    if conn is not None:
        with contextlib.suppress(Exception):
            conn.terminate()
