"""Stock levels and the stock movement ledger (which is also the event log)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

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
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from gql_inventory.models.base import Base, created_at_column


class MovementKind(enum.StrEnum):
    """Why a stock level changed (DESIGN.md, "Lifecycle")."""

    RECEIPT = "RECEIPT"
    ADJUSTMENT = "ADJUSTMENT"
    COUNT = "COUNT"
    RESERVATION = "RESERVATION"
    RELEASE = "RELEASE"
    EXPIRY = "EXPIRY"
    SALE = "SALE"
    RETURN = "RETURN"
    STATE_CHANGE = "STATE_CHANGE"
    TRANSFER = "TRANSFER"
    BACKORDER_FILL = "BACKORDER_FILL"


class StockState(enum.StrEnum):
    """Which state on-hand units are in: sellable (AVAILABLE) or held back from sale
    (docs/adr/0017-stock-states.md)."""

    AVAILABLE = "AVAILABLE"
    DAMAGED = "DAMAGED"
    QUALITY_CONTROL = "QUALITY_CONTROL"
    SAFETY_STOCK = "SAFETY_STOCK"


#: The `stock_levels` column holding each unavailable state's units.
STATE_COLUMNS: dict[StockState, str] = {
    StockState.DAMAGED: "damaged",
    StockState.QUALITY_CONTROL: "quality_control",
    StockState.SAFETY_STOCK: "safety_stock",
}

#: Reserved and unavailable units together stay within on hand (ADR 0017).
HELD_WITHIN_ON_HAND = "reserved + damaged + quality_control + safety_stock <= on_hand"
_STATE_NAMES = ", ".join(f"'{s.value}'" for s in StockState)


class StockLevel(Base):
    """Units of one variant at one location.

    `available` is derived (``on_hand - reserved - unavailable - backordered``, where
    unavailable is ``damaged + quality_control + safety_stock``; ADR 0017, ADR 0018).
    CHECK constraints make overselling impossible whatever the code does. `version` grows
    by one with every change, so a client can notice a missed event.
    """

    __tablename__ = "stock_levels"
    __table_args__ = (
        UniqueConstraint("variant_id", "location_id", name="uq_stock_levels_variant_location"),
        CheckConstraint("on_hand >= 0", name="on_hand_non_negative"),
        CheckConstraint("reserved >= 0", name="reserved_non_negative"),
        CheckConstraint("damaged >= 0", name="damaged_non_negative"),
        CheckConstraint("quality_control >= 0", name="quality_control_non_negative"),
        CheckConstraint("safety_stock >= 0", name="safety_stock_non_negative"),
        CheckConstraint(HELD_WITHIN_ON_HAND, name="held_within_on_hand"),
        CheckConstraint("backordered >= 0", name="backordered_non_negative"),
        Index("ix_stock_levels_location_id", "location_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id", ondelete="RESTRICT"))
    on_hand: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    reserved: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    damaged: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    quality_control: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    safety_stock: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    #: Units promised to reservations and orders beyond what is on hand (ADR 0018).
    backordered: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    version: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


#: The values `stock_movements.actor` may take (`domain.uow` names them).
ACTOR_CHECK = "actor IN ('storefront', 'stripe', 'system', 'import') OR actor LIKE 'admin:_%'"


class StockMovement(Base):
    """One row per change of one stock level, written in the same transaction.

    Deltas and the level's figures after the change are stored, so the ledger
    alone replays every level. `position` is the commit-safe order of the event
    log, given by the relay after the commit (`gql_inventory.live.relay`); cursors and
    resumption use it, never `id` (handed out at insert, not at commit). `txid` is the
    writing transaction's id (``pg_current_xact_id()``): it groups the movements one
    transaction wrote, for audits. `actor` says who caused the change: ``admin:<name>``,
    ``storefront``, ``stripe``, ``system`` or ``import`` (`domain.uow.UnitOfWork.actor`).
    """

    __tablename__ = "stock_movements"
    __table_args__ = (
        Index("ix_stock_movements_variant_id_id", "variant_id", "id"),
        Index("ix_stock_movements_stock_level_id_version", "stock_level_id", "version"),
        Index("ix_stock_movements_reference", "reference"),
        Index("uq_stock_movements_position", "position", unique=True),
        Index("ix_stock_movements_unpositioned", "id", postgresql_where=text("position IS NULL")),
        Index("ix_stock_movements_variant_id_position", "variant_id", "position"),
        CheckConstraint(ACTOR_CHECK, name="actor_known"),
        CheckConstraint(
            f"(from_state IS NULL OR from_state IN ({_STATE_NAMES}))"
            f" AND (to_state IS NULL OR to_state IN ({_STATE_NAMES}))",
            name="states_known",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    stock_level_id: Mapped[int] = mapped_column(ForeignKey("stock_levels.id", ondelete="CASCADE"))
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id", ondelete="RESTRICT"))
    kind: Mapped[MovementKind] = mapped_column(
        Enum(MovementKind, name="movement_kind", native_enum=False, length=16)
    )
    on_hand_delta: Mapped[int] = mapped_column(Integer)
    reserved_delta: Mapped[int] = mapped_column(Integer)
    on_hand_after: Mapped[int] = mapped_column(Integer)
    reserved_after: Mapped[int] = mapped_column(Integer)
    #: The level's unavailable states after the change (0 before migration 0007).
    damaged_after: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    quality_control_after: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    safety_stock_after: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    #: Change of the level's backordered units, and the figure after (0 before 0008).
    backordered_delta: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    backordered_after: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    #: STATE_CHANGE only: the states moved between and the units moved (else NULL).
    from_state: Mapped[str | None] = mapped_column(Text, nullable=True)
    to_state: Mapped[str | None] = mapped_column(Text, nullable=True)
    quantity: Mapped[int | None] = mapped_column(Integer, nullable=True)
    version: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(Text)
    txid: Mapped[int] = mapped_column(
        BigInteger, server_default=text("(pg_current_xact_id()::text)::bigint")
    )
    occurred_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    #: Commit-safe order of the event log, assigned by the relay after commit (None until
    #: then). Gap-free and append-only: a resume cursor is a position.
    position: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class InboundShipmentStatus(enum.StrEnum):
    """An inbound shipment's state: OPEN until something arrives, then PARTIALLY_RECEIVED,
    RECEIVED when every line is in; CANCELLED stops expecting what is left."""

    OPEN = "OPEN"
    PARTIALLY_RECEIVED = "PARTIALLY_RECEIVED"
    RECEIVED = "RECEIVED"
    CANCELLED = "CANCELLED"


_SHIPMENT_STATUSES = ", ".join(f"'{s.value}'" for s in InboundShipmentStatus)


class InboundShipment(Base):
    """Stock expected at one location (a purchase order, a transfer on its way).

    Its open lines' remaining units are the location's `incoming`. `actor` is who
    created it (`domain.uow.UnitOfWork.actor`).
    """

    __tablename__ = "inbound_shipments"
    __table_args__ = (
        CheckConstraint(f"status IN ({_SHIPMENT_STATUSES})", name="status_known"),
        Index("ix_inbound_shipments_created_at", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    reference: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(24), server_default=text("'OPEN'"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id", ondelete="RESTRICT"))
    expected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    actor: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class InboundShipmentLine(Base):
    """Units of one variant expected on one shipment, and how many arrived (units)."""

    __tablename__ = "inbound_shipment_lines"
    __table_args__ = (
        CheckConstraint("quantity_expected > 0", name="expected_positive"),
        CheckConstraint(
            "quantity_received >= 0 AND quantity_received <= quantity_expected",
            name="received_within_expected",
        ),
        UniqueConstraint(
            "shipment_id", "variant_id", name="uq_inbound_shipment_lines_shipment_variant"
        ),
        Index("ix_inbound_shipment_lines_variant_id", "variant_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    shipment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("inbound_shipments.id", ondelete="CASCADE")
    )
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id", ondelete="RESTRICT"))
    #: The line's place in the shipment as created (lines are listed in this order).
    position: Mapped[int] = mapped_column(Integer)
    quantity_expected: Mapped[int] = mapped_column(Integer)
    quantity_received: Mapped[int] = mapped_column(Integer, server_default=text("0"))
