"""Stopping background tasks for certain, even when a library swallows a cancellation."""

from __future__ import annotations

import asyncio
import contextlib

from gql_inventory.kit.logs import get_logger

log = get_logger(__name__)

#: How long `stop_task` waits after a cancel before cancelling again (seconds).
RECANCEL_SECONDS = 0.5


async def stop_task(task: asyncio.Task[object] | asyncio.Task[None]) -> None:
    """Cancel `task` and wait until it has ended, cancelling again every
    `RECANCEL_SECONDS` while it runs on; its outcome (result, exception, cancellation)
    is discarded.

    Why again: on Python 3.11 `asyncio.wait_for` can swallow a cancellation that races
    its inner future (CPython gh-86296), and libraries call it on our behalf (asyncpg's
    `connect`, under broadcaster's reconnection): the task then carries on — e.g. the
    hub's listener re-subscribing and waiting forever — and one cancel-and-await never
    returns (seen as a hung app shutdown in tests/test_response_cache.py).
    """
    attempts = 0
    while not task.done():
        if attempts:
            log.info("task.cancel_repeated", task=task.get_name(), attempts=attempts)
        attempts += 1
        task.cancel()
        await asyncio.wait({task}, timeout=RECANCEL_SECONDS)
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.result()
