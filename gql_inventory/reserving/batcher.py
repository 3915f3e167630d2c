"""The per-process group-commit queue of reserveStock (ADR 0008).

Requests wait in a queue; a worker takes everything queued (up to `max_batch`) and
applies it in one transaction (`stock.reserve_batch`) on its own asyncpg
connection. While a batch is in flight the next one accumulates, so there is no
added wait at low load (a lone request is a batch of one) and one commit is shared by
everyone who arrived meanwhile under load.

After the commit each request gets its own outcome, the ledger rows are published once
(`EventSink.publish`, as `uow.run_in_transaction` does) and refusals are counted. A
database error before the commit applies nothing: every request of that batch gets
`BatchAborted`, and its caller retries it alone on the one-transaction path
(`gql_inventory.reserving.front`). An error raised by the COMMIT itself leaves the outcome
unknown, so those requests get the error, as the one-transaction path would give it.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import asyncpg  # type: ignore[import-untyped]  # no stubs, no py.typed
from sqlalchemy import RowMapping

from gql_inventory.domain.errors import DomainError
from gql_inventory.kit import metrics
from gql_inventory.kit.logs import get_logger
from gql_inventory.live.sink import EventSink
from gql_inventory.stock.allocation import ReservationLimits
from gql_inventory.stock.levels import LineRequest
from gql_inventory.stock.reserve_batch import (
    BatchRequest,
    CommitFailed,
    reserve_batch,
)

log = get_logger(__name__)

#: Batches applied at once by one process (each on its own connection). One: a second
#: batch mostly waits for the first one's row locks and halves the batches; measured
#: 2.6-3.8x the throughput of two on 23 SKUs (ADR 0008).
IN_FLIGHT = 1


class BatchAborted(Exception):
    """The batch holding this request failed before its commit: nothing of it was
    applied. Retry the request alone (the one-transaction path)."""


@dataclass(slots=True)
class _Pending:
    request: BatchRequest
    future: asyncio.Future[Reserved]


@dataclass(frozen=True, slots=True)
class Reserved:
    """A batched reservation as committed: its id and its `reservations` row (a mapping
    of the table's columns, ``created_at`` being the batch transaction's time)."""

    id: uuid.UUID
    row: RowMapping


class ReserveBatcher:
    """Group commit of reserveStock for one process.

    `database_url` is a libpq URL (each worker opens its own asyncpg connection on
    first use and reopens it after a failure); `limits` are the reservation limits;
    `events` receives each committed batch's ledger rows; `max_batch` caps the requests
    per transaction. Workers start on first use in the running event loop; `close`
    stops them after the queue drains.
    """

    def __init__(
        self,
        database_url: str,
        limits: ReservationLimits,
        events: EventSink,
        *,
        max_batch: int = 256,
        in_flight: int = IN_FLIGHT,
    ) -> None:
        self._url = database_url
        self._limits = limits
        self._events = events
        self._max_batch = max_batch
        self._in_flight = in_flight
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    async def reserve(
        self, lines: Sequence[LineRequest], *, ttl_seconds: int | None, actor: str
    ) -> uuid.UUID:
        """Reserve every line or none, in the next batch; the new reservation's id.

        Raises what `reserve_row` raises.
        """
        return (await self.reserve_row(lines, ttl_seconds=ttl_seconds, actor=actor)).id

    async def reserve_row(
        self, lines: Sequence[LineRequest], *, ttl_seconds: int | None, actor: str
    ) -> Reserved:
        """Reserve every line or none, in the next batch; the new reservation (`Reserved`).

        Raises what `reservations.reserve` raises (`InvalidInput`, `UnknownSku`,
        `ShortAcrossLocations` or `DomainErrors`), `BatchAborted` (retry alone), or
        the database error of a failed COMMIT.
        """
        if self._closed:
            raise BatchAborted("the batcher is closed")
        self._start()
        future: asyncio.Future[Reserved] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(BatchRequest(lines, ttl_seconds, actor), future))
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
                conn = await asyncpg.connect(self._url)
            result = await reserve_batch(conn, [p.request for p in batch], limits=self._limits)
        except CommitFailed as exc:
            log.warning("reserve_batch.commit_failed", requests=len(batch), error=repr(exc))
            _fail(batch, exc.__cause__ or exc)
            return await _discard(conn)
        except Exception as exc:
            log.warning("reserve_batch.aborted", requests=len(batch), error=repr(exc))
            _fail(batch, BatchAborted(repr(exc)))
            return await _discard(conn)
        if result.movements:
            try:
                await self._events.publish(result.movements)
            except Exception as exc:  # committed: subscribers catch up from the ledger
                log.warning("reserve_batch.publish_failed", error=repr(exc))
        for pending, outcome in zip(batch, result.outcomes, strict=True):
            if isinstance(outcome, DomainError):
                metrics.count_refusal(outcome)
                if not pending.future.done():
                    pending.future.set_exception(outcome)
            elif not pending.future.done():
                # a plain dict of the table's columns: its readers only index it by column name
                row = cast(RowMapping, result.created[outcome])
                pending.future.set_result(Reserved(outcome, row))
        return conn


def _fail(batch: list[_Pending], error: BaseException) -> None:
    for pending in batch:
        if not pending.future.done():
            pending.future.set_exception(error)


async def _discard(conn: Any) -> None:
    """Close a connection after a failure (it may be dead or mid-transaction)."""
    if conn is not None:
        with contextlib.suppress(Exception):
            conn.terminate()
