"""`gql-inventory` command line (typer): serve, migrate, import, export, schema, maintenance."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.db import create_engine, make_sessionmaker, resolve_database_url
from gql_inventory.inventory.uow import UnitOfWork
from gql_inventory.logs import configure_logging
from gql_inventory.settings import ConfigurationError, get_settings

app = typer.Typer(help="GraphQL inventory service.", no_args_is_help=True)

T = TypeVar("T")

EXAMPLE_QUERY = """{
  products(first: 3) {
    edges { node { title variants { sku title available
      stockLevels { location { name } onHand reserved available } } } }
  }
}"""


def _refuse_unsafe_settings() -> None:
    """Exit 2 with the reason (no traceback) when the settings must not be served with."""
    try:
        get_settings().check_stripe()
    except ConfigurationError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None


def _database_url() -> str:
    return resolve_database_url(get_settings())


def _in_transaction(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one transaction on the configured database; commit if it returns."""

    async def main() -> T:
        engine = create_engine(_database_url(), pool_size=2, max_overflow=0)
        try:
            async with make_sessionmaker(engine).begin() as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def _in_unit_of_work(work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    """`_in_transaction` for a domain use case that writes. What the unit of work would
    announce is dropped: a CLI process serves no subscriptions, and they read the
    ledger on (re)connect (the relay also picks committed movements from it)."""
    return _in_transaction(lambda session: work(UnitOfWork(session)))


@app.command()
def migrate(revision: str = "head") -> None:
    """Apply database migrations (Alembic) up to REVISION."""
    from gql_inventory.migrations import upgrade_database

    upgrade_database(_database_url(), revision)
    typer.echo(f"database migrated to {revision}")


@app.command()
def schema() -> None:
    """Print the GraphQL schema (SDL)."""
    from gql_inventory.schema import print_sdl

    sys.stdout.write(print_sdl())


@app.command("import-shopify")
def import_shopify(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, readable=True)],
    location: Annotated[str | None, typer.Option(help="Location receiving the stock.")] = None,
    currency: Annotated[str, typer.Option(help="ISO 4217 currency of the prices.")] = "USD",
) -> None:
    """Import Shopify product CSV exports; a bad file is refused whole (exit 1)."""
    from gql_inventory.catalog.shopify import CatalogImportError, import_shopify_files

    try:
        report = _in_unit_of_work(
            lambda s: import_shopify_files(s, files, location_name=location, currency=currency)
        )
    except CatalogImportError as exc:
        for problem in exc.problems:
            typer.echo(f"{problem.path}:{problem.line}: {problem.message}", err=True)
        typer.echo(f"refused: {len(exc.problems)} problem(s), nothing imported", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"imported into {report.location}: products {report.products_created} new, "
        f"{report.products_updated} updated; variants {report.variants_created} new, "
        f"{report.variants_updated} updated; {report.units_received} units received, "
        f"{report.levels_counted} levels counted"
    )


@app.command("seed-demo")
def seed_demo() -> None:
    """Load the generated demo catalog (apparel in sizes, three locations)."""
    from gql_inventory.catalog.demo import seed_demo_catalog

    report = _in_unit_of_work(seed_demo_catalog)
    typer.echo(
        f"demo catalog: {report.products_created} products new, "
        f"{report.variants_created} variants new, {report.units_received} units received"
    )


@app.command("export-stock")
def export_stock(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File; default stdout.")
    ] = None,
) -> None:
    """Write every stock level as CSV: sku, location, on_hand, reserved, available."""
    from gql_inventory.catalog.export import export_stock_csv

    if output is None:
        _in_transaction(lambda s: export_stock_csv(s, sys.stdout))
        return
    with output.open("w", newline="", encoding="utf-8") as fh:
        count = _in_transaction(lambda s: export_stock_csv(s, fh))
    typer.echo(f"{count} stock levels written to {output}", err=True)


@app.command("expire-reservations")
def expire_reservations_command(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List, change nothing.")] = False,
    limit: int = 500,
    max_age_minutes: Annotated[
        int | None,
        typer.Option(
            "--max-age-minutes",
            min=1,
            help="Also expire ACTIVE holds created at least N minutes ago, whatever their TTL.",
        ),
    ] = None,
) -> None:
    """Expire ACTIVE reservations past their expiry (one sweeper at a time across processes).

    Pending orders on them are cancelled, their payments too (Stripe when configured).
    Each reservation expires on its own: one that fails is reported (exit 1) and the
    rest still expire.
    """
    from datetime import timedelta

    from gql_inventory.inventory.expiry import SweepResult, due_reservations
    from gql_inventory.services import Services
    from gql_inventory.sweeper import sweep_once

    max_age = timedelta(minutes=max_age_minutes) if max_age_minutes else None
    if dry_run:
        due = _in_transaction(lambda s: due_reservations(s, limit=limit, max_age=max_age))
        for reservation_id in due:
            typer.echo(str(reservation_id))
        typer.echo(f"{len(due)} reservation(s) due; nothing changed (--dry-run)", err=True)
        return
    _refuse_unsafe_settings()  # Services.create would refuse with a traceback

    async def sweep() -> SweepResult:
        services = Services.create(get_settings(), _database_url(), live_events=False)
        try:
            return await sweep_once(services, limit=limit, max_age=max_age)  # with payments
        finally:
            await services.close()

    result = asyncio.run(sweep())
    if result.skipped_lock:
        typer.echo("another sweeper is running; nothing done", err=True)
        return
    for reservation_id, error in result.failed.items():
        typer.echo(f"failed {reservation_id}: {error}", err=True)
    typer.echo(
        f"{result.processed} processed, {len(result.expired)} expired, "
        f"{len(result.failed)} failed: "
        f"{len(result.expired)} reservation(s) expired, "
        f"{len(result.cancelled_orders)} pending order(s) cancelled"
    )
    if result.failed:
        raise typer.Exit(1)


