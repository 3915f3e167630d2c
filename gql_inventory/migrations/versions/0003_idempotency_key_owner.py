"""idempotency keys belong to their owner

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 00:00:00.000000

An idempotency key replays the first call's result (a reservation id is a
capability), so keys are scoped by owner: ``storefront`` for anonymous callers,
``admin:<name>`` for admins. Existing storefront records (reserveStock, checkout)
become ``storefront``'s; admin records made before owners existed become
``admin:legacy``'s, so no admin key replays into another admin's scope.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add `idempotency_records.owner` to the primary key."""
    op.add_column(
        "idempotency_records",
        sa.Column("owner", sa.String(length=128), nullable=False, server_default="storefront"),
    )
    op.execute(
        "UPDATE idempotency_records SET owner = 'admin:legacy' "
        "WHERE scope NOT IN ('reserveStock', 'checkout')"
    )
    op.alter_column("idempotency_records", "owner", server_default=None)
    op.drop_constraint("pk_idempotency_records", "idempotency_records", type_="primary")
    op.create_primary_key(
        "pk_idempotency_records", "idempotency_records", ["scope", "owner", "key"]
    )


def downgrade() -> None:
    """Back to one key space per operation (keeps the first owner's record of each key)."""
    op.execute(
        "DELETE FROM idempotency_records a USING idempotency_records b "
        "WHERE a.scope = b.scope AND a.key = b.key AND a.owner > b.owner"
    )
    op.drop_constraint("pk_idempotency_records", "idempotency_records", type_="primary")
    op.create_primary_key("pk_idempotency_records", "idempotency_records", ["scope", "key"])
    op.drop_column("idempotency_records", "owner")
