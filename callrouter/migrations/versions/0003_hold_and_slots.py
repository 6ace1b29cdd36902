"""hold state of transfers; number and confirmation of callback attempts

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from callrouter.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("transfers") as batch:
        batch.add_column(sa.Column("hold_wanted", sa.Boolean(), nullable=True))
    with op.batch_alter_table("callback_requests") as batch:
        batch.add_column(sa.Column("number_index", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("confirmed_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("callback_requests") as batch:
        batch.drop_column("confirmed_at")
        batch.drop_column("number_index")
    with op.batch_alter_table("transfers") as batch:
        batch.drop_column("hold_wanted")
