"""Reads take turns while writes run: a read flood cannot starve the reserve path
(docs/adr/0021-reads-take-turns.md).

One event loop serves every request of a process. A cached read costs ~30 us in one
callback, a reservation several database round trips, and each round trip waits for
the loop to finish every callback that became ready meanwhile. With 16 read connections
ready at every iteration, a reservation waited for ~16 reads per round trip. `Turns`
bounds that: while any write is in flight, at most `per_turn` reads start per loop
iteration, the others wait their turn in arrival order; with no write in flight, reads
never wait.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterator

from gql_inventory.kit.metrics import READ_TURN_WAITS


class Turns:
    """Admission of reads per event-loop iteration (`per_turn` >= 1) while writes run.

    `writing()` marks a write (any request that is not a stock or catalog read) for
    its duration; `await read()` returns at once when no write runs and nobody waits,
    else when the read's turn comes. One instance per process, used from its loop only.
    """

    __slots__ = ("_loop", "_scheduled", "_started", "_waiting", "per_turn", "writes")

    def __init__(self, per_turn: int) -> None:
        if per_turn < 1:
            raise ValueError("per_turn must be >= 1")
        self.per_turn = per_turn
        #: Writes in flight now.
        self.writes = 0
        self._started = 0  # reads started in this iteration
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def waiting(self) -> int:
        """Reads waiting for their turn now."""
        return len(self._waiting)

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Count a write in flight for the duration of the block."""
        self.writes += 1
        try:
            yield
        finally:
            self.writes -= 1

    async def read(self) -> bool:
        """Wait for this read's turn (at once when no write runs and nobody waits); True
        when it waited (what the read looked up before may have changed meanwhile).

        Raises `asyncio.CancelledError` when the request is cancelled while it waits; its
        place passes to the next read."""
        if not self._waiting and (self.writes == 0 or self._started < self.per_turn):
            if self.writes:
                self._started += 1
                self._schedule()
            return False
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        READ_TURN_WAITS.inc()
        self._waiting.append(future)
        self._schedule()
        await future
        return True

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            if self._loop is None:
                self._loop = asyncio.get_running_loop()
            self._loop.call_soon(self._next_turn)

    def _next_turn(self) -> None:
        """Once per loop iteration while reads start or wait: a new turn of `per_turn`
        reads (all of them once no write runs)."""
        self._scheduled = False
        self._started = 0
        waiting = self._waiting
        while waiting and (self.writes == 0 or self._started < self.per_turn):
            future = waiting.popleft()
            if not future.done():  # not cancelled meanwhile
                future.set_result(None)
                self._started += 1
        if waiting or self._started:
            self._schedule()
