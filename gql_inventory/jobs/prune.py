"""Pruning what the service no longer needs: idempotency records, processed Stripe event
ids and SUCCEEDED outbox deliveries past their retention (settings), in bounded batches,
each its own short transaction, so a large backlog never holds locks for long.

Runs in the app (`jobs.self_care`, every `PRUNE_INTERVAL_SECONDS`, one process per
interval) and as `gql-inventory prune`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import CursorResult, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.jobs.job_runs import claim_run, finish_run
from gql_inventory.kit import metrics
from gql_inventory.kit.logs import get_logger
from gql_inventory.outbound.config import STRIPE_RETRY_DAYS
from gql_inventory.settings import Settings

log = get_logger(__name__)

JOB = "prune"
#: Rows deleted per statement (and per transaction).
BATCH = 1000

#: table -> the condition that a row is old enough to go (``:days`` bound per table).
_OLD = {
    "idempotency_records": "created_at < now() - make_interval(days => :days)",
    "webhook_events": "received_at < now() - make_interval(days => :days)",
    "outbox_messages": "status = 'SUCCEEDED' "
    "AND completed_at < now() - make_interval(days => :days)",
}


@dataclass
class PruneResult:
    """Rows deleted per table."""

    deleted: dict[str, int] = field(default_factory=dict)


def retention_days(settings: Settings) -> dict[str, int]:
    """Days each table keeps its rows. A Stripe event id is kept at least
    `STRIPE_RETRY_DAYS` + 1 days whatever the settings say (the setting refuses less;
    this holds even for settings built without validation): Stripe may still redeliver
    it, and a forgotten id would apply the event twice."""
    return {
        "idempotency_records": settings.idempotency_retention_days,
        "webhook_events": max(settings.stripe_event_retention_days, STRIPE_RETRY_DAYS + 1),
        "outbox_messages": settings.delivery_retention_days,
    }


async def prune(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    now: datetime | None = None,
    batch: int = BATCH,
) -> PruneResult:
    """One pass now (`gql-inventory prune`): claim the run in `job_runs` whatever the
    interval, then `_delete_old`."""
    now = now or datetime.now(UTC)
    async with sessions.begin() as session:
        await claim_run(session, JOB, now=now, due_after=now)
    return await _delete_old(sessions, settings, batch)


async def prune_if_due(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, *, now: datetime
) -> PruneResult | None:
    """`_delete_old` when no process started a prune within `PRUNE_INTERVAL_SECONDS`
    (claimed in `job_runs`); None when not due or off (interval 0)."""
    interval = settings.prune_interval_seconds
    if interval <= 0:
        return None
    async with sessions.begin() as session:
        won = await claim_run(session, JOB, now=now, due_after=now - timedelta(seconds=interval))
    return await _delete_old(sessions, settings, BATCH) if won else None


async def _delete_old(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, batch: int
) -> PruneResult:
    """Delete every row past its retention (`retention_days`), `batch` rows per
    transaction, table by table; record the result in `job_runs`. Counts
    ``gql_inventory_pruned_rows_total{table}`` and logs ``self_care.pruned``."""
    result = PruneResult()
    for table, days in retention_days(settings).items():
        statement = text(
            f"DELETE FROM {table} WHERE ctid = ANY(ARRAY("  # table names from _OLD
            f"SELECT ctid FROM {table} WHERE {_OLD[table]} LIMIT :batch))"
        )
        total = 0
        while True:
            async with sessions.begin() as session:
                done = await session.execute(statement, {"days": days, "batch": batch})
            deleted = cast("CursorResult[Any]", done).rowcount
            total += deleted
            if deleted < batch:
                break
        result.deleted[table] = total
        if total:
            metrics.PRUNED_ROWS.labels(table).inc(total)
    async with sessions.begin() as session:
        await finish_run(
            session, JOB, now=datetime.now(UTC), result=orjson.dumps(result.deleted).decode()
        )
    log.info("self_care.pruned", **result.deleted)
    return result
