"""Writing the outbox: one row per (event, recipient), in the caller's transaction.

The caller is the transaction of the change that causes the event, so a rolled-back
change leaves no message and a committed one always has its messages (the transactional
outbox pattern). Delivery happens later, outside any transaction of the change
(`gql_inventory.outbound` workers). Bodies follow the Standard Webhooks payload
convention (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md,
"Payload structure"): ``{"type": "stock.low", "timestamp": ISO 8601, "data": {...}}``.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.models import OutboxChannel, WebhookTopic


class OperatorTopic(enum.StrEnum):
    """E-mail-only topics: operator alerts with no webhook topic of their own."""

    DELIVERY_FAILED = "DELIVERY_FAILED"  # a webhook delivery used every retry
    INVARIANT_DRIFT = "INVARIANT_DRIFT"  # the hourly invariant check found a mismatch
    LOW_STOCK_REPORT = "LOW_STOCK_REPORT"  # the daily low-stock report


Topic = WebhookTopic | OperatorTopic

#: The body's `type` of each topic (dotted, lower case, as Standard Webhooks suggests).
EVENT_TYPES: dict[Topic, str] = {
    WebhookTopic.INVENTORY_LEVEL_UPDATED: "inventory_level.updated",
    WebhookTopic.STOCK_LOW: "stock.low",
    WebhookTopic.STOCK_OUT: "stock.out",
    WebhookTopic.STOCK_BACK_IN: "stock.back_in",
    WebhookTopic.ORDER_PAID: "order.paid",
    WebhookTopic.ORDER_NEEDS_ATTENTION: "order.needs_attention",
    WebhookTopic.ORDER_REFUNDED: "order.refunded",
    WebhookTopic.ORDER_CANCELLED: "order.cancelled",
    WebhookTopic.PAYMENT_FAILED: "payment.failed",
    WebhookTopic.RESERVATION_EXPIRED: "reservation.expired",
    WebhookTopic.INBOUND_SHIPMENT_RECEIVED: "inbound_shipment.received",
    OperatorTopic.DELIVERY_FAILED: "webhook_delivery.failed",
    OperatorTopic.INVARIANT_DRIFT: "invariants.drift",
    OperatorTopic.LOW_STOCK_REPORT: "stock.low_report",
}


def new_message_id() -> str:
    """A fresh message id: ``msg_`` + 32 hex digits (the webhook-id header, unique per
    message and the same on every attempt)."""
    return f"msg_{uuid.uuid4().hex}"


def event_body(topic: Topic, data: Mapping[str, Any], timestamp: datetime) -> str:
    """The exact JSON body of an event: ``{"type", "timestamp", "data"}``; `timestamp` is
    timezone-aware (serialised ISO 8601 with its offset). Amounts in `data` are decimal
    strings with a currency code, as the GraphQL `Money` type gives them."""
    if timestamp.tzinfo is None:
        raise ValueError("an event timestamp must carry its offset")
    body = {"type": EVENT_TYPES[topic], "timestamp": timestamp.isoformat(), "data": dict(data)}
    return orjson.dumps(body).decode()


@dataclass(frozen=True, slots=True)
class NewMessage:
    """One outbox row to write: a `topic`'s `payload` (the exact body, `event_body`) for a
    webhook endpoint (`endpoint_id`) or an e-mail address (`recipient`), one of the two
    (an `OperatorTopic` goes by e-mail only)."""

    topic: Topic
    payload: str
    endpoint_id: uuid.UUID | None = None
    recipient: str | None = None
    message_id: str = ""

    @property
    def channel(self) -> OutboxChannel:
        """WEBHOOK with an endpoint, EMAIL with a recipient."""
        return OutboxChannel.WEBHOOK if self.endpoint_id is not None else OutboxChannel.EMAIL


_INSERT = text(
    """
    INSERT INTO outbox_messages (channel, endpoint_id, recipient, message_id, topic, payload)
    SELECT * FROM unnest(CAST(:channels AS text[]), CAST(:endpoints AS uuid[]),
                         CAST(:recipients AS text[]), CAST(:ids AS text[]),
                         CAST(:topics AS text[]), CAST(:payloads AS text[]))
    """
)


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One event of a committing transaction (`fan_out`): `payload` (the exact body,
    `event_body`) of `topic`, for every enabled endpoint subscribed to `topic` and by
    e-mail to each address of `emails`."""

    topic: WebhookTopic
    payload: str
    emails: tuple[str, ...] = ()


#: Every event to each enabled endpoint whose topics hold its topic, and to its e-mail
#: addresses; rows in event order. Message ids as `new_message_id` makes them.
_FAN_OUT = """
WITH e AS (
    SELECT * FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS e(topic, payload, ord)
), targets AS (
    SELECT e.ord, 0::bigint AS seq, w.id AS endpoint_id, NULL::text AS recipient, e.topic,
           e.payload
      FROM e JOIN webhook_endpoints w ON w.enabled AND e.topic = ANY (w.topics)
    UNION ALL
    SELECT e.ord, m.seq, NULL::uuid, m.recipient, e.topic, e.payload
      FROM unnest($3::bigint[], $4::text[]) WITH ORDINALITY AS m(ord, recipient, seq)
      JOIN e ON e.ord = m.ord
)
INSERT INTO outbox_messages (channel, endpoint_id, recipient, message_id, topic, payload)
SELECT CASE WHEN endpoint_id IS NULL THEN 'EMAIL' ELSE 'WEBHOOK' END, endpoint_id, recipient,
       'msg_' || replace(gen_random_uuid()::text, '-', ''), topic, payload
  FROM targets
 ORDER BY ord, seq, endpoint_id
"""


async def fan_out(conn: Any, events: Sequence[OutboxEvent]) -> int:
    """Write `events` as PENDING outbox rows, due now, in the open transaction of the
    asyncpg connection `conn`, in one statement: one row per (event, enabled endpoint
    subscribed to its topic) and per (event, e-mail address). Endpoints are those the
    statement sees (committed before it). Returns the rows written (0 without a
    statement when there is no event)."""
    if not events:
        return 0
    ords = [n for n, event in enumerate(events, 1) for _ in event.emails]
    status: str = await conn.execute(
        _FAN_OUT,
        [e.topic.value for e in events],
        [e.payload for e in events],
        ords,
        [address for e in events for address in e.emails],
    )
    return int(status.rsplit(" ", 1)[-1])  # "INSERT 0 <rows>"


async def enqueue(session: AsyncSession, messages: Sequence[NewMessage]) -> list[str]:
    """Write `messages` as PENDING outbox rows, due now, in the session's transaction (one
    statement). Returns their message ids, in order. Raises `ValueError` for a message
    with both or neither of an endpoint and a recipient (the table's CHECK agrees)."""
    if not messages:
        return []
    for message in messages:
        if (message.endpoint_id is None) == (message.recipient is None):
            raise ValueError("an outbox message goes to an endpoint or to an address")
    ids = [m.message_id or new_message_id() for m in messages]
    await session.execute(
        _INSERT,
        {
            "channels": [m.channel.value for m in messages],
            "endpoints": [m.endpoint_id for m in messages],
            "recipients": [m.recipient for m in messages],
            "ids": ids,
            "topics": [m.topic.value for m in messages],
            "payloads": [m.payload for m in messages],
        },
    )
    return ids
