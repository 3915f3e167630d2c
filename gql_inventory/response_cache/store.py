"""The bounded store of cached responses: least recently used out first, by entries and bytes."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from gql_inventory.kit.lru import LRU

#: Bookkeeping per entry beyond its key's and response's bytes (dict slot, objects).
ENTRY_OVERHEAD = 256

#: ``(generation, catalog version)`` of the read model an entry was computed under
#: (`gql_inventory.readmodel.reads.ReadModel.tag`).
Tag = tuple[int, int]
#: Bytes counted per variant id an entry depends on.
VARIANT_BYTES = 8
#: Raw ASGI headers (`bytes` is a property of `ResponseStore`).
Headers = tuple[tuple[bytes, bytes], ...]
_Body = bytes


@dataclass(frozen=True, slots=True)
class CachedResponse:
    """One response as it was sent: status, raw ASGI headers and body bytes, valid at `tag`
    while none of `variants` (ids whose stock it read) changed after read-model `epoch`."""

    tag: Tag
    epoch: int
    variants: tuple[int, ...]
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

    __slots__ = ("_entries", "max_bytes", "max_entries", "max_entry_bytes")

    def __init__(self, *, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_bytes // 16
        self._entries: LRU[Hashable, CachedResponse] = LRU(
            max_bytes=max_bytes, max_entry_bytes=self.max_entry_bytes, max_entries=max_entries
        )

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """Bytes held (keys, bodies, headers and `ENTRY_OVERHEAD` each)."""
        return self._entries.bytes

    def get(self, key: Hashable, tag: Tag) -> CachedResponse | None:
        """The entry under `key` if it was computed at `tag`, else None (an entry of
        another tag is stale for good, as tags never come back, and is dropped)."""
        found = self._entries.get(key)
        if found is not None and found.tag != tag:
            self._entries.pop(key)
            return None
        return found

    def drop(self, key: Hashable) -> None:
        """Forget the entry under `key` (found stale), if any."""
        self._entries.pop(key)

    def put(
        self,
        key: Hashable,
        key_bytes: int,
        tag: Tag,
        epoch: int,
        variants: tuple[int, ...],
        headers: Headers,
        body: _Body,
        status: int = 200,
    ) -> bool:
        """Keep a response under `key` (whose own size is `key_bytes`), computed at `tag`
        and read-model `epoch` from the stock of `variants`; False when it is too big to
        keep. Older entries are dropped until both limits hold."""
        size = (
            key_bytes
            + len(body)
            + sum(len(k) + len(v) for k, v in headers)
            + VARIANT_BYTES * len(variants)
            + ENTRY_OVERHEAD
        )
        if self.max_entries <= 0:
            return False
        entry = CachedResponse(tag, epoch, variants, status, headers, body, size)
        return self._entries.put(key, entry, size)

    def clear(self) -> None:
        """Drop every entry."""
        self._entries.clear()
