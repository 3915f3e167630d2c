"""Stock events dispatched strictly in position order, holes filled from the ledger.

Stock events arrive as runs of consecutive ledger positions (published by the
relay, `gql_inventory.live.relay`). On a gap (lost message, reconnect,
out-of-order publishers) the missing events are read from the ledger first, so
subscribers never see a hole. The ledger's top position is also polled as a
backstop, so events arrive even while the broadcast backend is down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from gql_inventory.kit import metrics
from gql_inventory.kit.logs import get_logger
from gql_inventory.live.ledger import LEDGER_PAGE, max_position, read_after
from gql_inventory.live.wire import StockEvent

log = get_logger(__name__)


class LedgerCatchUp:
    """The process's position in the ledger, and the one way events advance it.

    `dispatch(event)` fans an event out (it is called once per position, in order);
    `on_progress()` is called after each ledger page read (busy catching up is not a
    dead backend: the listener's heartbeat clock is reset). Times are in seconds.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        dispatch: Callable[[StockEvent], Awaitable[None]],
        *,
        on_progress: Callable[[], None],
        poll_seconds: float,
    ) -> None:
        self.engine = engine
        self.position = 0
        self.ready = asyncio.Event()
        self.poll_seconds = poll_seconds
        self._dispatch_event = dispatch
        self._on_progress = on_progress
        self._lock = asyncio.Lock()
        self._last_poll = time.monotonic()

    async def init_position(self) -> None:
        """Start at the ledger's top position (retrying every `poll_seconds` while the
        database is unreachable), then set `ready`."""
        while not self.ready.is_set():
            try:
                async with self.engine.connect() as conn:
                    self.position = await max_position(conn)
                metrics.HUB_POSITION.set(self.position)
                self.ready.set()
            except Exception as exc:
                log.warning("live.database_unavailable", error=repr(exc))
                await asyncio.sleep(self.poll_seconds)

    async def catch_up(self, why: str) -> bool:
        """Dispatch every ledger event after `position` (`why` is logged); False when
        reading the ledger failed (it stopped short)."""
        async with self._lock:
            return await self._catch_up_locked(why)

    async def on_stock(self, events: list[StockEvent]) -> None:
        """Broadcast events arrived: dispatch those after `position`, in order, reading
        any gap before them from the ledger."""
        async with self._lock:
            self._last_poll = time.monotonic()
            for event in sorted(events, key=lambda e: e.position):
                if event.position <= self.position:
                    continue  # already dispatched (read from the ledger earlier)
                if event.position != self.position + 1:
                    await self._catch_up_locked("gap")
                    if event.position <= self.position:
                        continue
                    if event.position != self.position + 1:
                        log.warning("live.gap_unresolved", at=self.position, got=event.position)
                        return
                await self._dispatch(event)

    async def poll(self) -> None:
        """At most every `poll_seconds`: catch up when the ledger's top moved (nothing
        came over the backend), or follow it back when it was rewound."""
        if time.monotonic() - self._last_poll < self.poll_seconds:
            return
        self._last_poll = time.monotonic()
        async with self.engine.connect() as conn:
            top = await max_position(conn)
        if top == self.position:
            return
        async with self._lock:
            if top < self.position:
                log.warning("live.ledger_rewound", position=self.position, top=top)
                self.position = top
                return
            await self._catch_up_locked("poll")

    async def _dispatch(self, event: StockEvent) -> None:
        self.position = event.position
        metrics.HUB_POSITION.set(event.position)
        await self._dispatch_event(event)

    async def _catch_up_locked(self, why: str) -> bool:
        """Dispatch every ledger event after `self.position` (caller holds `_lock`);
        False when reading the ledger failed."""
        start = self.position
        complete = True
        try:
            while True:
                async with self.engine.connect() as conn:
                    page = await read_after(conn, self.position, limit=LEDGER_PAGE)
                self._on_progress()
                for event in page:
                    if event.position != self.position + 1:  # pragma: no cover - gap-free
                        log.error("live.ledger_gap", at=self.position, got=event.position)
                        return False
                    await self._dispatch(event)
                if len(page) < LEDGER_PAGE:
                    break
        except Exception as exc:
            log.warning("live.catch_up_failed", error=repr(exc), why=why)
            complete = False
        if self.position != start:
            metrics.LEDGER_CATCH_UPS.inc()
            log.info("live.caught_up", why=why, start=start, position=self.position)
        return complete