@app.command("check-pending-payments")
def check_pending_payments_command(
    older_than_minutes: Annotated[
        float | None,
        typer.Option(
            "--older-than-minutes",
            min=0,
            help="Check orders pending at least N minutes (default "
            "PENDING_PAYMENT_MIN_AGE_SECONDS).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Ask the provider, print what would be done.")
    ] = False,
    limit: int = 200,
) -> None:
    """Ask the payment provider about orders still pending (a missed or lost webhook) and
    apply what it says exactly as the webhook would; one check at a time across processes.

    Offline (no STRIPE_API_KEY): lists the pending orders and changes nothing. Exit 1
    when any order could not be checked.
    """
    from datetime import timedelta

    from gql_inventory.payment_checker import PaymentCheckResult, check_pending_payments
    from gql_inventory.services import Services

    _refuse_unsafe_settings()  # Services.create would refuse with a traceback
    settings = get_settings()
    min_age = (
        timedelta(minutes=older_than_minutes)
        if older_than_minutes is not None
        else timedelta(seconds=settings.pending_payment_min_age_seconds)
    )

    async def check() -> PaymentCheckResult:
        services = Services.create(settings, _database_url(), live_events=False)
        try:
            return await check_pending_payments(
                services, min_age=min_age, dry_run=dry_run, limit=limit
            )
        finally:
            await services.close()

    result = asyncio.run(check())
    if result.skipped_lock:
        typer.echo("another pending-payment check is running; nothing done", err=True)
        return
    for c in result.checked:
        status = c.provider_status or "unknown"
        line = f"{c.order_id} {c.payment_intent_id} {status} -> {c.outcome}"
        typer.echo(line + (f": {c.error}" if c.error else ""))
    summary = f"{len(result.checked)} pending order(s) checked, {len(result.failed)} failed"
    if result.offline:
        summary += "; offline: nothing changed"
    elif dry_run:
        summary += "; nothing changed (--dry-run)"
    typer.echo(summary, err=True)
    if result.failed:
        raise typer.Exit(1)


@app.command("stripe-event")
def stripe_event(
    event_type: Annotated[
        str,
        typer.Argument(
            metavar="TYPE",
            help="payment_intent.succeeded|payment_failed|processing|requires_action|canceled, "
            "charge.refunded, refund.created|updated|failed, charge.refund.updated",
        ),
    ],
    order: Annotated[str, typer.Option("--order", help="The order's id.")],
    url: Annotated[
        str, typer.Option(help="The webhook endpoint.")
    ] = "http://127.0.0.1:8000/webhooks/stripe",
    amount: Annotated[
        int | None,
        typer.Option(
            help="Minor units. PaymentIntent events: amount paid (default the order total); "
            "charge.refunded: total refunded so far (default what was refunded here, else all); "
            "refund events: the refund's amount."
        ),
    ] = None,
    refund_id: Annotated[
        str | None, typer.Option(help="Refund events: the refund (default the latest one).")
    ] = None,
) -> None:
    """Post a Stripe-shaped event about an order, signed with STRIPE_WEBHOOK_SECRET exactly
    as Stripe signs it, to the webhook (like `stripe trigger`), and print the answer."""
    import uuid

    import httpx

    from gql_inventory.devtools import stripe_events as events

    _refuse_unsafe_settings()
    if event_type not in events.EVENT_TYPES:
        typer.echo(
            f"unsupported TYPE {event_type!r}; one of: {', '.join(events.EVENT_TYPES)}", err=True
        )
        raise typer.Exit(2)
    try:
        order_id = uuid.UUID(order)
    except ValueError as exc:
        typer.echo(f"--order must be an order id (UUID), not {order!r}", err=True)
        raise typer.Exit(2) from exc
    try:
        facts = _in_transaction(lambda s: events.load_order_facts(s, order_id))
    except LookupError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    event = events.event_for_order(event_type, facts, amount=amount, refund_id=refund_id)
    body, headers = events.signed(event, get_settings().webhook_secret())
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=30.0)
    except httpx.HTTPError as exc:
        typer.echo(f"could not post to {url}: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{event_type} {event['id']} -> HTTP {response.status_code} {response.text}")
    if response.is_error:
        raise typer.Exit(1)


