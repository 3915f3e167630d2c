"""Background jobs of the app process: run a job every N seconds while the app runs.

The expiry sweeper and the pending-payment check both use it; each job takes its own
PostgreSQL advisory lock, so across many processes one at a time does the work.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine

from gql_inventory.kit.logs import get_logger
from gql_inventory.kit.tasks import stop_task

log = get_logger(__name__)


async def run_every(
    interval_seconds: float,
    job: Callable[[], Awaitable[object]],
    *,
    failure_event: str,
    first_after_interval: bool = False,
) -> None:
    """Await `job()` every `interval_seconds` (seconds) until cancelled.

    A failing run is logged as `failure_event` with its traceback and the next run goes
    ahead as planned; cancellation ends the loop at once. With `first_after_interval`,
    the first run waits one interval (for jobs that have nothing to do at start-up).
    """
    if first_after_interval:
        await asyncio.sleep(interval_seconds)
    while True:
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(failure_event)
        await asyncio.sleep(interval_seconds)


@contextlib.asynccontextmanager
async def in_background(loop: Coroutine[object, object, None], *, name: str) -> AsyncIterator[None]:
    """Run `loop` as a task for the duration of the block; cancel and await it on exit."""
    task: asyncio.Task[None] = asyncio.create_task(loop, name=name)
    try:
        yield
    finally:
        await stop_task(task)  # re-cancels: asyncpg may swallow the first one
