"""outbox delivery: the per-endpoint due index the delivery worker's claim reads

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 13:00:00.000000

The claim (``outbound/delivery.py``) takes, for each enabled endpoint, its oldest due
PENDING messages up to the endpoint's free slots (docs/adr/0019-outbox-delivery.md). The
partial index on ``(endpoint_id, next_attempt_at, id) WHERE status = 'PENDING'`` makes that
one short index range per endpoint, whatever the endpoint's history of delivered rows.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the per-endpoint due index."""
    op.create_index(
        "ix_outbox_messages_endpoint_due",
        "outbox_messages",
        ["endpoint_id", "next_attempt_at", "id"],
        postgresql_where=sa.text("status = 'PENDING'"),
    )


def downgrade() -> None:
    """Drop it."""
    op.drop_index("ix_outbox_messages_endpoint_due", table_name="outbox_messages")
