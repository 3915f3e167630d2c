"""The service looking after itself (issue 17, item 5): pruning past retention, the
periodic invariant check (gauge, ERROR log, drift e-mail), the daily low-stock report
(once a day across callers), and `gql-inventory prune`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import structlog
from prometheus_client import REGISTRY
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from structlog.testing import LogCapture
from typer.testing import CliRunner, Result

from gql_inventory import cli
from gql_inventory.jobs import invariant_check
from gql_inventory.jobs.low_stock_report import send_low_stock_report_if_due
from gql_inventory.jobs.prune import prune
from gql_inventory.jobs.self_care import self_care_tick
from gql_inventory.models import WebhookTopic
from gql_inventory.outbound.email import EmailSender
from gql_inventory.outbound.outbox import NewMessage, enqueue, event_body
from gql_inventory.settings import Settings, get_settings
from tests.support.catalog import Catalog
from tests.support.outbox import as_claimed
from tests.support.smtp import SmtpServer, running_smtp

Sessions = async_sessionmaker[AsyncSession]
ALERTS = ["ops@example.com", "oncall@example.com"]
T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
async def _clean_outbound(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        await session.execute(text("TRUNCATE outbox_messages, job_runs"))


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with running_smtp() as server:
        yield server


def alerting(smtp_url: str = "smtp://127.0.0.1:1", **extra: Any) -> Settings:
    return Settings(smtp_url=smtp_url, alert_emails=ALERTS, **extra)


async def sql(sessions: Sessions, statement: str, **params: Any) -> list[Any]:
    async with sessions.begin() as session:
        result = await session.execute(text(statement), params)
        return list(result.all()) if result.returns_rows else []


async def outbox(sessions: Sessions) -> list[Any]:
    return await sql(sessions, "SELECT * FROM outbox_messages ORDER BY id")


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(name)


# ------------------------------------------------------------------------------ pruning


async def age_rows(sessions: Sessions) -> None:
    """Idempotency records 8 and 6 days old (3 of the first), Stripe event ids 31, 29,
    4.04 and 3.96 days old, deliveries SUCCEEDED 31 and 29 days ago, FAILED and PENDING
    40 days old."""
    for key, days in (("old-1", 8), ("old-2", 8), ("old-3", 8), ("young", 6)):
        await sql(
            sessions,
            "INSERT INTO idempotency_records (scope, owner, key, request_hash, result, "
            "created_at) VALUES ('reserve', 'storefront', :k, 'h', '{}', "
            "now() - make_interval(days => :d))",
            k=key,
            d=days,
        )
    for event_id, hours in (
        ("evt_31d", 31 * 24),
        ("evt_29d", 29 * 24),
        ("evt_4d", 97),
        ("evt_3d", 95),
    ):
        await sql(
            sessions,
            "INSERT INTO webhook_events (id, provider, type, received_at) VALUES "
            "(:i, 'stripe', 'payment_intent.succeeded', now() - make_interval(hours => :h))",
            i=event_id,
            h=hours,
        )
    body = event_body(WebhookTopic.STOCK_OUT, {"sku": "MUG"}, datetime.now(UTC))
    async with sessions.begin() as session:
        ids = await enqueue(
            session, [NewMessage(WebhookTopic.STOCK_OUT, body, recipient=a) for a in "abcd"]
        )
    for message_id, status, days in zip(
        ids, ("SUCCEEDED", "SUCCEEDED", "FAILED", "PENDING"), (31, 29, 40, 40), strict=True
    ):
        await sql(
            sessions,
            "UPDATE outbox_messages SET status = CAST(:s AS text), "
            "created_at = now() - make_interval(days => :d), "
            "completed_at = CASE WHEN CAST(:s AS text) = 'PENDING' THEN NULL "
            "ELSE now() - make_interval(days => :d) END WHERE message_id = :m",
            s=status,
            d=days,
            m=message_id,
        )


async def left(sessions: Sessions) -> dict[str, list[str]]:
    return {
        "keys": [
            r.key for r in await sql(sessions, "SELECT key FROM idempotency_records ORDER BY key")
        ],
        "events": [r.id for r in await sql(sessions, "SELECT id FROM webhook_events ORDER BY id")],
        "deliveries": [
            r.recipient
            for r in await sql(sessions, "SELECT recipient FROM outbox_messages ORDER BY recipient")
        ],
    }


async def test_prune_deletes_the_old_in_batches_and_keeps_the_young(sessions: Sessions) -> None:
    await age_rows(sessions)
    result = await prune(sessions, Settings(), batch=2)  # 7, 30 and 30 days
    assert result.deleted == {"idempotency_records": 3, "webhook_events": 1, "outbox_messages": 1}
    assert await left(sessions) == {
        "keys": ["young"],
        "events": ["evt_29d", "evt_3d", "evt_4d"],
        "deliveries": ["b", "c", "d"],  # SUCCEEDED 29 days ago, FAILED, PENDING
    }
    [run] = await sql(sessions, "SELECT * FROM job_runs WHERE name = 'prune'")
    assert orjson.loads(run.last_result) == result.deleted
    assert (await prune(sessions, Settings())).deleted == dict.fromkeys(result.deleted, 0)


async def test_no_stripe_event_id_younger_than_four_days_goes_whatever_the_settings(
    sessions: Sessions,
) -> None:
    for days in (0, 3):
        with pytest.raises(ValidationError, match="greater than or equal to 4"):
            Settings(stripe_event_retention_days=days)
    # Settings built without validation (model_copy) still cannot shorten it.
    hostile = Settings().model_copy(update={"stripe_event_retention_days": 0})
    await age_rows(sessions)
    await prune(sessions, hostile)
    assert (await left(sessions))["events"] == ["evt_3d"]


async def run_cli(*args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, cli.app, list(args))


async def test_cli_prune_runs_one_pass(
    sessions: Sessions, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await age_rows(sessions)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("IDEMPOTENCY_RETENTION_DAYS", "9")
    get_settings.cache_clear()
    try:
        done = await run_cli("prune")
    finally:
        get_settings.cache_clear()
    assert done.exit_code == 0, done.output
    assert "idempotency_records: 0 row(s) deleted" in done.output
    assert "webhook_events: 1 row(s) deleted" in done.output
    assert "outbox_messages: 1 row(s) deleted" in done.output
    assert len((await left(sessions))["keys"]) == 4


# ----------------------------------------------------------------- the invariant check


async def test_invariant_check_exports_logs_and_alerts_on_drift(
    sessions: Sessions, catalog: Catalog, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = LogCapture()
    monkeypatch.setattr(
        invariant_check, "log", structlog.wrap_logger(structlog.PrintLogger(), processors=[logs])
    )
    settings = alerting(smtp.url, low_stock_report_hour=-1)
    clean = await invariant_check.check_invariants_if_due(sessions, settings, now=T0)
    assert clean is not None
    assert (clean.violations, clean.alert_ids) == ([], [])
    assert gauge("gql_inventory_invariant_violations") == 0
    assert gauge("gql_inventory_invariant_checked_timestamp_seconds") == T0.timestamp()
    assert await outbox(sessions) == []

    await sql(
        sessions,
        "UPDATE stock_levels SET on_hand = on_hand + 5 WHERE variant_id = "
        "(SELECT id FROM variants WHERE sku = 'MUG')",
    )
    # Not due again within the interval, whoever asks.
    assert (
        await invariant_check.check_invariants_if_due(
            sessions, settings, now=T0 + timedelta(minutes=59)
        )
        is None
    )
    # The app's tick: due an hour later.
    ran = await self_care_tick(sessions, settings, now=T0 + timedelta(hours=1))
    drift = ran["invariant_check"]
    assert isinstance(drift, invariant_check.InvariantRun)
    assert [v.sku for v in drift.violations] == ["MUG"]
    assert gauge("gql_inventory_invariant_violations") == 1
    [mismatch] = [e for e in logs.entries if e["event"] == "invariants.mismatch"]
    assert mismatch["log_level"] == "error"
    assert (mismatch["sku"], mismatch["location"]) == ("MUG", "Main")
    assert "on hand 55 (ledger 50)" in mismatch["detail"]

    rows = await outbox(sessions)
    assert sorted(r.recipient for r in rows) == sorted(ALERTS)
    assert {r.topic for r in rows} == {"INVARIANT_DRIFT"}
    assert sorted(r.message_id for r in rows) == sorted(drift.alert_ids)
    data = orjson.loads(rows[0].payload)["data"]
    assert (data["count"], data["levels"][0]["sku"]) == (1, "MUG")
    sender = EmailSender.from_settings(settings)
    assert sender is not None
    outcome = await sender(as_claimed(rows[0]))
    assert outcome.delivered, outcome
    [mail] = smtp.received
    assert mail.message["Subject"] == "[inventory] 1 stock level(s) disagree with the ledger"
    assert "on hand 55 (ledger 50)" in mail.part("plain")


async def test_drift_without_mail_settings_enqueues_nothing(
    sessions: Sessions, catalog: Catalog
) -> None:
    await sql(sessions, "UPDATE stock_levels SET on_hand = on_hand + 1")
    for settings in (Settings(), Settings(alert_emails=ALERTS), Settings(smtp_url="smtp://h")):
        await sql(sessions, "TRUNCATE job_runs")
        run = await invariant_check.check_invariants_if_due(sessions, settings, now=T0)
        assert run is not None
        assert run.violations
        assert run.alert_ids == []
    assert await outbox(sessions) == []


# ------------------------------------------------------------ the daily low-stock report


async def test_the_daily_report_goes_once_a_day_whoever_asks(
    sessions: Sessions, catalog: Catalog
) -> None:
    await sql(sessions, "UPDATE variants SET low_stock_threshold = 0")
    await sql(sessions, "UPDATE variants SET low_stock_threshold = 5 WHERE sku IN ('MUG', 'CAP')")
    await sql(sessions, "UPDATE variants SET low_stock_threshold = 60 WHERE sku = 'MUG'")
    settings = alerting(low_stock_report_hour=7)

    async def report(at: datetime) -> list[Any]:
        return list(
            await asyncio.gather(
                *(send_low_stock_report_if_due(sessions, settings, now=at) for _ in range(12))
            )
        )

    assert await report(T0.replace(hour=6, minute=59)) == [None] * 12  # before the hour
    first = await report(T0)
    [done] = [r for r in first if r is not None]
    assert done.count == 2
    rows = await outbox(sessions)
    assert sorted(r.recipient for r in rows) == sorted(ALERTS)
    assert {r.topic for r in rows} == {"LOW_STOCK_REPORT"}
    data = orjson.loads(rows[0].payload)["data"]
    assert data["date"] == "2026-12-07"
    assert [(v["sku"], v["available"], v["threshold"]) for v in data["variants"]] == [
        ("CAP", 0, 5),
        ("MUG", 50, 60),
    ]
    assert await report(T0.replace(hour=23)) == [None] * 12  # once that day
    assert await report(T0 + timedelta(hours=22)) == [None] * 12  # 06:00 the next day
    [again] = [r for r in await report(T0 + timedelta(days=1)) if r is not None]
    assert again.count == 2
    assert len(await outbox(sessions)) == 2 * len(ALERTS)
    # Off without anyone to tell.
    await sql(sessions, "TRUNCATE job_runs")
    assert await send_low_stock_report_if_due(sessions, Settings(), now=T0) is None
