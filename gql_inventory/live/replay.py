"""Bounds on resuming from a cursor (docs/adr/0014-explicit-fan-out.md): how far back a
replay may start, how many run at once, and how much of the event loop each may take.

- Window: a resume cursor more than `max_events` positions behind the ledger's head
  (`max_events_admin` for admins) is refused (`ReplayRefused`, "expired"): the client
  re-reads the state and subscribes without a cursor. A forged `stock:0` is such a cursor.
- Budgets: at most `concurrency` replays run at once in the process, and at most the
  connection's own slots (`Settings.replay_per_connection`) on one websocket; others wait
  their turn, up to `queue_seconds`, then are refused ("busy").
- Chunks: a replay yields to the event loop after every `chunk_events` events, so the
  requests and events of everyone else interleave with it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncEngine

from gql_inventory.kit.logs import get_logger
from gql_inventory.live.ledger import pages_after
from gql_inventory.live.wire import StockEvent

log = get_logger(__name__)

RefusalReason = Literal["expired", "busy"]


class ReplayRefused(Exception):
    """A replay the bounds do not allow: "expired" (cursor outside the window; `limit` is
    the window in events, `behind` how far back the cursor is) or "busy" (no slot within
    `limit` seconds)."""

    def __init__(self, reason: RefusalReason, *, limit: float, behind: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.limit = limit
        self.behind = behind


@dataclass(frozen=True)
class ReplayLimits:
    """The bounds (from `Settings`): events behind the head, replays at once, the longest
    wait for a slot (seconds) and the events sent between yields to the loop."""

    max_events: int = 10_000
    max_events_admin: int = 100_000
    concurrency: int = 2
    queue_seconds: float = 10.0
    chunk_events: int = 10


class ReplayGate:
    """The process's replay bounds and its global slots (one per hub)."""

    def __init__(self, engine: AsyncEngine, limits: ReplayLimits) -> None:
        self.engine = engine
        self.limits = limits
        self._slots = asyncio.Semaphore(limits.concurrency)

    def check_window(self, position: int, head: int, *, admin: bool) -> None:
        """Raise `ReplayRefused` ("expired") when `position` is further than the window
        behind `head` (the ledger's last position)."""
        limit = self.limits.max_events_admin if admin else self.limits.max_events
        behind = head - position
        if behind > limit:
            log.info("live.replay_refused", reason="expired", behind=behind, limit=limit)
            raise ReplayRefused("expired", limit=limit, behind=behind)

    async def acquire(self, connection: asyncio.Semaphore | None) -> ReplayLease:
        """A slot of the connection's and of the process's (in that order), waiting up to
        `queue_seconds`; raises `ReplayRefused` ("busy") after that."""
        lease = ReplayLease()
        waited = False
        try:
            async with asyncio.timeout(self.limits.queue_seconds):
                for semaphore in (connection, self._slots):
                    if semaphore is None:
                        continue
                    if semaphore.locked():
                        waited = True
                    await semaphore.acquire()
                    lease.held.append(semaphore)
        except TimeoutError:
            lease.release()
            log.warning("live.replay_refused", reason="busy", waited=self.limits.queue_seconds)
            raise ReplayRefused("busy", limit=self.limits.queue_seconds) from None
        except BaseException:
            lease.release()
            raise
        if waited:
            log.info("live.replay_queued")
        return lease

    async def events(
        self, after: int, variant_ids: frozenset[int] | None
    ) -> AsyncIterator[StockEvent]:
        """Ledger events after `after` (optionally of some variants), yielding to the
        event loop after every `chunk_events`."""
        chunk = self.limits.chunk_events
        count = 0
        async for page in pages_after(self.engine, after, variant_ids):
            for event in page:
                yield event
                count += 1
                if count % chunk == 0:
                    await asyncio.sleep(0)


class ReplayLease:
    """The slots one replay holds; `release` is idempotent."""

    __slots__ = ("held",)

    def __init__(self) -> None:
        self.held: list[asyncio.Semaphore] = []

    def release(self) -> None:
        """Give the slots back."""
        held, self.held = self.held, []
        for semaphore in reversed(held):
            with contextlib.suppress(ValueError):
                semaphore.release()
