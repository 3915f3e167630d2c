"""Outbox rows and webhook endpoints for the delivery tests, written as the service would:
an endpoint with a sealed secret (`outbound.secrets`), messages through `outbox.enqueue`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gql_inventory.models import WebhookEndpoint, WebhookTopic
from gql_inventory.outbound.messages import ClaimedMessage
from gql_inventory.outbound.outbox import NewMessage, enqueue, event_body
from gql_inventory.outbound.secrets import new_secret, secret_box
from gql_inventory.settings import Settings

#: One Fernet key for the test process and the servers it starts (each server has its own
#: data folder, so the development key file would differ).
SECRETS_KEY = Fernet.generate_key().decode()


def delivery_settings(**overrides: Any) -> Settings:
    """Development settings with short retries and timeouts, a fixed secrets key."""
    values: dict[str, Any] = {
        "admin_tokens": ["admin-secret"],
        "webhook_secrets_key": SECRETS_KEY,
        "webhook_retry_schedule": [1],
        "webhook_timeout_seconds": 5.0,
        "webhook_endpoint_concurrency": 2,
        "outbox_poll_seconds": 0.05,
        **overrides,
    }
    return Settings(**values)


async def clean_outbox(engine: AsyncEngine) -> None:
    """Empty the endpoint and outbox tables."""
    async with engine.begin() as conn:
        await conn.exec_driver_sql("TRUNCATE outbox_messages, webhook_endpoints RESTART IDENTITY")


async def make_endpoint(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    url: str,
    *,
    secret: str | None = None,
    previous: str | None = None,
    previous_until: datetime | None = None,
) -> tuple[uuid.UUID, str]:
    """A WebhookEndpoint row for `url` (all topics); its id and its (current) secret."""
    box = secret_box(settings)
    secret = secret or new_secret()
    endpoint = WebhookEndpoint(
        url=url,
        topics=[t.value for t in WebhookTopic],
        secret_ciphertext=box.seal(secret),
        previous_secret_ciphertext=box.seal(previous) if previous else None,
        previous_secret_expires_at=previous_until,
    )
    async with sessions.begin() as session:
        session.add(endpoint)
        await session.flush()
        return endpoint.id, secret


async def put_messages(
    sessions: async_sessionmaker[AsyncSession],
    endpoint_id: uuid.UUID | None,
    count: int,
    *,
    recipient: str | None = None,
) -> list[str]:
    """`count` STOCK_OUT messages for the endpoint (or the address), committed; their ids."""
    messages = [
        NewMessage(
            WebhookTopic.STOCK_OUT,
            event_body(WebhookTopic.STOCK_OUT, {"sku": f"SKU-{i}", "n": i}, datetime.now(UTC)),
            endpoint_id=endpoint_id,
            recipient=recipient,
        )
        for i in range(count)
    ]
    async with sessions.begin() as session:
        return await enqueue(session, messages)


async def outbox_rows(engine: AsyncEngine) -> dict[str, Any]:
    """Every outbox row by message id."""
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM outbox_messages ORDER BY id"))).all()
    return {r.message_id: r for r in rows}


def as_claimed(row: Any, attempt: int = 1) -> ClaimedMessage:
    """An `outbox_messages` row as the delivery worker hands it to a sender."""
    return ClaimedMessage(
        id=row.id,
        channel=row.channel,
        message_id=row.message_id,
        topic=row.topic,
        payload=row.payload,
        attempt=attempt,
        created_at=row.created_at,
        endpoint_id=row.endpoint_id,
        recipient=row.recipient,
    )
