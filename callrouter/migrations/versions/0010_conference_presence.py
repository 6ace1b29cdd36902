"""where the worker is in a transfer, and which legs have left its conference

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

from callrouter.models import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("transfers") as batch:
        batch.add_column(sa.Column("worker_place", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("worker_conference_sid", sa.String(length=64), nullable=True))
    with op.batch_alter_table("legs") as batch:
        batch.add_column(sa.Column("left_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("legs") as batch:
        batch.drop_column("left_at")
    with op.batch_alter_table("transfers") as batch:
        batch.drop_column("worker_conference_sid")
        batch.drop_column("worker_place")
