"""Serving the API: serve (uvicorn, the embedded database, the development admin
token), schema, migrate, and the embedded database's stop-database and database-status."""

from __future__ import annotations

import os
import secrets
import signal
import sys
from pathlib import Path
from typing import Any

import typer

from gql_inventory.cli._common import database_url, refuse_unsafe_settings
from gql_inventory.kit.logs import configure_logging
from gql_inventory.settings import Settings, get_settings

EXAMPLE_QUERY = """{
  products(first: 3) {
    edges { node { title variants { sku title available
      stockLevels { location { name } onHand reserved available } } } }
  }
}"""


def migrate(revision: str = "head") -> None:
    """Apply database migrations (Alembic) up to REVISION."""
    from gql_inventory.migrations import upgrade_database

    upgrade_database(database_url(), revision)
    typer.echo(f"database migrated to {revision}")


def schema() -> None:
    """Print the GraphQL schema (SDL)."""
    from gql_inventory.schema import print_sdl

    sys.stdout.write(print_sdl())


def _exit_on_sigterm() -> None:
    """Make SIGTERM end the process like SIGINT does: by an exception, so `atexit` runs.

    uvicorn catches SIGTERM, shuts down gracefully, restores the handler it found and
    raises the signal again. With the default handler the process would die there,
    skipping `atexit`, and the embedded PostgreSQL this process started would be left
    running with nobody to stop it. With this one, `SystemExit` unwinds instead, with
    status 0: a requested shutdown that completed is a success (`make stop` ends `make
    run` without an error).
    """

    def handler(_signum: int, _frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, handler)


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    reload: bool = False,
) -> None:
    """Serve the API under uvicorn (GraphiQL at /graphql).

    Without DATABASE_URL it starts the embedded PostgreSQL in DATA_DIR and stops it
    again when it exits, on SIGTERM and SIGINT alike. Its pid is in `serve.pid` beside
    DATA_DIR while it runs (`make stop` uses it).
    """
    import uvicorn

    refuse_unsafe_settings()  # create_app refuses too, but with a traceback per worker
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json, access_log=settings.access_log)
    _exit_on_sigterm()
    database_url()  # start the embedded server once, before workers fork
    dev_token = _development_admin_token()
    pid_file = _serve_pid_file()
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{os.getpid()}\n")
    admin_file = _serve_admin_file()
    admin_file.write_text((DEV_TOKEN if dev_token else CONFIGURED_TOKENS) + "\n")
    typer.echo(f"GraphiQL: http://{host}:{port}/graphql")
    if dev_token:
        typer.echo(
            f"Admin token (development only, in {dev_token_file()}): {dev_token}\n"
            "  header: Authorization: Bearer <token>; `gql-inventory query --admin` sends it"
        )
    else:
        typer.echo(
            "Admin tokens: ADMIN_TOKENS; `gql-inventory query --admin` sends the first one "
            "when ADMIN_TOKENS is set in its environment or .env, else pass --token"
        )
    typer.echo("Try:\n" + EXAMPLE_QUERY)
    try:
        uvicorn.run(
            "gql_inventory.app:create_app",
            **uvicorn_options(settings, host=host, port=port, workers=workers, reload=reload),
        )
    finally:
        pid_file.unlink(missing_ok=True)
        admin_file.unlink(missing_ok=True)


