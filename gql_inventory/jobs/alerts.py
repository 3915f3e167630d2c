"""Operator alerts by e-mail from the self-care jobs: one outbox row per ALERT_EMAILS
address, in the caller's transaction, only when e-mail and alert addresses are set."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.outbound.outbox import NewMessage, OperatorTopic, enqueue, event_body
from gql_inventory.settings import Settings


async def alert_operators(
    session: AsyncSession,
    settings: Settings,
    topic: OperatorTopic,
    data: Mapping[str, Any],
    *,
    now: datetime,
) -> list[str]:
    """Enqueue `topic` with `data` (the body `outbox.event_body` makes, timestamped `now`)
    to every ALERT_EMAILS address; returns the message ids ([] when SMTP_URL or
    ALERT_EMAILS is unset: nothing is written)."""
    if not settings.operator_mail_enabled():
        return []
    body = event_body(topic, data, now)
    return await enqueue(
        session, [NewMessage(topic, body, recipient=address) for address in settings.alert_emails]
    )
