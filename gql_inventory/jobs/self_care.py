"""The service looking after itself (issue 17, item 5): every `TICK_SECONDS` each app
process asks whether a self-care job is due, and the one that claims it in `job_runs` runs
it: prune (`jobs.prune`), the invariant check (`jobs.invariant_check`), the daily
low-stock report (`jobs.low_stock_report`). docs/operations.md says when each runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.jobs.invariant_check import check_invariants_if_due, refresh_gauges
from gql_inventory.jobs.low_stock_report import send_low_stock_report_if_due
from gql_inventory.jobs.periodic import in_background, run_every
from gql_inventory.jobs.prune import prune_if_due
from gql_inventory.kit import metrics
from gql_inventory.kit.logs import get_logger
from gql_inventory.services import Services
from gql_inventory.settings import Settings

log = get_logger(__name__)

#: Seconds between two looks at what is due (a job runs at most one tick late).
TICK_SECONDS = 60.0

Job = Callable[..., Awaitable[object]]
_JOBS: tuple[tuple[str, Job], ...] = (
    ("prune", prune_if_due),
    ("invariant_check", check_invariants_if_due),
    ("low_stock_report", send_low_stock_report_if_due),
)


def self_care_on(settings: Settings) -> bool:
    """True when any self-care job can run with `settings`."""
    return (
        settings.prune_interval_seconds > 0
        or settings.invariant_check_interval_seconds > 0
        or (settings.low_stock_report_hour >= 0 and settings.operator_mail_enabled())
    )


async def self_care_tick(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, *, now: datetime | None = None
) -> dict[str, object]:
    """Run every job that is due at `now` (default: the clock, UTC), each on its own: one
    that fails is logged (``self_care.failed``) and counted, and the others still run.
    Then refresh the invariant gauges from the last recorded check. Returns each job's
    result (None: not due here)."""
    now = now or datetime.now(UTC)
    results: dict[str, object] = {}
    for name, job in _JOBS:
        try:
            results[name] = await job(sessions, settings, now=now)
        except Exception:
            log.exception("self_care.failed", job=name)
            metrics.SELF_CARE_RUNS.labels(name, "failed").inc()
            results[name] = None
            continue
        if results[name] is not None:
            metrics.SELF_CARE_RUNS.labels(name, "done").inc()
    await refresh_gauges(sessions)
    return results


def self_care(services: Services) -> contextlib.AbstractAsyncContextManager[None]:
    """Run `self_care_tick` every `TICK_SECONDS` in the background for the block (the
    first tick after one interval: start-up has enough to do)."""
    return in_background(
        run_every(
            TICK_SECONDS,
            lambda: self_care_tick(services.sessions, services.settings),
            failure_event="self_care.tick_failed",
            first_after_interval=True,
        ),
        name="self-care",
    )
