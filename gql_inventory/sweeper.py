"""The in-app periodic expiry task; the advisory lock lets one process sweep at a time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from gql_inventory.inventory.expiry import SweepResult, expire_reservations
from gql_inventory.logs import get_logger
from gql_inventory.services import Services
from gql_inventory.uow import run_in_transaction

log = get_logger(__name__)


async def sweep_once(services: Services, *, limit: int = 500) -> SweepResult:
    """Expire due reservations in one transaction and publish the EXPIRY movements."""
    return await run_in_transaction(
        services,
        lambda s: expire_reservations(s, limit=limit),
    )


async def run_sweeper(services: Services, interval_seconds: float) -> None:
    """Sweep every `interval_seconds` until cancelled; a failed sweep is logged and retried."""
    while True:
        try:
            result = await sweep_once(services)
            if result.expired:
                log.info(
                    "reservations.expired",
                    count=len(result.expired),
                    orders_cancelled=len(result.cancelled_orders),
                )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reservations.sweep_failed")
        await asyncio.sleep(interval_seconds)


@contextlib.asynccontextmanager
async def sweeper(services: Services, interval_seconds: float) -> AsyncIterator[None]:
    """Run `run_sweeper` in the background for the duration of the block."""
    task = asyncio.create_task(run_sweeper(services, interval_seconds))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
