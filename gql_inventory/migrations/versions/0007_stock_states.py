"""stock states: damaged, quality control and safety stock units on hand, never sold

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 00:00:00.000000

``stock_levels`` gains ``damaged``, ``quality_control`` and ``safety_stock`` (units on
hand that are not for sale, each >= 0). The old ``reserved <= on_hand`` CHECK becomes
``reserved + damaged + quality_control + safety_stock <= on_hand``: reserved and
unavailable units together never exceed what is on hand (docs/adr/0017-stock-states.md).

``stock_movements`` gains ``from_state`` / ``to_state`` / ``quantity`` (a STATE_CHANGE
row's move; NULL on every other kind) and ``damaged_after`` / ``quality_control_after`` /
``safety_stock_after`` (the level's states after the change, so the ledger still replays
every figure; 0 on rows written before this revision, when no state existed).
``kind`` is stored as text (a non-native enum without a CHECK), so STATE_CHANGE needs no
schema change.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATES = ("damaged", "quality_control", "safety_stock")
_STATE_NAMES = "'AVAILABLE', 'DAMAGED', 'QUALITY_CONTROL', 'SAFETY_STOCK'"
_WITHIN = "reserved + damaged + quality_control + safety_stock <= on_hand"


def upgrade() -> None:
    """Add the state columns and their CHECKs, widen the within-on-hand CHECK, and add
    the state columns of the ledger."""
    for column in _STATES:
        op.add_column(
            "stock_levels",
            sa.Column(column, sa.Integer(), server_default=sa.text("0"), nullable=False),
        )
        op.create_check_constraint(
            op.f(f"ck_stock_levels_{column}_non_negative"), "stock_levels", f"{column} >= 0"
        )
    op.drop_constraint(
        op.f("ck_stock_levels_reserved_within_on_hand"), "stock_levels", type_="check"
    )
    op.create_check_constraint(op.f("ck_stock_levels_held_within_on_hand"), "stock_levels", _WITHIN)
    op.add_column("stock_movements", sa.Column("from_state", sa.Text(), nullable=True))
    op.add_column("stock_movements", sa.Column("to_state", sa.Text(), nullable=True))
    op.add_column("stock_movements", sa.Column("quantity", sa.Integer(), nullable=True))
    for column in _STATES:
        op.add_column(
            "stock_movements",
            sa.Column(f"{column}_after", sa.Integer(), server_default=sa.text("0"), nullable=False),
        )
    op.create_check_constraint(
        op.f("ck_stock_movements_states_known"),
        "stock_movements",
        f"(from_state IS NULL OR from_state IN ({_STATE_NAMES}))"
        f" AND (to_state IS NULL OR to_state IN ({_STATE_NAMES}))",
    )


def downgrade() -> None:
    """Drop the state columns (their units become available again) and restore the old
    CHECK."""
    op.drop_constraint(op.f("ck_stock_movements_states_known"), "stock_movements", type_="check")
    for column in ("quantity", "to_state", "from_state", *(f"{c}_after" for c in _STATES)):
        op.drop_column("stock_movements", column)
    op.drop_constraint(op.f("ck_stock_levels_held_within_on_hand"), "stock_levels", type_="check")
    for column in _STATES:
        op.drop_column("stock_levels", column)
    op.create_check_constraint(
        op.f("ck_stock_levels_reserved_within_on_hand"), "stock_levels", "reserved <= on_hand"
    )
