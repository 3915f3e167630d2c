"""inventory policies, backorders, purchase limits and inbound shipments (issue 16)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 11:00:00.000000

``variants`` gains ``inventory_policy`` (DENY, the default, or CONTINUE: keep selling past
zero), ``backorder_limit`` (CONTINUE only: most units promised beyond stock; NULL: no
limit) and ``max_per_order`` (most units in one reservation; NULL: no limit).

``stock_levels`` gains ``backordered``: units promised to reservations and orders beyond
what is on hand. ``reserved`` keeps counting only units held from on hand, so the
``reserved + unavailable <= on_hand`` CHECK is unchanged and DENY variants behave as
before; ``available = on_hand - reserved - unavailable - backordered`` goes below 0 only by
backorders (docs/adr/0018-backorders.md). The ledger gains ``backordered_delta`` and
``backordered_after`` so it still replays every figure (0 on older rows, true then).

``reservation_lines.backordered_quantity`` is the part of a line not covered by stock on
hand; ``order_allocations.backordered_quantity`` the part of a paid order still waiting
at that level (its ``quantity`` is what was taken from on hand, so it may now be 0).

``inbound_shipments`` / ``inbound_shipment_lines``: stock expected at a location
(``StockLevel.incoming``), received in part or whole (RECEIPT movements referencing
``shipment:<id>``) or cancelled.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUSES = "'OPEN', 'PARTIALLY_RECEIVED', 'RECEIVED', 'CANCELLED'"


def upgrade() -> None:
    """Add the policy, backorder and shipment columns and tables."""
    op.add_column(
        "variants",
        sa.Column(
            "inventory_policy", sa.String(16), server_default=sa.text("'DENY'"), nullable=False
        ),
    )
    op.add_column("variants", sa.Column("backorder_limit", sa.Integer(), nullable=True))
    op.add_column("variants", sa.Column("max_per_order", sa.Integer(), nullable=True))
    op.create_check_constraint(
        op.f("ck_variants_inventory_policy_known"),
        "variants",
        "inventory_policy IN ('DENY', 'CONTINUE')",
    )
    op.create_check_constraint(
        op.f("ck_variants_backorder_limit_non_negative"),
        "variants",
        "backorder_limit IS NULL OR backorder_limit >= 0",
    )
    op.create_check_constraint(
        op.f("ck_variants_max_per_order_positive"),
        "variants",
        "max_per_order IS NULL OR max_per_order >= 1",
    )

    op.add_column(
        "stock_levels",
        sa.Column("backordered", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_stock_levels_backordered_non_negative"), "stock_levels", "backordered >= 0"
    )
    for column in ("backordered_delta", "backordered_after"):
        op.add_column(
            "stock_movements",
            sa.Column(column, sa.Integer(), server_default=sa.text("0"), nullable=False),
        )

    op.add_column(
        "reservation_lines",
        sa.Column(
            "backordered_quantity", sa.Integer(), server_default=sa.text("0"), nullable=False
        ),
    )
    op.create_check_constraint(
        op.f("ck_reservation_lines_backorder_within_quantity"),
        "reservation_lines",
        "backordered_quantity >= 0 AND backordered_quantity <= quantity",
    )
    op.add_column(
        "order_allocations",
        sa.Column(
            "backordered_quantity", sa.Integer(), server_default=sa.text("0"), nullable=False
        ),
    )
    op.drop_constraint(
        op.f("ck_order_allocations_quantity_positive"), "order_allocations", type_="check"
    )
    op.create_check_constraint(
        op.f("ck_order_allocations_quantity_positive"),
        "order_allocations",
        "quantity >= 0 AND backordered_quantity >= 0 AND quantity + backordered_quantity > 0",
    )
    op.create_index(
        "ix_order_allocations_waiting",
        "order_allocations",
        ["stock_level_id"],
        postgresql_where=sa.text("backordered_quantity > 0"),
    )

    op.create_table(
        "inbound_shipments",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("reference", sa.Text(), nullable=True),
        sa.Column("status", sa.String(24), server_default=sa.text("'OPEN'"), nullable=False),
        sa.Column("location_id", sa.BigInteger(), nullable=False),
        sa.Column("expected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            f"status IN ({_STATUSES})", name=op.f("ck_inbound_shipments_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["locations.id"],
            name=op.f("fk_inbound_shipments_location_id_locations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_shipments")),
    )
    op.create_index("ix_inbound_shipments_created_at", "inbound_shipments", ["created_at", "id"])
    op.create_table(
        "inbound_shipment_lines",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("shipment_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("variant_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("quantity_expected", sa.Integer(), nullable=False),
        sa.Column("quantity_received", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint(
            "quantity_expected > 0", name=op.f("ck_inbound_shipment_lines_expected_positive")
        ),
        sa.CheckConstraint(
            "quantity_received >= 0 AND quantity_received <= quantity_expected",
            name=op.f("ck_inbound_shipment_lines_received_within_expected"),
        ),
        sa.ForeignKeyConstraint(
            ["shipment_id"],
            ["inbound_shipments.id"],
            name=op.f("fk_inbound_shipment_lines_shipment_id_inbound_shipments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["variant_id"],
            ["variants.id"],
            name=op.f("fk_inbound_shipment_lines_variant_id_variants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_shipment_lines")),
        sa.UniqueConstraint(
            "shipment_id", "variant_id", name="uq_inbound_shipment_lines_shipment_variant"
        ),
    )
    op.create_index(
        "ix_inbound_shipment_lines_variant_id", "inbound_shipment_lines", ["variant_id"]
    )


def downgrade() -> None:
    """Drop the shipment tables and the policy and backorder columns (backorders are lost)."""
    op.drop_index("ix_inbound_shipment_lines_variant_id", table_name="inbound_shipment_lines")
    op.drop_table("inbound_shipment_lines")
    op.drop_index("ix_inbound_shipments_created_at", table_name="inbound_shipments")
    op.drop_table("inbound_shipments")
    op.drop_index("ix_order_allocations_waiting", table_name="order_allocations")
    op.drop_constraint(
        op.f("ck_order_allocations_quantity_positive"), "order_allocations", type_="check"
    )
    op.execute("DELETE FROM order_allocations WHERE quantity = 0")
    op.drop_column("order_allocations", "backordered_quantity")
    op.create_check_constraint(
        op.f("ck_order_allocations_quantity_positive"), "order_allocations", "quantity > 0"
    )
    op.drop_constraint(
        op.f("ck_reservation_lines_backorder_within_quantity"), "reservation_lines", type_="check"
    )
    op.drop_column("reservation_lines", "backordered_quantity")
    for column in ("backordered_after", "backordered_delta"):
        op.drop_column("stock_movements", column)
    op.drop_constraint(
        op.f("ck_stock_levels_backordered_non_negative"), "stock_levels", type_="check"
    )
    op.drop_column("stock_levels", "backordered")
    for name in (
        "max_per_order_positive",
        "backorder_limit_non_negative",
        "inventory_policy_known",
    ):
        op.drop_constraint(op.f(f"ck_variants_{name}"), "variants", type_="check")
    for column in ("max_per_order", "backorder_limit", "inventory_policy"):
        op.drop_column("variants", column)
