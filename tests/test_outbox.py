"""The outbox rows (issue 17): written in the caller's transaction, gone with a rollback."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.models import WebhookTopic
from gql_inventory.outbound.outbox import NewMessage, enqueue, event_body

Sessions = async_sessionmaker[AsyncSession]


def test_event_body_is_the_standard_webhooks_shape() -> None:
    when = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    body = orjson.loads(event_body(WebhookTopic.STOCK_LOW, {"sku": "MUG"}, when))
    assert body == {
        "type": "stock.low",
        "timestamp": "2026-12-07T12:00:00+00:00",
        "data": {"sku": "MUG"},
    }
    with pytest.raises(ValueError, match="offset"):
        event_body(WebhookTopic.STOCK_LOW, {}, datetime(2026, 12, 7))


async def test_messages_live_and_die_with_the_transaction(sessions: Sessions) -> None:
    body = event_body(WebhookTopic.STOCK_OUT, {"sku": "MUG"}, datetime.now(UTC))
    async with sessions() as session, session.begin():
        await enqueue(session, [NewMessage(WebhookTopic.STOCK_OUT, body, recipient="a@b.c")])
        await session.rollback()
    async with sessions.begin() as session:
        ids = await enqueue(
            session, [NewMessage(WebhookTopic.STOCK_OUT, body, recipient="ops@example.com")]
        )
    async with sessions() as session:
        rows = (await session.execute(text("SELECT * FROM outbox_messages"))).all()
    assert [(r.message_id, r.channel, r.status, r.attempts, r.payload) for r in rows] == [
        (ids[0], "EMAIL", "PENDING", 0, body)
    ]
    assert ids[0].startswith("msg_")


async def test_a_message_names_one_recipient(sessions: Sessions) -> None:
    body = event_body(WebhookTopic.STOCK_OUT, {}, datetime.now(UTC))
    async with sessions.begin() as session:
        with pytest.raises(ValueError, match="endpoint or to an address"):
            await enqueue(session, [NewMessage(WebhookTopic.STOCK_OUT, body)])
        with pytest.raises(ValueError, match="endpoint or to an address"):
            await enqueue(
                session,
                [NewMessage(WebhookTopic.STOCK_OUT, body, endpoint_id=uuid.uuid4(), recipient="x")],
            )
    with pytest.raises(IntegrityError):  # an endpoint that does not exist
        async with sessions.begin() as session:
            await enqueue(
                session, [NewMessage(WebhookTopic.STOCK_OUT, body, endpoint_id=uuid.uuid4())]
            )
