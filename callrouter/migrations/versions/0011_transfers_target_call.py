"""an organisation's transfers index also holds the call: the call log of an agency finds
the calls that reached it from that index, not from every transfer's call id

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("transfers") as batch:
        batch.drop_index("ix_transfers_target_created")
        batch.create_index(
            "ix_transfers_target_created", ["target_org", "created_at", "call_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("transfers") as batch:
        batch.drop_index("ix_transfers_target_created")
        batch.create_index(
            "ix_transfers_target_created", ["target_org", "created_at"], unique=False
        )
