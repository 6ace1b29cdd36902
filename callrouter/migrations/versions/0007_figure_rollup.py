"""daily figures rolled up per viewer, for days that no longer change (dashboard figures)

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from callrouter.models import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "figure_cells",
        sa.Column("tz", sa.String(length=64), primary_key=True),
        sa.Column("viewer", sa.String(length=64), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("target_org", sa.String(length=64), primary_key=True),
        sa.Column("line_id", sa.String(length=64), primary_key=True),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("connected", sa.Integer(), nullable=False),
        sa.Column("callbacks", sa.Integer(), nullable=False),
        sa.Column("minutes_saved", sa.Float(), nullable=False),
        sa.Column("answer_times", sa.JSON(), nullable=False),
    )
    op.create_table(
        "figure_days",
        sa.Column("tz", sa.String(length=64), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("built_at", UTCDateTime(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("figure_days")
    op.drop_table("figure_cells")
