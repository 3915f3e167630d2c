"""The bounded store of cached responses: least recently used out first, by entries and bytes."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

#: Bookkeeping per entry beyond its key's and response's bytes (dict slot, objects).
ENTRY_OVERHEAD = 256

#: ``(epoch, catalog version)`` of the read model an entry was computed under
#: (`gql_inventory.readmodel.reads.ReadModel.tag`).
Tag = tuple[int, int]


@dataclass(frozen=True, slots=True)
class CachedResponse:
    """One response as it was sent: status, raw ASGI headers and body bytes, valid at `tag`."""

    tag: Tag
    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    size: int


class ResponseStore:
    """Responses by key, at most `max_entries` of them and `max_bytes` in all (keys,
    bodies and headers counted, plus `ENTRY_OVERHEAD` each); one entry may take at most
    `max_bytes // 16` (a bigger response is not kept). Adding past a limit drops the
    least recently used entries; `get` refreshes an entry's recency.
    """

    __slots__ = ("_entries", "bytes", "max_bytes", "max_entries", "max_entry_bytes")

    def __init__(self, *, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_bytes // 16
        self.bytes = 0
        self._entries: OrderedDict[Hashable, CachedResponse] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, tag: Tag) -> CachedResponse | None:
        """The entry under `key` if it was computed at `tag`, else None (an entry of
        another tag is stale for good, as tags never come back, and is dropped)."""
        entries = self._entries
        found = entries.get(key)
        if found is None:
            return None
        if found.tag != tag:
            del entries[key]
            self.bytes -= found.size
            return None
        entries.move_to_end(key)
        return found

    def put(
        self,
        key: Hashable,
        key_bytes: int,
        tag: Tag,
        status: int,
        headers: tuple[tuple[bytes, bytes], ...],
        body: bytes,
    ) -> bool:
        """Keep a response under `key` (whose own size is `key_bytes`); False when it is
        too big to keep. Older entries are dropped until both limits hold."""
        size = key_bytes + len(body) + sum(len(k) + len(v) for k, v in headers) + ENTRY_OVERHEAD
        if size > self.max_entry_bytes or self.max_entries <= 0:
            return False
        entries = self._entries
        old = entries.pop(key, None)
        if old is not None:
            self.bytes -= old.size
        entries[key] = CachedResponse(tag, status, headers, body, size)
        self.bytes += size
        while len(entries) > self.max_entries or self.bytes > self.max_bytes:
            _, dropped = entries.popitem(last=False)
            self.bytes -= dropped.size
        return True

    def clear(self) -> None:
        """Drop every entry."""
        self._entries.clear()
        self.bytes = 0
