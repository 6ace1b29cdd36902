"""case figures rolled up per viewer and settled day, beside figure_cells

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_figure_cells",
        sa.Column("tz", sa.String(length=64), primary_key=True),
        sa.Column("viewer", sa.String(length=64), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("cases", sa.Integer(), nullable=False),
        sa.Column("multi_org", sa.Integer(), nullable=False),
        sa.Column("chains", sa.Integer(), nullable=False),
        sa.Column("chain_steps", sa.Integer(), nullable=False),
        sa.Column("chain_steps_done", sa.Integer(), nullable=False),
        sa.Column("chains_complete", sa.Integer(), nullable=False),
        sa.Column("life_events", sa.JSON(), nullable=False),
    )
    # Days stored before this table existed have no case cells: build them again.
    op.execute("DELETE FROM figure_cells")
    op.execute("DELETE FROM figure_days")


def downgrade() -> None:
    op.drop_table("case_figure_cells")
