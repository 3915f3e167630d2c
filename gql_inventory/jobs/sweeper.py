"""The in-app periodic expiry task; the advisory lock lets one process sweep at a time."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from gql_inventory.domain.uow import SYSTEM
from gql_inventory.jobs.periodic import in_background, run_every
from gql_inventory.kit import metrics
from gql_inventory.kit.logs import get_logger
from gql_inventory.services import Services
from gql_inventory.stock.expiry import SweepResult, expire_reservations
from gql_inventory.uow import run_in_transaction

log = get_logger(__name__)


async def sweep_once(
    services: Services, *, limit: int = 500, max_age: timedelta | None = None
) -> SweepResult:
    """Expire due reservations in one transaction (each in its own savepoint) and publish
    the EXPIRY movements; then report it.

    The report, once committed and when anything was processed: a structlog event
    ``reservations.swept`` (WARNING when any failed) with ``processed``, ``expired``,
    ``failed`` counts, ``expired_ids`` and ``failures`` (``{reservation id: error}``),
    and the counters ``gql_inventory_expiry_reservations_total{outcome}`` and
    ``gql_inventory_expiry_sweeps_total{result}``. `max_age`: also end holds that old.
    """
    try:
        result = await run_in_transaction(
            services, lambda s: expire_reservations(s, limit=limit, max_age=max_age), actor=SYSTEM
        )
    except Exception:
        metrics.EXPIRY_SWEEPS.labels("failed").inc()
        raise
    report(result)
    return result


def report(result: SweepResult) -> None:
    """Log and count a committed sweep (see `sweep_once`)."""
    metrics.EXPIRY_SWEEPS.labels("skipped_lock" if result.skipped_lock else "done").inc()
    if result.skipped_lock or not result.processed:
        return
    metrics.EXPIRY_RESERVATIONS.labels("expired").inc(len(result.expired))
    metrics.EXPIRY_RESERVATIONS.labels("failed").inc(len(result.failed))
    metrics.ORDERS.labels("cancelled").inc(len(result.cancelled_orders))
    emit = log.warning if result.failed else log.info
    emit(
        "reservations.swept",
        processed=result.processed,
        expired=len(result.expired),
        failed=len(result.failed),
        orders_cancelled=len(result.cancelled_orders),
        expired_ids=[str(r) for r in result.expired],
        failures={str(r): error for r, error in result.failed.items()},
    )


async def run_sweeper(services: Services, interval_seconds: float) -> None:
    """Sweep every `interval_seconds` until cancelled; a failed sweep is logged and retried."""
    await run_every(
        interval_seconds,
        lambda: sweep_once(services),
        failure_event="reservations.sweep_failed",
    )


def sweeper(
    services: Services, interval_seconds: float
) -> contextlib.AbstractAsyncContextManager[None]:
    """Run `run_sweeper` in the background for the duration of the block."""
    return in_background(run_sweeper(services, interval_seconds), name="expiry-sweeper")
