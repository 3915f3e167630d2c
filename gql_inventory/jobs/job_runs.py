"""When each self-care job last ran (`job_runs`), and the claim that lets one process run
a job once per period across processes and restarts (docs/operations.md)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_CLAIM = text(
    """
    INSERT INTO job_runs (name, last_started_at) VALUES (:name, :now)
    ON CONFLICT (name) DO UPDATE SET last_started_at = EXCLUDED.last_started_at
     WHERE job_runs.last_started_at IS NULL OR job_runs.last_started_at <= :due_after
    RETURNING name
    """
)

_FINISH = text(
    "UPDATE job_runs SET last_finished_at = :now, last_result = :result WHERE name = :name"
)


async def claim_run(
    session: AsyncSession, name: str, *, now: datetime, due_after: datetime
) -> bool:
    """Claim a run of job `name` at `now` when its last one started at or before
    `due_after` (or never); True when this caller won it.

    One statement: two callers at once queue on the row, and the second sees the first's
    `last_started_at`, so exactly one wins. Commit the session before the work, so other
    processes see the claim; a run that then fails is retried after the next period.
    """
    won = await session.execute(_CLAIM, {"name": name, "now": now, "due_after": due_after})
    return won.first() is not None


async def finish_run(session: AsyncSession, name: str, *, now: datetime, result: str) -> None:
    """Record that job `name` finished at `now` with `result` (JSON text)."""
    await session.execute(_FINISH, {"name": name, "now": now, "result": result})


async def last_result(session: AsyncSession, name: str) -> tuple[datetime | None, str | None]:
    """(`last_finished_at`, `last_result`) of job `name`; (None, None) before its first run."""
    row = (
        await session.execute(
            text("SELECT last_finished_at, last_result FROM job_runs WHERE name = :name"),
            {"name": name},
        )
    ).first()
    return (None, None) if row is None else (row.last_finished_at, row.last_result)
