"""the network report's evidence rolled up per viewer, settled day and line; what a stored
day holds (its version)

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "network_cells",
        sa.Column("tz", sa.String(length=64), primary_key=True),
        sa.Column("viewer", sa.String(length=64), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("line_id", sa.String(length=64), primary_key=True),
        sa.Column("transfers", sa.Integer(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("slots", sa.JSON(), nullable=False),
        sa.Column("answer_times", sa.JSON(), nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("terms", sa.JSON(), nullable=False),
    )
    # What a stored day holds: 0 for days of an older builder (see figures.ROLLUP_VERSION).
    with op.batch_alter_table("figure_days") as batch:
        batch.add_column(
            sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
    # Days stored before this table existed have no network cells: build them again.
    op.execute("DELETE FROM case_figure_cells")
    op.execute("DELETE FROM figure_cells")
    op.execute("DELETE FROM figure_days")


def downgrade() -> None:
    with op.batch_alter_table("figure_days") as batch:
        batch.drop_column("version")
    op.drop_table("network_cells")
