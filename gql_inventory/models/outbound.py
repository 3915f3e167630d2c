"""Outbound events: webhook endpoints, the outbox (deliveries by webhook and e-mail), job runs."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from gql_inventory.models.base import Base, created_at_column


class WebhookTopic(enum.StrEnum):
    """What happened: the topics an endpoint subscribes to (contract enum `WebhookTopic`)."""

    INVENTORY_LEVEL_UPDATED = "INVENTORY_LEVEL_UPDATED"
    STOCK_LOW = "STOCK_LOW"
    STOCK_OUT = "STOCK_OUT"
    STOCK_BACK_IN = "STOCK_BACK_IN"
    ORDER_PAID = "ORDER_PAID"
    ORDER_NEEDS_ATTENTION = "ORDER_NEEDS_ATTENTION"
    ORDER_REFUNDED = "ORDER_REFUNDED"
    ORDER_CANCELLED = "ORDER_CANCELLED"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    RESERVATION_EXPIRED = "RESERVATION_EXPIRED"
    INBOUND_SHIPMENT_RECEIVED = "INBOUND_SHIPMENT_RECEIVED"


class OutboxChannel(enum.StrEnum):
    """How an outbox message travels."""

    WEBHOOK = "WEBHOOK"
    EMAIL = "EMAIL"


class DeliveryStatus(enum.StrEnum):
    """PENDING until sent or every retry is used (FAILED)."""

    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class WebhookEndpoint(Base):
    """A receiver of events (Standard Webhooks, https://www.standardwebhooks.com).

    `secret_ciphertext` is the ``whsec_`` secret encrypted under the key from settings,
    never the secret itself; during a rotation `previous_secret_ciphertext` still signs
    until `previous_secret_expires_at`. `enabled` turns false on a 410 answer or by hand
    (`disabled_reason` says which).
    """

    __tablename__ = "webhook_endpoints"
    __table_args__ = (CheckConstraint("cardinality(topics) >= 1", name="topics_not_empty"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    url: Mapped[str] = mapped_column(Text)
    topics: Mapped[list[str]] = mapped_column(ARRAY(Text()))
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    disabled_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    secret_ciphertext: Mapped[str] = mapped_column(Text)
    previous_secret_ciphertext: Mapped[str | None] = mapped_column(Text, nullable=True)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class OutboxMessage(Base):
    """One event for one recipient, written in the transaction of the change that caused it.

    WEBHOOK rows name an `endpoint_id`, EMAIL rows a `recipient` address. `message_id` is
    the webhook-id header (the same on every attempt); `payload` the exact JSON body.
    Workers claim PENDING rows whose `next_attempt_at` has come (``FOR UPDATE SKIP
    LOCKED``); `last_response_body` is kept to 1 KiB.
    """

    __tablename__ = "outbox_messages"
    __table_args__ = (
        CheckConstraint("channel IN ('WEBHOOK', 'EMAIL')", name="channel_known"),
        CheckConstraint("status IN ('PENDING', 'SUCCEEDED', 'FAILED')", name="status_known"),
        CheckConstraint(
            "(channel = 'WEBHOOK' AND endpoint_id IS NOT NULL AND recipient IS NULL)"
            " OR (channel = 'EMAIL' AND recipient IS NOT NULL AND endpoint_id IS NULL)",
            name="recipient_of_channel",
        ),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        CheckConstraint(
            "last_response_body IS NULL OR char_length(last_response_body) <= 1024",
            name="response_body_truncated",
        ),
        Index(
            "ix_outbox_messages_due",
            "next_attempt_at",
            "id",
            postgresql_where=text("status = 'PENDING'"),
        ),
        Index(
            "ix_outbox_messages_endpoint_due",
            "endpoint_id",
            "next_attempt_at",
            "id",
            postgresql_where=text("status = 'PENDING'"),
        ),
        Index("ix_outbox_messages_endpoint_id_id", "endpoint_id", "id"),
        Index("ix_outbox_messages_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16))
    endpoint_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=True
    )
    recipient: Mapped[str | None] = mapped_column(Text, nullable=True)
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    topic: Mapped[str] = mapped_column(String(40))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), server_default=text("'PENDING'"))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_response_body: Mapped[str | None] = mapped_column(Text, nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=True
    )
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class JobRun(Base):
    """When a periodic self-care job last ran (one row per job name)."""

    __tablename__ = "job_runs"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_finished_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    last_result: Mapped[str | None] = mapped_column(Text, nullable=True)
