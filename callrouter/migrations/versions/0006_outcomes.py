"""the worker's verdict on each transfer and the speech term that chose a line (learning network)

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from callrouter.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("transfers") as batch:
        batch.add_column(sa.Column("result", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("result_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("result_by", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("right_org", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("right_line", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("selected_term", sa.String(length=100), nullable=True))
        batch.create_index("ix_transfers_result", ["result"])
        batch.drop_index("ix_transfers_created_at")
        batch.create_index(
            "ix_transfers_report",
            [
                "created_at",
                "line_id",
                "direction",
                "result",
                "selected_term",
                "time_to_answer_s",
                "accepted_at",
                "step",
                "case_id",
            ],
        )
        # The dashboard's reads at a million transfers (see bench/dashboard.py).
        batch.drop_index("ix_transfers_call_id")
        batch.create_index("ix_transfers_call_target", ["call_id", "target_org"])
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("selected_term", sa.String(length=100), nullable=True))
        batch.drop_index("ix_calls_line_id")
        batch.create_index("ix_calls_line_received", ["line_id", "received_at", "id"])
    with op.batch_alter_table("callback_requests") as batch:
        batch.create_index("ix_callback_requests_requested_at", ["requested_at"])


def downgrade() -> None:
    with op.batch_alter_table("callback_requests") as batch:
        batch.drop_index("ix_callback_requests_requested_at")
    with op.batch_alter_table("calls") as batch:
        batch.drop_index("ix_calls_line_received")
        batch.create_index("ix_calls_line_id", ["line_id"])
        batch.drop_column("selected_term")
    with op.batch_alter_table("transfers") as batch:
        batch.drop_index("ix_transfers_report")
        batch.create_index("ix_transfers_created_at", ["created_at"])
        batch.drop_index("ix_transfers_call_target")
        batch.create_index("ix_transfers_call_id", ["call_id"])
        batch.drop_index("ix_transfers_result")
        for col in ("selected_term", "right_line", "right_org", "result_by", "result_at", "result"):
            batch.drop_column(col)
