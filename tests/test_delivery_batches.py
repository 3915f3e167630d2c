"""The delivery worker's batched statements (ADR 0019, "Throughput"): a claim returns each
message's endpoint as it read it; one `record_many` records several outcomes, each row
guarded by its own attempt."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gql_inventory.outbound.delivery import claim, record_many
from gql_inventory.outbound.messages import SendOutcome
from gql_inventory.outbound.secrets import secret_box
from tests.support.outbox import (
    clean_outbox,
    delivery_settings,
    make_endpoint,
    outbox_rows,
    put_messages,
)

Sessions = async_sessionmaker[AsyncSession]
WEBHOOK_ONLY: dict[str, Any] = {"webhook_slots": 4, "busy": {}, "email_slots": 0}


@pytest.fixture(autouse=True)
async def _empty_outbox(engine: AsyncEngine) -> None:
    await clean_outbox(engine)


async def test_the_claim_returns_each_message_with_its_endpoint(sessions: Sessions) -> None:
    """The sender needs no read of its own: url, state and sealed secret come with the row."""
    settings = delivery_settings()
    endpoint, secret = await make_endpoint(sessions, settings, "http://127.0.0.1:9/a")
    await put_messages(sessions, endpoint, 2)
    async with sessions.begin() as session:
        claimed = await claim(session, **WEBHOOK_ONLY, limit=10, lease_seconds=60)
    assert len(claimed) == 2
    for message in claimed:
        assert message.endpoint is not None
        assert (message.endpoint.url, message.endpoint.enabled) == ("http://127.0.0.1:9/a", True)
        assert secret_box(settings).open(message.endpoint.secret) == secret
        assert message.endpoint.previous is None


async def test_one_batch_records_each_outcome_under_its_own_attempt(
    sessions: Sessions, engine: AsyncEngine
) -> None:
    """Four outcomes in one `record_many`: a late attempt 1 and the newer attempt 2 of one
    message (only attempt 2 is written), a 410 (FAILED, endpoint disabled) and a 500
    (PENDING again, retried on the schedule)."""
    settings = delivery_settings()
    first, _ = await make_endpoint(sessions, settings, "http://127.0.0.1:9/first")
    gone, _ = await make_endpoint(sessions, settings, "http://127.0.0.1:9/gone")
    (twice, flaky) = await put_messages(sessions, first, 2)
    (gone_id,) = await put_messages(sessions, gone, 1)
    async with sessions.begin() as session:
        claimed = {
            m.message_id: m
            for m in await claim(session, **WEBHOOK_ONLY, limit=10, lease_seconds=60)
        }
    async with engine.begin() as conn:  # the lease of `twice` passes: claimed again
        await conn.execute(
            text("UPDATE outbox_messages SET next_attempt_at = now() WHERE message_id = :m"),
            {"m": twice},
        )
    async with sessions.begin() as session:
        (again,) = await claim(session, **WEBHOOK_ONLY, limit=10, lease_seconds=60)
    assert (claimed[twice].attempt, again.attempt) == (1, 2)
    async with sessions.begin() as session:
        statuses = await record_many(
            session,
            [
                (claimed[twice], SendOutcome(False, 500, "late")),
                (again, SendOutcome(True, 204)),
                (claimed[gone_id], SendOutcome(False, 410, "410 Gone", gone=True)),
                (claimed[flaky], SendOutcome(False, 500, "HTTP 500")),
            ],
            settings,
        )
    assert statuses == [None, "SUCCEEDED", "FAILED", "PENDING"]
    rows = await outbox_rows(engine)
    assert (rows[twice].status, rows[twice].attempts, rows[twice].last_error) == (
        "SUCCEEDED",
        2,
        None,
    )
    assert (rows[gone_id].status, rows[gone_id].last_status_code) == ("FAILED", 410)
    assert (rows[flaky].status, rows[flaky].last_error) == ("PENDING", "HTTP 500")
    async with engine.connect() as conn:
        enabled = dict(
            (await conn.execute(text("SELECT id, enabled FROM webhook_endpoints"))).all()
        )
    assert enabled == {first: True, gone: False}
