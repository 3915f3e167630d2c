"""Which requests read the database: a per-request flag the loaders set (no imports of ours).

The response cache (`gql_inventory.response_cache.asgi`) opens a `ReadTrace` around one
execution; a loader that answers from SQL instead of the read model calls
`note_database_read()`, and the response is then not cached (the read model's tag says
nothing about what SQL returned). The trace lives in a context variable, so DataLoader
batches (tasks made inside the request's context) mark the right request; outside a
trace the call does nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class ReadTrace:
    """What one execution did: `database` is True once any read went to SQL."""

    __slots__ = ("database",)

    def __init__(self) -> None:
        self.database = False


_CURRENT: ContextVar[ReadTrace | None] = ContextVar("gql_inventory_read_trace", default=None)


def note_database_read() -> None:
    """A read of the current request went to the database (no-op outside a trace)."""
    trace = _CURRENT.get()
    if trace is not None:
        trace.database = True


@contextmanager
def read_trace() -> Iterator[ReadTrace]:
    """A fresh `ReadTrace` for the code run inside the block (and the tasks it starts)."""
    trace = ReadTrace()
    token = _CURRENT.set(trace)
    try:
        yield trace
    finally:
        _CURRENT.reset(token)
