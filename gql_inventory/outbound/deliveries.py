"""Webhook deliveries (admin): a page of them newest first, counts by status, and a retry.

A delivery is an outbox row of the WEBHOOK channel (`models.OutboxMessage`); EMAIL rows are
never listed or retried here. Reads are one statement each; `retry_delivery` writes in the
caller's transaction and never commits.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import RowMapping, Select, func, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from gql_inventory.domain.errors import (
    FieldPath,
    InvalidInput,
    WebhookEndpointNotFound,
    argument,
)
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.models import DeliveryStatus, OutboxChannel, OutboxMessage, WebhookEndpoint
from gql_inventory.orders.lists import ListPage

ID_ARGUMENT = argument("id")
#: Largest delivery id (a bigint).
_MAX_ID = 2**63 - 1

_OUTBOX = OutboxMessage.__table__
_ENDPOINT = WebhookEndpoint.__table__
#: The endpoint's public columns, each as ``endpoint_<name>`` beside the delivery's own.
_ENDPOINT_COLUMNS = (
    "url",
    "topics",
    "enabled",
    "disabled_reason",
    "description",
    "created_at",
    "previous_secret_expires_at",
)


def _deliveries() -> Select[tuple[object, ...]]:
    """WEBHOOK outbox rows with their endpoint's public columns (never its secrets)."""
    return (
        select(
            *_OUTBOX.c,
            *(_ENDPOINT.c[name].label(f"endpoint_{name}") for name in _ENDPOINT_COLUMNS),
        )
        .join(_ENDPOINT, _ENDPOINT.c.id == _OUTBOX.c.endpoint_id)
        .where(_OUTBOX.c.channel == OutboxChannel.WEBHOOK.value)
    )


def parse_delivery_id(raw: str, *, field: FieldPath = ID_ARGUMENT) -> int:
    """A delivery id as issued (a positive integer). Anything else is
    `WebhookEndpointNotFound` (the contract has no code of its own for deliveries)."""
    text = str(raw)
    if not text.isascii() or not text.isdigit() or not 0 < int(text) <= _MAX_ID:
        raise WebhookEndpointNotFound("no such webhook delivery", field=field)
    return int(text)


async def delivery_page(
    conn: AsyncConnection,
    *,
    first: int,
    before_id: int | None,
    endpoint_id: uuid.UUID | None,
    statuses: Collection[str] | None,
) -> ListPage:
    """Webhook deliveries newest first (by id: outbox ids grow with each insert), those
    with an id below `before_id` (the cursor), and how many match the filters in all.
    `endpoint_id` None: every endpoint; `statuses` None: all (empty: none). Rows carry the
    `outbox_messages` columns and ``endpoint_*`` (see `_ENDPOINT_COLUMNS`). One statement."""
    filtered = _deliveries()
    if endpoint_id is not None:
        filtered = filtered.where(_OUTBOX.c.endpoint_id == endpoint_id)
    if statuses is not None:
        filtered = filtered.where(_OUTBOX.c.status.in_(list(statuses)))
    rows_cte = filtered.cte("filtered")
    total = select(func.count().label("total_count")).select_from(rows_cte).subquery("total")
    page = select(rows_cte).order_by(rows_cte.c.id.desc())
    if before_id is not None:
        page = page.where(rows_cte.c.id < before_id)
    page_sub = page.limit(first + 1).lateral("page")
    stmt = (
        select(total.c.total_count, page_sub)
        .select_from(total.outerjoin(page_sub, true()))
        .order_by(page_sub.c.id.desc())
    )
    result = [r._mapping for r in await conn.execute(stmt)]
    total_count = int(result[0]["total_count"]) if result else 0
    rows = [r for r in result if r["id"] is not None]
    return ListPage(rows=rows[:first], has_next_page=len(rows) > first, total_count=total_count)


async def delivery_by_id(
    conn: AsyncConnection | AsyncSession, delivery_id: int
) -> RowMapping | None:
    """One webhook delivery's row (as `delivery_page` gives them), or None."""
    result = await conn.execute(_deliveries().where(_OUTBOX.c.id == delivery_id))
    row = result.first()
    return None if row is None else row._mapping


async def retry_delivery(uow: UnitOfWork, *, delivery_id: int) -> RowMapping:
    """Make a FAILED (or PENDING) webhook delivery PENDING and due now: `next_attempt_at`
    now, `completed_at` cleared; `attempts` and `message_id` kept (receivers dedupe on the
    webhook-id). The row is locked first (``FOR UPDATE``).

    Refusals: `WebhookEndpointNotFound` (argument id: no WEBHOOK delivery has this id),
    `InvalidInput` (it SUCCEEDED: sending it again would deliver it twice).
    """
    status = await uow.session.scalar(
        select(OutboxMessage.status)
        .where(
            OutboxMessage.id == delivery_id,
            OutboxMessage.channel == OutboxChannel.WEBHOOK.value,
        )
        .with_for_update()
    )
    if status is None:
        raise WebhookEndpointNotFound("no such webhook delivery", field=ID_ARGUMENT)
    if status == DeliveryStatus.SUCCEEDED:
        raise InvalidInput(
            "this delivery SUCCEEDED: the receiver has it, it is not sent again",
            field=ID_ARGUMENT,
        )
    await uow.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == delivery_id)
        .values(
            status=DeliveryStatus.PENDING.value,
            next_attempt_at=func.now(),
            completed_at=None,
            updated_at=func.now(),
        )
    )
    row = await delivery_by_id(uow.session, delivery_id)
    assert row is not None  # locked above
    return row


async def status_counts(
    session: AsyncSession, *, since: datetime
) -> dict[uuid.UUID, dict[str, int]]:
    """Per endpoint, its webhook deliveries created since `since` counted by status."""
    rows = await session.execute(
        select(OutboxMessage.endpoint_id, OutboxMessage.status, func.count())
        .where(
            OutboxMessage.channel == OutboxChannel.WEBHOOK.value,
            OutboxMessage.created_at >= since,
        )
        .group_by(OutboxMessage.endpoint_id, OutboxMessage.status)
    )
    counts: dict[uuid.UUID, dict[str, int]] = defaultdict(dict)
    for endpoint_id, status, count in rows:
        if endpoint_id is not None:  # always, on the WEBHOOK channel
            counts[endpoint_id][status] = int(count)
    return dict(counts)
