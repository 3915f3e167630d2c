"""outbound events: webhook endpoints, the outbox of deliveries (webhook and e-mail), job runs

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 12:00:00.000000

``webhook_endpoints``: where the shop's other systems want events (Standard Webhooks).
The signing secret is stored encrypted (``secret_ciphertext``, a Fernet token under a key
from settings), so a database dump alone cannot sign; during a rotation the previous
secret keeps signing until ``previous_secret_expires_at``.

``outbox_messages``: the transactional outbox. A change that causes an event writes one
row per recipient (a subscribed endpoint, or an e-mail address) in its own transaction,
so there is no event for a rolled-back change and no change without its event. Workers
claim PENDING rows whose ``next_attempt_at`` has come with ``FOR UPDATE SKIP LOCKED``.
``message_id`` is the webhook-id header, the same on every attempt; ``payload`` the exact
JSON body sent.

``job_runs``: when each periodic self-care job last ran, so a daily job runs once a day
across restarts and processes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the endpoint, outbox and job-run tables."""
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("topics", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("secret_ciphertext", sa.Text(), nullable=False),
        sa.Column("previous_secret_ciphertext", sa.Text(), nullable=True),
        sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "cardinality(topics) >= 1", name=op.f("ck_webhook_endpoints_topics_not_empty")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_table(
        "outbox_messages",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("endpoint_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("recipient", sa.Text(), nullable=True),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("topic", sa.String(40), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), server_default=sa.text("'PENDING'"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_response_body", sa.Text(), nullable=True),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=True,
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "channel IN ('WEBHOOK', 'EMAIL')", name=op.f("ck_outbox_messages_channel_known")
        ),
        sa.CheckConstraint(
            "status IN ('PENDING', 'SUCCEEDED', 'FAILED')",
            name=op.f("ck_outbox_messages_status_known"),
        ),
        sa.CheckConstraint(
            "(channel = 'WEBHOOK' AND endpoint_id IS NOT NULL AND recipient IS NULL)"
            " OR (channel = 'EMAIL' AND recipient IS NOT NULL AND endpoint_id IS NULL)",
            name=op.f("ck_outbox_messages_recipient_of_channel"),
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_outbox_messages_attempts_non_negative")),
        sa.CheckConstraint(
            "last_response_body IS NULL OR char_length(last_response_body) <= 1024",
            name=op.f("ck_outbox_messages_response_body_truncated"),
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_outbox_messages_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_messages")),
        sa.UniqueConstraint("message_id", name=op.f("uq_outbox_messages_message_id")),
    )
    op.create_index(
        "ix_outbox_messages_due",
        "outbox_messages",
        ["next_attempt_at", "id"],
        postgresql_where=sa.text("status = 'PENDING'"),
    )
    op.create_index("ix_outbox_messages_endpoint_id_id", "outbox_messages", ["endpoint_id", "id"])
    op.create_index("ix_outbox_messages_created_at", "outbox_messages", ["created_at"])
    op.create_table(
        "job_runs",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("last_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_result", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_runs")),
    )


def downgrade() -> None:
    """Drop the tables (pending deliveries are lost)."""
    op.drop_table("job_runs")
    op.drop_index("ix_outbox_messages_created_at", table_name="outbox_messages")
    op.drop_index("ix_outbox_messages_endpoint_id_id", table_name="outbox_messages")
    op.drop_index("ix_outbox_messages_due", table_name="outbox_messages")
    op.drop_table("outbox_messages")
    op.drop_table("webhook_endpoints")