@app.command("check-invariants")
def check_invariants() -> None:
    """Report every stock level that disagrees with its ledger or reservations (exit 1 if any)."""
    from gql_inventory.inventory.invariants import find_violations

    violations = _in_transaction(find_violations)
    for violation in violations:
        typer.echo(violation.describe())
    if violations:
        typer.echo(f"{len(violations)} stock level(s) violate the invariants", err=True)
        raise typer.Exit(1)
    typer.echo("all stock levels agree with the ledger and active reservations")


def _exit_on_sigterm() -> None:
    """Make SIGTERM end the process like SIGINT does: by an exception, so `atexit` runs.

    uvicorn catches SIGTERM, shuts down gracefully, restores the handler it found and
    raises the signal again. With the default handler the process would die there,
    skipping `atexit`, and the embedded PostgreSQL this process started would be left
    running with nobody to stop it. With this one, `SystemExit` unwinds instead.
    """

    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


@app.command()
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

    _refuse_unsafe_settings()  # create_app refuses too, but with a traceback per worker
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    _exit_on_sigterm()
    _database_url()  # start the embedded server once, before workers fork
    dev_token = _development_admin_token()
    pid_file = _serve_pid_file()
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{os.getpid()}\n")
    typer.echo(f"GraphiQL: http://{host}:{port}/graphql")
    if dev_token:
        typer.echo(
            f"Admin token (development only, in {_dev_token_file()}): {dev_token}\n"
            "  header: Authorization: Bearer <token>; `gql-inventory query --admin` sends it"
        )
    typer.echo("Try:\n" + EXAMPLE_QUERY)
    try:
        uvicorn.run(
            "gql_inventory.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            reload=reload,
            log_level="info",
            log_config=None,  # uvicorn's records go through our structlog format
            # SIGTERM: websockets are closed with 1001 first (the app's lifespan), then
            # whatever still runs after this many seconds is cancelled, so exit is bounded.
            timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
        )
    finally:
        pid_file.unlink(missing_ok=True)


def _dev_token_file() -> Path:
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
    path = _dev_token_file()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24) + "\n")
    token = path.read_text().strip()
    os.environ["ADMIN_TOKENS"] = f"dev={token}"
    get_settings.cache_clear()
    return token


@app.command()
def query(
    document: Annotated[str, typer.Argument(help="A GraphQL query or mutation.")],
    variables: Annotated[
        str | None, typer.Option("--variables", "-v", help="Variables as a JSON object.")
    ] = None,
    url: Annotated[str, typer.Option(help="The service's GraphQL endpoint.")] = (
        "http://127.0.0.1:8000/graphql"
    ),
    admin: Annotated[
        bool,
        typer.Option(
            "--admin", help="Send the first ADMIN_TOKENS token (or the development token)."
        ),
    ] = False,
) -> None:
    """Post a GraphQL operation to a running service and print the JSON answer (one line).

    Exit 1 when the answer carries GraphQL errors or is not HTTP 200.
    """
    import json

    import httpx

    from gql_inventory.context import admin_identities

    headers = {}
    if admin:
        tokens = admin_identities(get_settings().admin_tokens)
        token = tokens[0][1] if tokens else None
        if token is None and _dev_token_file().exists():
            token = _dev_token_file().read_text().strip()
        if token is None:
            typer.echo("no admin token: set ADMIN_TOKENS", err=True)
            raise typer.Exit(2)
        headers["Authorization"] = f"Bearer {token}"
    body: dict[str, object] = {"query": document}
    if variables:
        body["variables"] = json.loads(variables)
    response = httpx.post(url, json=body, headers=headers, timeout=30)
    typer.echo(response.text.strip())
    if response.status_code != 200 or "errors" in response.json():
        raise typer.Exit(1)


def _serve_pid_file() -> Path:
    return get_settings().data_dir.parent / "serve.pid"


@app.command("stop-database")
def stop_database() -> None:
    """Stop the embedded PostgreSQL in DATA_DIR (what `make run` started); exit 0 either way."""
    from gql_inventory.db import stop_embedded_postgres

    data_dir = get_settings().data_dir
    if stop_embedded_postgres(data_dir):
        typer.echo(f"embedded PostgreSQL in {data_dir} stopped")
    else:
        typer.echo(f"no embedded PostgreSQL running in {data_dir}")


@app.command("database-status")
def database_status() -> None:
    """Exit 0 when the embedded PostgreSQL in DATA_DIR runs, 3 when it does not."""
    from gql_inventory.db import embedded_postgres_running

    data_dir = get_settings().data_dir
    if embedded_postgres_running(data_dir):
        typer.echo(f"embedded PostgreSQL running in {data_dir}")
        return
    typer.echo(f"no embedded PostgreSQL running in {data_dir}")
    raise typer.Exit(3)


if __name__ == "__main__":  # pragma: no cover
    app()
