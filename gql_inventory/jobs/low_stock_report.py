"""The daily low-stock report: once a day from `LOW_STOCK_REPORT_HOUR` (UTC), across
processes and restarts (claimed in `job_runs`), a LOW_STOCK_REPORT e-mail to ALERT_EMAILS
listing the variants at or under their threshold (`stock.low_stock`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.jobs.alerts import alert_operators
from gql_inventory.jobs.job_runs import claim_run, finish_run
from gql_inventory.kit.logs import get_logger
from gql_inventory.outbound.outbox import OperatorTopic
from gql_inventory.settings import Settings
from gql_inventory.stock.low_stock import low_stock_page

log = get_logger(__name__)

JOB = "low_stock_report"
_EPSILON = timedelta(microseconds=1)
#: Variants listed in one report, fewest available first (the count covers all).
MAX_LISTED = 500


@dataclass(frozen=True, slots=True)
class LowStockReport:
    """A report run: how many variants were low, and the e-mails enqueued (none when no
    variant was low)."""

    count: int
    alert_ids: list[str]


def report_time(now: datetime, hour: int) -> datetime:
    """Today's (UTC, `now`'s day) report time: `hour`:00."""
    return now.replace(hour=hour, minute=0, second=0, microsecond=0)


async def send_low_stock_report_if_due(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, *, now: datetime
) -> LowStockReport | None:
    """Report when `now` (UTC) is past today's report hour and no process has reported
    since; None when not due, off (`LOW_STOCK_REPORT_HOUR` -1) or there is nobody to
    tell (SMTP_URL or ALERT_EMAILS unset).

    The claim commits first (one winner a day, however many callers); the list, the
    e-mails and the run's record then commit together. Nothing is sent on a day when no
    variant is low.
    """
    hour = settings.low_stock_report_hour
    if hour < 0 or not settings.operator_mail_enabled():
        return None
    due = report_time(now, hour)
    if now < due:
        return None
    async with sessions.begin() as session:
        # Due when the last report started before today's report time.
        won = await claim_run(session, JOB, now=now, due_after=due - _EPSILON)
    if not won:
        return None
    async with sessions.begin() as session:
        page = await low_stock_page(
            await session.connection(), location_id=None, first=MAX_LISTED, after=None
        )
        data = {
            "date": now.date().isoformat(),
            "count": page.total_count,
            "variants": [
                {
                    "sku": row.variant.sku,
                    "title": row.variant.title,
                    "available": row.available,
                    "threshold": row.variant.low_stock_threshold,
                }
                for row in page.rows
            ],
        }
        ids = (
            await alert_operators(session, settings, OperatorTopic.LOW_STOCK_REPORT, data, now=now)
            if page.total_count
            else []
        )
        await finish_run(
            session, JOB, now=now, result=orjson.dumps({"low": page.total_count}).decode()
        )
    log.info("self_care.low_stock_reported", low=page.total_count, emails=len(ids))
    return LowStockReport(page.total_count, ids)
