"""`Lookup`: a DataLoader whose keys are first offered to an in-memory answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from strawberry.dataloader import DataLoader

K = TypeVar("K")
V = TypeVar("V")


class Miss:
    """The read model cannot answer (`MISS`): ask the database."""


MISS = Miss()


class Lookup(Generic[K, V]):
    """A DataLoader's `load`/`load_many`/`prime`, answered by `fast(key)` when it does not
    return `MISS`, else by a per-request DataLoader over `batch` (made on first use)."""

    __slots__ = ("_batch", "_fast", "_loader")

    def __init__(
        self,
        batch: Callable[[Sequence[K]], Awaitable[list[V]]],
        fast: Callable[[K], V | Miss] | None = None,
    ) -> None:
        self._batch = batch
        self._fast = fast
        self._loader: DataLoader[K, V] | None = None

    @property
    def loader(self) -> DataLoader[K, V]:
        """The batching DataLoader of this request."""
        if self._loader is None:
            self._loader = DataLoader[K, V](self._batch)
        return self._loader

    async def load(self, key: K) -> V:
        """The value of `key`."""
        if self._fast is not None:
            hit = self._fast(key)
            if not isinstance(hit, Miss):
                return hit
        return await self.loader.load(key)

    async def load_many(self, keys: Sequence[K]) -> list[V]:
        """Values of `keys`, in their order (misses batched into one query)."""
        fast = self._fast
        if fast is None:
            return await self.loader.load_many(keys)
        hits = [fast(k) for k in keys]
        missed = [k for k, hit in zip(keys, hits, strict=True) if isinstance(hit, Miss)]
        if not missed:
            return hits  # type: ignore[return-value]  # no Miss left
        found = iter(await self.loader.load_many(missed))
        return [next(found) if isinstance(hit, Miss) else hit for hit in hits]

    def prime(self, key: K, value: V) -> None:
        """Cache `value` for `key` in this request's DataLoader."""
        self.loader.prime(key, value)
