"""The periodic invariant check: every stock level against its ledger and reservations
(`stock.invariants.find_violations`, what `gql-inventory check-invariants` runs), its
result kept in `job_runs`, exported as gauges, each mismatch logged at ERROR, and on drift
an INVARIANT_DRIFT e-mail to ALERT_EMAILS (docs/operations.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.jobs.alerts import alert_operators
from gql_inventory.jobs.job_runs import claim_run, finish_run, last_result
from gql_inventory.kit import metrics
from gql_inventory.kit.logs import get_logger
from gql_inventory.outbound.outbox import OperatorTopic
from gql_inventory.settings import Settings
from gql_inventory.stock.invariants import Violation, find_violations

log = get_logger(__name__)

JOB = "invariant_check"
#: Levels listed in one drift e-mail (the count covers all of them).
MAX_LISTED = 50


@dataclass(frozen=True, slots=True)
class InvariantRun:
    """One check: the levels that disagreed, and the alert e-mails it enqueued."""

    violations: list[Violation]
    alert_ids: list[str]


async def check_invariants_if_due(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, *, now: datetime
) -> InvariantRun | None:
    """Run the check when no process started one within `INVARIANT_CHECK_INTERVAL_SECONDS`
    (claimed in `job_runs`); None when not due or off (interval 0).

    In one transaction (one snapshot): find the violations, record the run
    (``{"violations": n}``) and enqueue the drift alert, so an alert exists exactly when
    a recorded check found drift. Then sets the gauges and logs each mismatch at ERROR
    (``invariants.mismatch``).
    """
    interval = settings.invariant_check_interval_seconds
    if interval <= 0:
        return None
    async with sessions.begin() as session:
        won = await claim_run(session, JOB, now=now, due_after=now - timedelta(seconds=interval))
    if not won:
        return None
    async with sessions.begin() as session:
        violations = await find_violations(session)
        await finish_run(
            session, JOB, now=now, result=orjson.dumps({"violations": len(violations)}).decode()
        )
        alert_ids = (
            await alert_operators(
                session, settings, OperatorTopic.INVARIANT_DRIFT, _drift(violations), now=now
            )
            if violations
            else []
        )
    for v in violations:
        log.error(
            "invariants.mismatch",
            level_id=v.level_id,
            sku=v.sku,
            location=v.location,
            detail=v.describe(),
        )
    metrics.INVARIANT_VIOLATIONS.set(len(violations))
    metrics.INVARIANT_CHECKED_AT.set(now.timestamp())
    log.info("invariants.checked", violations=len(violations), alerts=len(alert_ids))
    return InvariantRun(violations, alert_ids)


def _drift(violations: list[Violation]) -> dict[str, object]:
    """The INVARIANT_DRIFT e-mail's data: ``count`` and the first `MAX_LISTED` ``levels``."""
    return {
        "count": len(violations),
        "levels": [
            {"sku": v.sku, "location": v.location, "levelId": v.level_id, "detail": v.describe()}
            for v in violations[:MAX_LISTED]
        ],
    }


async def refresh_gauges(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Set this process's invariant gauges from the last check any process recorded, so
    every process's /metrics tells the same story."""
    async with sessions() as session:
        finished_at, result = await last_result(session, JOB)
    if finished_at is None or result is None:
        return
    metrics.INVARIANT_VIOLATIONS.set(int(orjson.loads(result).get("violations", 0)))
    metrics.INVARIANT_CHECKED_AT.set(finished_at.timestamp())
