"""Reservations (carts), orders, refunds, payment events and idempotency records."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from gql_inventory.models.base import Base, created_at_column


class ReservationStatus(enum.StrEnum):
    """ACTIVE holds stock; the others are final."""

    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    RELEASED = "RELEASED"
    EXPIRED = "EXPIRED"


class OrderStatus(enum.StrEnum):
    """An order's payment state."""

    PENDING_PAYMENT = "PENDING_PAYMENT"
    PAID = "PAID"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    REFUNDED = "REFUNDED"
    CANCELLED = "CANCELLED"
    NEEDS_ATTENTION = "NEEDS_ATTENTION"


class PaymentEventKind(enum.StrEnum):
    """`payment_events.type`: what happened to an order's payment.

    Stripe's event types keep Stripe's names and spelling ("canceled";
    https://docs.stripe.com/api/events/types); the others are this service's own.
    The values are stored as they are: never rename one.
    """

    # Stripe event types
    PAYMENT_INTENT_SUCCEEDED = "payment_intent.succeeded"
    PAYMENT_INTENT_PAYMENT_FAILED = "payment_intent.payment_failed"
    PAYMENT_INTENT_PROCESSING = "payment_intent.processing"
    PAYMENT_INTENT_REQUIRES_ACTION = "payment_intent.requires_action"
    PAYMENT_INTENT_CANCELED = "payment_intent.canceled"
    CHARGE_REFUNDED = "charge.refunded"
    CHARGE_REFUND_UPDATED = "charge.refund.updated"
    REFUND_CREATED = "refund.created"  # also ours: a refund this service made
    REFUND_UPDATED = "refund.updated"
    REFUND_FAILED = "refund.failed"
    # this service's own
    PAYMENT_INTENT_CREATED = "payment_intent.created"
    PAYMENT_INTENT_CANCEL_FAILED = "payment_intent.cancel_failed"
    AMOUNT_MISMATCH = "amount_mismatch"
    LATE_PAYMENT_OUT_OF_STOCK = "late_payment_out_of_stock"
    INVALID_EVENT = "invalid_event"
    ORDER_CANCELLED = "order.cancelled"  # the order became CANCELLED (our spelling)
    PAYMENT_CHECK = "payment_check"
    PAYMENT_CHECK_CANCEL_CONFIRMED = "payment_check.cancel_confirmed"


class RefundStatus(enum.StrEnum):
    """A refund's status, Stripe's values (https://docs.stripe.com/api/refunds/object#refund_object-status)."""

    PENDING = "pending"
    REQUIRES_ACTION = "requires_action"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


class RefundSource(enum.StrEnum):
    """Who made a refund, so each kind is told apart by a column, not by its id.

    OURS: this service (`refundOrder`, `cancelOrder`), its units handled when made.
    DASHBOARD: at the provider, outside this service (the Stripe dashboard, another
    API client); always has its provider id. UNATTRIBUTED: the part of a charge's
    refunded total not reported by refund id yet, one row per order, no provider id.
    """

    OURS = "OURS"
    DASHBOARD = "DASHBOARD"
    UNATTRIBUTED = "UNATTRIBUTED"


