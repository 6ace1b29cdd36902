"""drop the index of calls.from_hmac: nothing looks calls up by number, and every index costs
the incoming webhook's insert

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_index("ix_calls_from_hmac")


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.create_index("ix_calls_from_hmac", ["from_hmac"])