def uvicorn_options(
    settings: Settings, *, host: str, port: int, workers: int, reload: bool
) -> dict[str, Any]:
    """Keyword arguments of `uvicorn.run` for `serve` (the app factory aside).

    uvloop and httptools by name (both come with ``uvicorn[standard]``; naming them
    makes a missing one fail at start-up instead of silently falling back to the
    slower pure-Python loop and parser): httptools as `EdgeHttpProtocol`, which adds
    the keep-alive, read timeouts and connection caps of docs/edge.md, `KEEP_ALIVE_SECONDS`
    also given to uvicorn as its own; the access log only with `ACCESS_LOG`, and
    uvicorn's own records through our structlog format. Each of the `workers`
    processes builds its own app, so its own pool of `DB_POOL_SIZE` (+
    `DB_MAX_OVERFLOW`) connections: see docs/scaling.md for the connection budget.
    """
    from gql_inventory.edge.connections import EdgeHttpProtocol
    from gql_inventory.edge.websocket_protocol import EdgeWebSocketProtocol

    return {
        "factory": True,
        "host": host,
        "port": port,
        "workers": workers,
        "reload": reload,
        "loop": "uvloop",
        # uvicorn's httptools protocol with our timeouts and caps (docs/edge.md)
        "http": EdgeHttpProtocol,
        # uvicorn's websocket protocol with the framed writes of fan-outs (ADR 0022)
        "ws": EdgeWebSocketProtocol,
        "timeout_keep_alive": settings.keep_alive_seconds,
        "access_log": settings.access_log,
        "log_level": "info",
        "log_config": None,  # uvicorn's records go through our structlog format
        # SIGTERM: websockets are closed with 1001 first (the app's lifespan), then
        # whatever still runs after this many seconds is cancelled, so exit is bounded.
        "timeout_graceful_shutdown": settings.shutdown_timeout_seconds,
        # permessage-deflate costs ~38 KiB per connection that negotiates it (ADR 0010)
        "ws_per_message_deflate": settings.websocket_compression,
    }


def dev_token_file() -> Path:
    """Where the development admin token is kept (beside DATA_DIR)."""
    return get_settings().data_dir.parent / "dev-admin-token"


def _development_admin_token() -> str | None:
    """In development with no ADMIN_TOKENS: a random admin token for this data folder.

    Made once (`secrets.token_urlsafe`, file mode 0600 beside DATA_DIR) and put into
    ADMIN_TOKENS as ``dev=<token>`` for this process and its workers, so `make run` has
    an admin without any set-up. Never in production: there ADMIN_TOKENS must be set.
    """
    settings = get_settings()
    if settings.admin_tokens or settings.environment == "production":
        return None
    path = dev_token_file()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24) + "\n")
    token = path.read_text().strip()
    os.environ["ADMIN_TOKENS"] = f"dev={token}"
    get_settings.cache_clear()
    return token


def _serve_pid_file() -> Path:
    return get_settings().data_dir.parent / "serve.pid"


#: What `serve-admin` (beside `serve.pid`) holds: which admin tokens the server accepts.
DEV_TOKEN = "dev-admin-token"
CONFIGURED_TOKENS = "ADMIN_TOKENS"


def _serve_admin_file() -> Path:
    return get_settings().data_dir.parent / "serve-admin"


def running_server_admin() -> str | None:
    """Which admin tokens the `serve` running on this DATA_DIR accepts: `DEV_TOKEN` (the
    development token file) or `CONFIGURED_TOKENS` (its ADMIN_TOKENS, not written down
    anywhere); None when no `serve` runs here (its pid file names no live process)."""
    try:
        pid = int(_serve_pid_file().read_text().strip())
        source = _serve_admin_file().read_text().strip()
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    return source


def stop_database() -> None:
    """Stop the embedded PostgreSQL in DATA_DIR (what `make run` started); exit 0 either way."""
    from gql_inventory.kit.db import stop_embedded_postgres

    data_dir = get_settings().data_dir
    if stop_embedded_postgres(data_dir):
        typer.echo(f"embedded PostgreSQL in {data_dir} stopped")
    else:
        typer.echo(f"no embedded PostgreSQL running in {data_dir}")


def database_status() -> None:
    """Exit 0 when the embedded PostgreSQL in DATA_DIR runs, 3 when it does not."""
    from gql_inventory.kit.db import embedded_postgres_running

    data_dir = get_settings().data_dir
    if embedded_postgres_running(data_dir):
        typer.echo(f"embedded PostgreSQL running in {data_dir}")
        return
    typer.echo(f"no embedded PostgreSQL running in {data_dir}")
    raise typer.Exit(3)
