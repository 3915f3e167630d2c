"""who changed stock: stock_movements.actor

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 00:00:00.000000

``stock_movements.actor`` (NOT NULL): who caused the change, ``admin:<name>``,
``storefront``, ``stripe``, ``system`` or ``import``. From now on the unit of work
writes it (`gql_inventory.domain.uow.UnitOfWork.actor`).

Rows written before this revision never recorded it; they are backfilled from what the
row does say (its kind and reason), a best guess where the kind had several writers:

- ``EXPIRY`` -> ``system`` (only the expiry sweeper writes it);
- ``RESERVATION``, ``RELEASE`` -> ``storefront`` (a release may also have come from an
  admin cancellation or a failed payment; the row does not tell);
- ``SALE`` -> ``stripe`` (sales are applied only on payment events: webhook or the
  pending-payment check);
- ``RETURN`` -> ``stripe`` when its reason is the one written for refunds made at the
  payment provider outside this service (``refunded at the payment provider, ...``),
  else ``admin:unknown`` (an admin's refundOrder);
- ``RECEIPT``, ``COUNT`` -> ``import`` when their reason is the importer's
  (``Shopify CSV import (...)``) or the demo catalog's (``demo catalog``), else
  ``admin:unknown``;
- ``ADJUSTMENT`` (and anything else) -> ``admin:unknown``.

A CHECK constraint keeps the values to that list. The downgrade drops the column.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ACTOR_CHECK = "actor IN ('storefront', 'stripe', 'system', 'import') OR actor LIKE 'admin:_%'"


def upgrade() -> None:
    """Add `stock_movements.actor`, backfill it (rule above), then make it NOT NULL."""
    op.add_column("stock_movements", sa.Column("actor", sa.Text(), nullable=True))
    op.execute(
        """
        UPDATE stock_movements SET actor = CASE
            WHEN kind = 'EXPIRY' THEN 'system'
            WHEN kind IN ('RESERVATION', 'RELEASE') THEN 'storefront'
            WHEN kind = 'SALE' THEN 'stripe'
            WHEN kind = 'RETURN'
                 AND reason LIKE 'refunded at the payment provider%' THEN 'stripe'
            WHEN kind IN ('RECEIPT', 'COUNT')
                 AND (reason LIKE 'Shopify CSV import%' OR reason = 'demo catalog')
                THEN 'import'
            ELSE 'admin:unknown' END
        """
    )
    op.alter_column("stock_movements", "actor", nullable=False)
    op.create_check_constraint(
        op.f("ck_stock_movements_actor_known"), "stock_movements", _ACTOR_CHECK
    )


def downgrade() -> None:
    """Drop `stock_movements.actor` (and its CHECK constraint with it)."""
    op.drop_constraint(op.f("ck_stock_movements_actor_known"), "stock_movements", type_="check")
    op.drop_column("stock_movements", "actor")
