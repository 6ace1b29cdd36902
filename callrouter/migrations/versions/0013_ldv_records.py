"""the Logboek Dataverwerkingen: one record per processing of personal data (and the outbox
of its OTLP export)

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ldv_records",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("span_id", sa.String(length=16), nullable=False, unique=True),
        sa.Column("parent_span_id", sa.String(length=16)),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processing_activity_id", sa.String(length=500), nullable=False),
        sa.Column("data_subject_id", sa.String(length=64)),
        sa.Column("data_subject_id_type", sa.String(length=100)),
        sa.Column("case_id", sa.String(length=32)),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("links", sa.JSON()),
        sa.Column("resource", sa.JSON(), nullable=False),
        sa.Column("exported_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_ldv_trace", "ldv_records", ["trace_id", "start_time"])
    op.create_index("ix_ldv_subject", "ldv_records", ["data_subject_id"])
    # Partial: a call's first records (the incoming webhook's) have no case yet.
    op.create_index(
        "ix_ldv_case",
        "ldv_records",
        ["case_id"],
        sqlite_where=sa.text("case_id IS NOT NULL"),
        postgresql_where=sa.text("case_id IS NOT NULL"),
    )
    # The retention purge: per activity, the records past its period.
    op.create_index("ix_ldv_retention", "ldv_records", ["processing_activity_id", "end_time"])
    op.create_index(
        "ix_ldv_unexported",
        "ldv_records",
        ["id"],
        sqlite_where=sa.text("exported_at IS NULL"),
        postgresql_where=sa.text("exported_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("ldv_records")
