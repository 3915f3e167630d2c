"""`gql-inventory` command line (typer): serve, migrate, import, export, schema, maintenance."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.db import create_engine, make_sessionmaker, resolve_database_url
from gql_inventory.inventory.uow import UnitOfWork
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
        services = Services.create(get_settings(), _database_url())
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
        services = Services.create(settings, _database_url())
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

    from gql_inventory.webhooks import events

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


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    reload: bool = False,
) -> None:
    """Serve the API under uvicorn (GraphiQL at /graphql)."""
    import uvicorn

    _refuse_unsafe_settings()  # create_app refuses too, but with a traceback per worker
    _database_url()  # start the embedded server once, before workers fork
    typer.echo(f"GraphiQL: http://{host}:{port}/graphql")
    typer.echo("Try:\n" + EXAMPLE_QUERY)
    uvicorn.run(
        "gql_inventory.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        log_level="info",
    )


if __name__ == "__main__":  # pragma: no cover
    app()
