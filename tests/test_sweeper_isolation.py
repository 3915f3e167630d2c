"""The expiry sweeper isolates failures: one reservation that cannot expire (a database
trigger refuses it) rolls back alone; the others expire; the report names it.
`expire-reservations --max-age-minutes N` also ends old holds whatever their TTL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
import structlog
from prometheus_client import REGISTRY
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from structlog.testing import LogCapture

from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.jobs import sweeper
from gql_inventory.models import Reservation, ReservationStatus, StockMovement
from gql_inventory.services import Services
from gql_inventory.settings import Settings
from gql_inventory.stock import reservations
from gql_inventory.stock.levels import LineRequest
from gql_inventory.stock.reservations import ReservationLimits
from tests.support.catalog import Catalog
from tests.support.cli import run_cli
from tests.support.invariants import assert_invariants
from tests.support.payments import (
    Stock,
    stock,
)
from tests.support.sinks import RecordingSink

LIMITS = ReservationLimits(default_ttl_seconds=900, max_ttl_seconds=7200, max_lines=10)


@pytest.fixture
async def services(
    settings: Settings, database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Services]:
    made = Services.create(settings, database_url)
    made.events = RecordingSink()
    yield made
    await made.close()


async def cart(
    sessions: async_sessionmaker[AsyncSession], lines: dict[str, int], *, ttl: int = 900
) -> uuid.UUID:
    async with sessions.begin() as session:
        return await reservations.reserve(
            UnitOfWork(session, actor="system"),
            [LineRequest(sku=s, quantity=q) for s, q in lines.items()],
            limits=LIMITS,
            ttl_seconds=ttl,
        )


async def make_due(sessions: async_sessionmaker[AsyncSession], *ids: uuid.UUID) -> None:
    async with sessions.begin() as session:
        await session.execute(
            update(Reservation)
            .where(Reservation.id.in_(ids))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=5))
        )


async def statuses(
    sessions: async_sessionmaker[AsyncSession], ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, ReservationStatus]:
    async with sessions.begin() as session:
        rows = await session.execute(
            select(Reservation.id, Reservation.status).where(Reservation.id.in_(ids))
        )
        return {r.id: r.status for r in rows}


@pytest.fixture
async def refuse_expiry(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[list[str]]:
    """A trigger that raises when one chosen reservation is about to become EXPIRED.

    Append the reservation id to the yielded list before sweeping.
    """
    chosen: list[str] = []
    yield chosen
    async with sessions.begin() as session:
        await session.execute(text("DROP TRIGGER IF EXISTS test_refuse_expiry ON reservations"))
        await session.execute(text("DROP FUNCTION IF EXISTS test_refuse_expiry()"))


async def install_refusal(sessions: async_sessionmaker[AsyncSession], rid: uuid.UUID) -> None:
    async with sessions.begin() as session:
        await session.execute(
            text(
                f"""
                CREATE FUNCTION test_refuse_expiry() RETURNS trigger AS $$
                BEGIN
                  IF NEW.id = '{rid}'::uuid AND NEW.status::text = 'EXPIRED' THEN
                    RAISE EXCEPTION 'injected expiry failure of %', NEW.id;
                  END IF;
                  RETURN NEW;
                END $$ LANGUAGE plpgsql
                """
            )
        )
        await session.execute(
            text(
                "CREATE TRIGGER test_refuse_expiry BEFORE UPDATE ON reservations "
                "FOR EACH ROW EXECUTE FUNCTION test_refuse_expiry()"
            )
        )


def counter(outcome: str) -> float:
    return (
        REGISTRY.get_sample_value("gql_inventory_expiry_reservations_total", {"outcome": outcome})
        or 0.0
    )


async def test_one_failing_reservation_does_not_stop_the_sweep(
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    services: Services,
    refuse_expiry: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = await cart(sessions, {"MUG": 2, "SHIRT-S": 1})
    bad = await cart(sessions, {"MUG": 3, "SHIRT-M": 1})
    last = await cart(sessions, {"MUG": 4})
    await make_due(sessions, first, bad, last)
    await install_refusal(sessions, bad)
    refuse_expiry.append(str(bad))
    logs = LogCapture()
    monkeypatch.setattr(
        sweeper, "log", structlog.wrap_logger(structlog.PrintLogger(), processors=[logs])
    )
    before = {o: counter(o) for o in ("expired", "failed")}

    result = await sweeper.sweep_once(services)

    assert sorted(result.expired) == sorted([first, last])
    assert list(result.failed) == [bad]
    assert "injected expiry failure" in result.failed[bad]
    assert result.processed == 3
    assert await statuses(sessions, [first, bad, last]) == {
        first: ReservationStatus.EXPIRED,
        bad: ReservationStatus.ACTIVE,
        last: ReservationStatus.EXPIRED,
    }
    # Only the failing reservation's units stay reserved; its EXPIRY rows were rolled back.
    assert await stock(sessions, "MUG") == Stock(on_hand=50, reserved=3)
    assert await stock(sessions, "SHIRT-M") == Stock(on_hand=3, reserved=1)
    assert await stock(sessions, "SHIRT-S") == Stock(on_hand=12, reserved=0)
    async with sessions.begin() as session:
        refs = (
            (
                await session.execute(
                    select(StockMovement.reference).where(StockMovement.kind == "EXPIRY")
                )
            )
            .scalars()
            .all()
        )
    assert f"reservation:{bad}" not in refs
    assert len(refs) == 3
    await assert_invariants(sessions)
    # Nothing of the rolled-back savepoint was published.
    sink = services.events
    assert isinstance(sink, RecordingSink)
    assert len(sink.movements) == 3
    assert all(m.reference != f"reservation:{bad}" for m in sink.movements)
    # The report: a structlog event and the counters.
    (event,) = [e for e in logs.entries if e["event"] == "reservations.swept"]
    assert event["log_level"] == "warning"
    assert (event["processed"], event["expired"], event["failed"]) == (3, 2, 1)
    assert sorted(event["expired_ids"]) == sorted([str(first), str(last)])
    assert list(event["failures"]) == [str(bad)]
    assert counter("expired") - before["expired"] == 2
    assert counter("failed") - before["failed"] == 1

    # The next sweep retries it; once the fault is gone, it expires.
    async with sessions.begin() as session:
        await session.execute(text("DROP TRIGGER test_refuse_expiry ON reservations"))
    again = await sweeper.sweep_once(services)
    assert (again.expired, again.failed) == ([bad], {})
    assert await stock(sessions, "MUG") == Stock(on_hand=50, reserved=0)
    await assert_invariants(sessions)


async def test_cli_max_age_expires_old_holds_whatever_their_ttl(
    sessions: async_sessionmaker[AsyncSession], catalog: Catalog, cli_env: None
) -> None:
    old = await cart(sessions, {"MUG": 1}, ttl=7200)
    young = await cart(sessions, {"MUG": 2}, ttl=7200)
    async with sessions.begin() as session:
        await session.execute(
            update(Reservation)
            .where(Reservation.id == old)
            .values(created_at=text("now() - interval '31 minutes'"))
        )
    dry = await run_cli("expire-reservations", "--max-age-minutes", "30", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert str(old) in dry.output
    assert str(young) not in dry.output
    assert await statuses(sessions, [old, young]) == {
        old: ReservationStatus.ACTIVE,
        young: ReservationStatus.ACTIVE,
    }
    plain = await run_cli("expire-reservations")
    assert plain.exit_code == 0, plain.output
    assert await statuses(sessions, [old]) == {old: ReservationStatus.ACTIVE}

    result = await run_cli("expire-reservations", "--max-age-minutes", "30")
    assert result.exit_code == 0, result.output
    assert "1 processed, 1 expired, 0 failed" in result.output
    assert await statuses(sessions, [old, young]) == {
        old: ReservationStatus.EXPIRED,
        young: ReservationStatus.ACTIVE,
    }
    assert await stock(sessions, "MUG") == Stock(on_hand=50, reserved=2)
    await assert_invariants(sessions)


async def test_cli_reports_a_failing_reservation_and_exits_1(
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    cli_env: None,
    refuse_expiry: list[str],
) -> None:
    good = await cart(sessions, {"MUG": 1})
    bad = await cart(sessions, {"MUG": 1})
    await make_due(sessions, good, bad)
    await install_refusal(sessions, bad)
    result = await run_cli("expire-reservations")
    assert result.exit_code == 1, result.output
    assert "2 processed, 1 expired, 1 failed" in result.output
    assert f"failed {bad}: " in result.output
    assert "injected expiry failure" in result.output
    assert await statuses(sessions, [good, bad]) == {
        good: ReservationStatus.EXPIRED,
        bad: ReservationStatus.ACTIVE,
    }
