"""payment and refund state in explicit columns

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 00:00:00.000000

``orders.payment_applied_at``: when a payment of the order was received and applied.
It used to be read from the order's ``payment_events.type`` strings (and its
allocations; every sale recorded ``payment_intent.succeeded`` in the same transaction);
it is backfilled from them: the time of the first ``payment_intent.succeeded``,
``amount_mismatch`` or ``late_payment_out_of_stock`` event.

``refunds.source``: who made a refund (``OURS``, ``DASHBOARD``, ``UNATTRIBUTED``).
It used to be told from an id prefix (``unattributed:<order id>``) and a fixed reason;
it is backfilled from them, and an UNATTRIBUTED row loses its made-up provider id (one
such row per order, by a partial unique index). The downgrade gives it back.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: `refunds.reason` the service wrote on refunds made at the provider, outside it.
_EXTERNAL_REFUND = "refunded at the payment provider, outside this service"

_APPLIED_EVENTS = "('payment_intent.succeeded', 'amount_mismatch', 'late_payment_out_of_stock')"


def upgrade() -> None:
    """Add and backfill `orders.payment_applied_at` and `refunds.source`."""
    op.add_column(
        "orders", sa.Column("payment_applied_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute(
        f"""
        UPDATE orders o SET payment_applied_at = e.applied_at
          FROM (SELECT order_id, min(created_at) AS applied_at
                  FROM payment_events
                 WHERE type IN {_APPLIED_EVENTS}
                 GROUP BY order_id) e
         WHERE e.order_id = o.id
        """
    )

    op.add_column("refunds", sa.Column("source", sa.String(length=16), nullable=True))
    op.execute(
        sa.text(
            """
            UPDATE refunds SET source = CASE
                WHEN provider_refund_id LIKE 'unattributed:%' THEN 'UNATTRIBUTED'
                WHEN reason = :external AND provider_refund_id IS NOT NULL THEN 'DASHBOARD'
                ELSE 'OURS' END
            """
        ).bindparams(external=_EXTERNAL_REFUND)
    )
    op.execute("UPDATE refunds SET provider_refund_id = NULL WHERE source = 'UNATTRIBUTED'")
    op.alter_column("refunds", "source", nullable=False)
    op.create_check_constraint(
        op.f("ck_refunds_unattributed_without_id"),
        "refunds",
        "source <> 'UNATTRIBUTED' OR provider_refund_id IS NULL",
    )
    op.create_check_constraint(
        op.f("ck_refunds_dashboard_with_id"),
        "refunds",
        "source <> 'DASHBOARD' OR provider_refund_id IS NOT NULL",
    )
    op.create_index(
        "uq_refunds_unattributed_order_id",
        "refunds",
        ["order_id"],
        unique=True,
        postgresql_where=sa.text("source = 'UNATTRIBUTED'"),
    )


def downgrade() -> None:
    """Back to the id prefix and the event scan (the payment events are all still there)."""
    op.drop_index("uq_refunds_unattributed_order_id", table_name="refunds")
    op.drop_constraint(op.f("ck_refunds_dashboard_with_id"), "refunds", type_="check")
    op.drop_constraint(op.f("ck_refunds_unattributed_without_id"), "refunds", type_="check")
    op.execute(
        "UPDATE refunds SET provider_refund_id = 'unattributed:' || order_id::text "
        "WHERE source = 'UNATTRIBUTED'"
    )
    op.drop_column("refunds", "source")
    op.drop_column("orders", "payment_applied_at")
