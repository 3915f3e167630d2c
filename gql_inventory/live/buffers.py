"""Bounded per-subscriber event buffers: memory per subscriber never grows past a limit."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from gql_inventory.kit import metrics
from gql_inventory.kit.logs import get_logger

log = get_logger(__name__)

T = TypeVar("T")


class SubscriberClosed(Exception):
    """The subscriber was dropped (its buffer overflowed, or the hub stopped)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EventBuffer(Generic[T]):
    """A bounded FIFO between the hub (producer) and one subscriber (consumer).

    While `replaying` (the subscriber is still reading its backlog from the
    ledger), an overflow only drops the buffered items and sets `lagged`: the
    subscriber re-reads them from the ledger. Once live, an overflow closes the
    buffer and calls `on_overflow(reason)`.
    """

    def __init__(
        self, size: int, on_overflow: Callable[[str], None], *, replaying: bool = False
    ) -> None:
        self._size = size
        self._items: deque[T] = deque()
        self._ready = asyncio.Event()
        self._on_overflow = on_overflow
        self.replaying = replaying
        self.lagged = False
        self.closed_reason: str | None = None

    def __len__(self) -> int:
        return len(self._items)

    def offer(self, item: T) -> bool:
        """Queue `item`; False when the buffer is (now) closed."""
        if self.closed_reason is not None:
            return False
        if len(self._items) >= self._size:
            if self.replaying:
                self.lagged = True
                self._drop_items()
                return True
            reason = (
                f"subscriber too slow: more than {self._size} events waiting; "
                "reconnect and resume with your last cursor"
            )
            self.close(reason)
            metrics.SLOW_SUBSCRIBERS_DROPPED.inc()
            log.warning("live.slow_subscriber_dropped", buffer_size=self._size)
            self._on_overflow(reason)
            return False
        self._items.append(item)
        metrics.QUEUED_EVENTS.inc()
        self._ready.set()
        return True

    def go_live(self) -> bool:
        """Leave replay mode unless an overflow happened meanwhile (then: read the ledger
        again and retry). Returns True when live."""
        if self.lagged:
            self.lagged = False
            return False
        self.replaying = False
        return True

    async def get(self) -> T:
        """The next item; raises `SubscriberClosed` once closed and drained."""
        while not self._items:
            if self.closed_reason is not None:
                raise SubscriberClosed(self.closed_reason)
            self._ready.clear()
            await self._ready.wait()
        metrics.QUEUED_EVENTS.dec()
        return self._items.popleft()

    def close(self, reason: str) -> None:
        """Drop what is queued and wake the consumer, who gets `SubscriberClosed`."""
        if self.closed_reason is None:
            self.closed_reason = reason
            self._drop_items()
            self._ready.set()

    def _drop_items(self) -> None:
        metrics.QUEUED_EVENTS.dec(len(self._items))
        self._items.clear()
