"""stock movement positions: the commit-safe order of the event log

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 00:00:00.000000

A movement gets its `position` from the relay (`gql_inventory.live.relay`) after its
transaction has committed, so positions grow in an order no later commit can
undercut. Existing movements are positioned by the relay on its first run.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add `stock_movements.position` with its indexes."""
    op.add_column("stock_movements", sa.Column("position", sa.BigInteger(), nullable=True))
    op.create_index("uq_stock_movements_position", "stock_movements", ["position"], unique=True)
    op.create_index(
        "ix_stock_movements_unpositioned",
        "stock_movements",
        ["id"],
        unique=False,
        postgresql_where=sa.text("position IS NULL"),
    )
    op.create_index(
        "ix_stock_movements_variant_id_position",
        "stock_movements",
        ["variant_id", "position"],
        unique=False,
    )


def downgrade() -> None:
    """Drop `stock_movements.position` and its indexes."""
    op.drop_index("ix_stock_movements_variant_id_position", table_name="stock_movements")
    op.drop_index("ix_stock_movements_unpositioned", table_name="stock_movements")
    op.drop_index("uq_stock_movements_position", table_name="stock_movements")
    op.drop_column("stock_movements", "position")
