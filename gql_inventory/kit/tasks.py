"""Stopping background tasks for certain, even when a library swallows a cancellation."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

from gql_inventory.kit.logs import get_logger

log = get_logger(__name__)

#: How long `stop_task` waits after a cancel before cancelling again (seconds).
RECANCEL_SECONDS = 0.5


async def reap(
    tasks: Iterable[asyncio.Task[Any]],
    *,
    interval: float = RECANCEL_SECONDS,
    max_cancels: int | None = None,
) -> int:
    """Cancel `tasks` and wait until they are done, cancelling again those that
    swallowed the cancellation, every `interval` seconds (at most `max_cancels` times in
    all; None: until they end). Returns how many cancellations had to be repeated; the
    tasks' outcomes are retrieved and discarded. If the caller is cancelled meanwhile,
    the tasks are cancelled once more and the cancellation propagates.

    Why again: on Python 3.11 `asyncio.wait_for` can swallow a cancellation that races
    its inner future (CPython gh-86296), and libraries call it on our behalf (asyncpg's
    `connect`, under broadcaster's reconnection): the task then carries on, and one
    cancel-and-await never returns (seen as a hung app shutdown in
    tests/test_response_cache.py).
    """
    tasks = list(tasks)
    pending = {task for task in tasks if not task.done()}
    done = [task for task in tasks if task.done()]
    for task in pending:
        task.cancel()
    again = 0
    attempts = 1
    try:
        while pending:
            finished, pending = await asyncio.wait(pending, timeout=interval)
            done.extend(finished)
            if not pending:
                break
            if max_cancels is not None and attempts >= max_cancels:
                log.error("task.not_cancellable", tasks=sorted(t.get_name() for t in pending))
                break
            attempts += 1
            for task in pending:
                again += 1
                log.warning("task.cancel_repeated", task=task.get_name(), attempts=attempts)
                task.cancel()
    except asyncio.CancelledError:
        for task in pending:
            task.cancel()
        raise
    for task in done:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            task.result()
    return again


async def stop_task(task: asyncio.Task[object] | asyncio.Task[None]) -> None:
    """Cancel `task` and wait until it has ended, cancelling again every
    `RECANCEL_SECONDS` while it runs on (`reap`); its outcome is discarded."""
    await reap([task])
