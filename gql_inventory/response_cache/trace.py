"""Which requests read the database: a per-request flag the loaders set (no imports of ours).

The response cache (`gql_inventory.response_cache.asgi`) puts a fresh `ReadTrace` in the
ASGI scope of each request it may cache (`open_trace`); the request's `Context` takes it
from there (`trace_of`) and hands it to its loaders, and a loader that answers from SQL
instead of the read model calls `ReadTrace.note_database_read`: the response is then not
cached (the read model's tag says nothing about what SQL returned). A stock read answered
by the projection calls `ReadTrace.note_stock_read` with its variant: the response is
then fresh only while those variants are unchanged. The trace travels as an argument,
never through a context variable or a module global.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

#: The ASGI scope key of a request's trace (an extension key of ours).
SCOPE_KEY = "gql_inventory.read_trace"


class ReadTrace:
    """What one execution did: `database` is True once any read went to SQL; `variants`
    holds the ids of the variants whose stock figures it read from the projection."""

    __slots__ = ("database", "variants")

    def __init__(self) -> None:
        self.database = False
        self.variants: set[int] = set()

    def note_database_read(self) -> None:
        """A read of this request went to the database."""
        self.database = True

    def note_stock_read(self, variant_id: int) -> None:
        """This request read the stock figures of `variant_id` from the projection."""
        self.variants.add(variant_id)


def open_trace(scope: MutableMapping[str, Any]) -> ReadTrace:
    """A fresh `ReadTrace` for the request of `scope`, stored in it under `SCOPE_KEY`."""
    trace = scope[SCOPE_KEY] = ReadTrace()
    return trace


def trace_of(scope: MutableMapping[str, Any]) -> ReadTrace | None:
    """The trace the response cache opened for this request's `scope` (None: not traced)."""
    trace = scope.get(SCOPE_KEY)
    return trace if isinstance(trace, ReadTrace) else None
