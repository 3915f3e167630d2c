"""`LRU`: the one least-recently-used store of the process, bounded by bytes and entries.

Used by the parsed-document cache (`schema.edge.DocumentCache`), the response cache
(`response_cache.store.ResponseStore`) and the two GraphQL classification memos
(`response_cache.operations.ReadOperations`, `websocket.sharing.shared_shape`) through
`LRU.memo`. Sizes are what the caller counts (an estimate of the memory an entry holds).
Why the memos stay three instances: docs/adr/0016-one-of-each.md.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class _Slot(Generic[V]):
    value: V
    size: int


class LRU(Generic[K, V]):
    """Values by key, at most `max_entries` of them and `max_bytes` in all (the sizes
    given to `put`); one entry may take at most `max_entry_bytes` (a bigger one is not
    kept). Adding past a limit drops the least recently used entries first; `get`
    refreshes an entry's recency. Not thread-safe (one event loop)."""

    __slots__ = ("_slots", "bytes", "max_bytes", "max_entries", "max_entry_bytes")

    def __init__(
        self, *, max_bytes: int, max_entry_bytes: int | None = None, max_entries: int | None = None
    ) -> None:
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_bytes if max_entry_bytes is None else max_entry_bytes
        self.max_entries = max_entries
        #: Sum of the sizes of the entries held.
        self.bytes = 0
        self._slots: OrderedDict[K, _Slot[V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._slots)

    def get(self, key: K) -> V | None:
        """The value under `key`, marked as just used; None if absent."""
        slot = self._slots.get(key)
        if slot is None:
            return None
        self._slots.move_to_end(key)
        return slot.value

    def put(self, key: K, value: V, size: int) -> bool:
        """Keep `value` (of `size` bytes) under `key`, replacing what was there; False (and
        nothing changed) when it is bigger than `max_entry_bytes` or `max_entries` is 0."""
        if size > self.max_entry_bytes or self.max_entries == 0:
            return False
        slots = self._slots
        old = slots.pop(key, None)
        if old is not None:
            self.bytes -= old.size
        slots[key] = _Slot(value, size)
        self.bytes += size
        limit = self.max_entries
        while self.bytes > self.max_bytes or (limit is not None and len(slots) > limit):
            _, dropped = slots.popitem(last=False)
            self.bytes -= dropped.size
        return True

    def pop(self, key: K) -> V | None:
        """Remove and return the value under `key` (None if absent)."""
        slot = self._slots.pop(key, None)
        if slot is None:
            return None
        self.bytes -= slot.size
        return slot.value

    def clear(self) -> None:
        """Drop every entry."""
        self._slots.clear()
        self.bytes = 0

    def memo(self, key: K, size: int, compute: Callable[[], V]) -> V:
        """The value kept under `key`, else `compute()` kept under it (when `size` fits):
        a bounded memo of a pure function, None being a value like any other."""
        slot = self._slots.get(key)
        if slot is not None:
            self._slots.move_to_end(key)
            return slot.value
        value = compute()
        self.put(key, value, size)
        return value
