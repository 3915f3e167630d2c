"""Maintenance commands: expire-reservations, check-pending-payments, check-invariants,
prune, deliver."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from gql_inventory.cli._common import (
    cli_services,
    database_url,
    in_transaction,
    refuse_unsafe_settings,
)
from gql_inventory.settings import get_settings


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

    from gql_inventory.jobs.sweeper import sweep_once
    from gql_inventory.stock.expiry import SweepResult, due_reservations

    max_age = timedelta(minutes=max_age_minutes) if max_age_minutes else None
    if dry_run:
        due = in_transaction(lambda s: due_reservations(s, limit=limit, max_age=max_age))
        for reservation_id in due:
            typer.echo(str(reservation_id))
        typer.echo(f"{len(due)} reservation(s) due; nothing changed (--dry-run)", err=True)
        return
    refuse_unsafe_settings()  # Services.create would refuse with a traceback

    async def sweep() -> SweepResult:
        services = cli_services(get_settings())
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

    from gql_inventory.jobs.payment_check import PaymentCheckResult, check_pending_payments

    refuse_unsafe_settings()  # Services.create would refuse with a traceback
    settings = get_settings()
    min_age = (
        timedelta(minutes=older_than_minutes)
        if older_than_minutes is not None
        else timedelta(seconds=settings.pending_payment_min_age_seconds)
    )

    async def check() -> PaymentCheckResult:
        services = cli_services(settings)
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
    summary = (
        f"{len(result.checked)} pending order(s) checked, {len(result.changed)} changed, "
        f"{len(result.failed)} failed"
    )
    if result.offline:
        summary += "; offline: nothing changed"
    elif dry_run:
        summary += "; nothing changed (--dry-run)"
    typer.echo(summary, err=True)
    if result.failed:
        raise typer.Exit(1)


def check_invariants() -> None:
    """Report every stock level that disagrees with its ledger or reservations (exit 1 if any)."""
    from gql_inventory.stock.invariants import find_violations

    violations = in_transaction(find_violations)
    for violation in violations:
        typer.echo(violation.describe())
    if violations:
        typer.echo(f"{len(violations)} stock level(s) violate the invariants", err=True)
        raise typer.Exit(1)
    typer.echo("all stock levels agree with the ledger and active reservations")


def prune_command() -> None:
    """Delete idempotency records, processed Stripe event ids and succeeded deliveries past
    their retention (IDEMPOTENCY_RETENTION_DAYS, STRIPE_EVENT_RETENTION_DAYS,
    DELIVERY_RETENTION_DAYS), 1,000 rows per transaction; one pass, now."""
    from gql_inventory.jobs.prune import PruneResult, prune
    from gql_inventory.kit.db import create_engine, make_sessionmaker

    settings = get_settings()

    async def main() -> PruneResult:
        engine = create_engine(
            database_url(),
            pool_size=2,
            max_overflow=0,
            statement_cache=settings.db_statement_cache,
        )
        try:
            return await prune(make_sessionmaker(engine), settings)
        finally:
            await engine.dispose()

    result = asyncio.run(main())
    for table, deleted in result.deleted.items():
        typer.echo(f"{table}: {deleted} row(s) deleted")


def deliver_command(
    loop: Annotated[
        bool, typer.Option("--loop", help="Keep delivering until interrupted (Ctrl-C).")
    ] = False,
) -> None:
    """Deliver due outbox messages (webhooks), as the app's worker does (OUTBOX_WORKER).

    One pass by default: claim what is due now and send it until nothing due is left (retries
    scheduled later wait); prints the attempts made. Safe beside running servers: each
    message is claimed by one worker at a time (docs/adr/0019-outbox-delivery.md).
    """
    from gql_inventory.outbound.worker import delivery_worker

    refuse_unsafe_settings()

    async def deliver() -> int:
        services = cli_services(get_settings())
        try:
            async with delivery_worker(services, run=loop) as worker:
                if loop:
                    await asyncio.Event().wait()  # until Ctrl-C cancels
                return await worker.run_once()
        finally:
            await services.close()

    try:
        made = asyncio.run(deliver())
    except KeyboardInterrupt:
        return
    typer.echo(f"{made} delivery attempt(s) made")