def _enum(cls: type[enum.Enum], name: str, length: int = 24) -> Enum:
    """A VARCHAR column holding the enum's values (no database enum type, no CHECK)."""
    return Enum(
        cls,
        name=name,
        native_enum=False,
        length=length,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Reservation(Base):
    """A hold on stock (a cart or an unpaid order). Its random UUID is a capability."""

    __tablename__ = "reservations"
    __table_args__ = (
        Index(
            "ix_reservations_active_expires_at",
            "expires_at",
            postgresql_where=text("status = 'ACTIVE'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    status: Mapped[ReservationStatus] = mapped_column(
        _enum(ReservationStatus, "reservation_status"), default=ReservationStatus.ACTIVE
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ttl_seconds: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ReservationLine(Base):
    """Units of one variant held at one location by one reservation.

    A level's `reserved` equals the sum of `quantity` over the lines of ACTIVE
    reservations on it (DESIGN.md invariant 2).
    """

    __tablename__ = "reservation_lines"
    __table_args__ = (
        UniqueConstraint(
            "reservation_id", "stock_level_id", name="uq_reservation_lines_reservation_level"
        ),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(
            "backordered_quantity >= 0 AND backordered_quantity <= quantity",
            name="backorder_within_quantity",
        ),
        Index("ix_reservation_lines_stock_level_id", "stock_level_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    reservation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reservations.id", ondelete="CASCADE")
    )
    stock_level_id: Mapped[int] = mapped_column(ForeignKey("stock_levels.id", ondelete="RESTRICT"))
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id", ondelete="RESTRICT"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id", ondelete="RESTRICT"))
    quantity: Mapped[int] = mapped_column(Integer)
    #: The part of `quantity` not covered by stock on hand (CONTINUE policy, ADR 0018).
    backordered_quantity: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class Order(Base):
    """An order made from a reservation at checkout. Amounts are in minor units."""

    __tablename__ = "orders"
    __table_args__ = (CheckConstraint("total_amount >= 0", name="total_non_negative"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    reservation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("reservations.id", ondelete="SET NULL"), unique=True
    )
    status: Mapped[OrderStatus] = mapped_column(
        _enum(OrderStatus, "order_status"), default=OrderStatus.PENDING_PAYMENT
    )
    email: Mapped[str | None] = mapped_column(Text)
    currency_code: Mapped[str] = mapped_column(String(3))
    total_amount: Mapped[int] = mapped_column(BigInteger)
    payment_provider: Mapped[str] = mapped_column(String(32))
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    payment_client_secret: Mapped[str | None] = mapped_column(Text)
    last_payment_error: Mapped[str | None] = mapped_column(Text)
    attention_reason: Mapped[str | None] = mapped_column(Text)
    #: When a payment of the order was received and applied (units sold, or the order
    #: flagged: amount mismatch, late payment without stock); null while unpaid.
    payment_applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class OrderLine(Base):
    """One variant of an order, its unit price frozen at checkout (minor units)."""

    __tablename__ = "order_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(
            "refunded_quantity >= 0 AND refunded_quantity <= quantity",
            name="refund_within_quantity",
        ),
        UniqueConstraint("order_id", "variant_id", name="uq_order_lines_order_variant"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id", ondelete="RESTRICT"))
    quantity: Mapped[int] = mapped_column(Integer)
    refunded_quantity: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    unit_price_amount: Mapped[int] = mapped_column(BigInteger)
    currency_code: Mapped[str] = mapped_column(String(3))


class OrderAllocation(Base):
    """Where the units of an order line were sold from, so a restock returns them there.

    `quantity` units left on hand at payment or by a backorder fill; `backordered_quantity`
    units are still awaited at this level (filled oldest paid order first, ADR 0018).
    """

    __tablename__ = "order_allocations"
    __table_args__ = (
        CheckConstraint(
            "quantity >= 0 AND backordered_quantity >= 0 AND quantity + backordered_quantity > 0",
            name="quantity_positive",
        ),
        Index(
            "ix_order_allocations_waiting",
            "stock_level_id",
            postgresql_where=text("backordered_quantity > 0"),
        ),
        CheckConstraint(
            "returned_quantity >= 0 AND returned_quantity <= quantity",
            name="return_within_quantity",
        ),
        UniqueConstraint("order_line_id", "stock_level_id", name="uq_order_allocations_line_level"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id", ondelete="CASCADE"))
    stock_level_id: Mapped[int] = mapped_column(ForeignKey("stock_levels.id", ondelete="RESTRICT"))
    quantity: Mapped[int] = mapped_column(Integer)
    returned_quantity: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    backordered_quantity: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class Refund(Base):
    """A refund of an order, local or at the payment provider. Amounts in minor units.

    `lines` is a JSON list of ``{"variant_id": int, "quantity": int}``;
    `restocked` tells whether its units went back on hand, so a provider's later
    `charge.refunded` event never restocks a second time. `source`: who made it
    (`RefundSource`); an UNATTRIBUTED row has no provider id, a DASHBOARD one has one.
    """

    __tablename__ = "refunds"
    __table_args__ = (
        Index(
            "uq_refunds_unattributed_order_id",
            "order_id",
            unique=True,
            postgresql_where=text("source = 'UNATTRIBUTED'"),
        ),
        CheckConstraint(
            "source <> 'UNATTRIBUTED' OR provider_refund_id IS NULL",
            name="unattributed_without_id",
        ),
        CheckConstraint(
            "source <> 'DASHBOARD' OR provider_refund_id IS NOT NULL", name="dashboard_with_id"
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    provider_refund_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency_code: Mapped[str] = mapped_column(String(3))
    status: Mapped[RefundStatus] = mapped_column(_enum(RefundStatus, "refund_status", 32))
    source: Mapped[RefundSource] = mapped_column(
        _enum(RefundSource, "refund_source", 16), default=RefundSource.OURS
    )
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    restocked: Mapped[bool] = mapped_column(server_default=text("false"))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()


class PaymentEvent(Base):
    """What happened to an order's payment, for admins: attempts, webhook events, errors."""

    __tablename__ = "payment_events"
    __table_args__ = (Index("ix_payment_events_order_id_id", "order_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    type: Mapped[PaymentEventKind] = mapped_column(
        _enum(PaymentEventKind, "payment_event_type", 64)
    )
    provider_event_id: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()


class WebhookEvent(Base):
    """A provider event applied once; its id's presence makes a redelivery a no-op."""

    __tablename__ = "webhook_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = created_at_column()


class IdempotencyRecord(Base):
    """The first result of a mutation called with an idempotency key.

    Keys are per `owner` (``storefront`` or ``admin:<name>``): one owner's key never
    replays another's result. `request_hash` is a SHA-256 of the canonical input; a
    second call with the same key and another hash is an IDEMPOTENCY_CONFLICT. `result` is JSON the
    use case can rebuild its payload from.
    """

    __tablename__ = "idempotency_records"

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    result: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = created_at_column()
