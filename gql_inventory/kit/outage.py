"""Is an exception "PostgreSQL is unreachable right now" (so: answer 503, retry later)?

An outage is a failure to reach or keep the server, not a bug or a refused
statement: connection refused or reset, DNS failure, timeouts (connect, pool
checkout), a connection SQLAlchemy invalidated, PostgreSQL shutting down or not
accepting connections yet (SQLSTATE 57P01-57P03), too many connections (53300), the
driver's own connection failures (asyncpg's interface and internal client errors), or
the connection-exception class 08 (PostgreSQL docs, "Appendix A. PostgreSQL Error
Codes"). The exception, its DBAPI ``orig`` and its causes are all looked at, since
SQLAlchemy and asyncpg wrap each other's errors.
"""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]  # no stubs, no py.typed
from sqlalchemy import exc as sa_exc

#: asyncpg errors that mean the server is gone or refuses connections.
_ASYNCPG_OUTAGES: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # class 08: connection exceptions
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.CannotConnectNowError,  # 57P03: starting up, shutting down, in recovery
    asyncpg.AdminShutdownError,  # 57P01
    asyncpg.CrashShutdownError,  # 57P02
    asyncpg.TooManyConnectionsError,  # 53300
    asyncpg.InterfaceError,  # the driver's connection is closed or in an unusable state
    asyncpg.InternalClientError,  # e.g. a protocol error on a connection cut mid-reply
)

#: SQLAlchemy errors that mean the same, whatever the driver said.
_SQLALCHEMY_OUTAGES: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,  # no pooled connection came free in time
    sa_exc.DisconnectionError,
)

#: How many wrapped exceptions are looked at, at most (causes can form long chains).
_MAX_CHAIN = 16


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc`, then what it wraps (``orig``, ``__cause__``, ``__context__``), each once."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo and len(seen) < _MAX_CHAIN:
        current = todo.pop(0)
        if any(current is s for s in seen):
            continue
        seen.append(current)
        orig = getattr(current, "orig", None)
        for nxt in (orig, current.__cause__, current.__context__):
            if isinstance(nxt, BaseException):
                todo.append(nxt)
    return seen


def is_database_outage(exc: BaseException) -> bool:
    """True when `exc` (or what it wraps) says the database cannot be reached now."""
    for current in _causes(exc):
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, _SQLALCHEMY_OUTAGES + _ASYNCPG_OUTAGES):
            return True
        if isinstance(current, (OSError, TimeoutError)):  # refused, reset, DNS, timeouts
            return True
    return False


__all__ = ["is_database_outage"]
