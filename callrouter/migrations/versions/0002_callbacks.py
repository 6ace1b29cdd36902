"""callbacks: reference, attempt state and the due-index of callback requests

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from callrouter.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("callback_requests") as batch:
        batch.add_column(sa.Column("reference", sa.String(length=12), nullable=True))
        batch.add_column(sa.Column("outcome", sa.String(length=32), nullable=True))
        batch.add_column(
            sa.Column("max_attempts", sa.Integer(), nullable=False, server_default="3")
        )
        batch.add_column(sa.Column("call_sid", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("worker_call_sid", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("last_attempt_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("done_at", UTCDateTime(), nullable=True))
    op.execute("UPDATE callback_requests SET reference = substr(id, 1, 8) WHERE reference IS NULL")
    with op.batch_alter_table("callback_requests") as batch:
        batch.alter_column("reference", existing_type=sa.String(length=12), nullable=False)
        batch.create_unique_constraint("uq_callback_requests_reference", ["reference"])
        batch.create_index("ix_callback_requests_call_sid", ["call_sid"])
        batch.create_index("ix_callback_requests_worker_call_sid", ["worker_call_sid"])
        batch.create_index("ix_callbacks_line_due", ["line_id", "state", "planned_at"])


def downgrade() -> None:
    with op.batch_alter_table("callback_requests") as batch:
        batch.drop_index("ix_callbacks_line_due")
        batch.drop_index("ix_callback_requests_worker_call_sid")
        batch.drop_index("ix_callback_requests_call_sid")
        batch.drop_constraint("uq_callback_requests_reference", type_="unique")
        for col in (
            "done_at",
            "last_attempt_at",
            "worker_call_sid",
            "call_sid",
            "max_attempts",
            "outcome",
            "reference",
        ):
            batch.drop_column(col)
