"""cases: references, chain steps and consents; several callback requests per call (one per line)

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from callrouter.models import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("reference", sa.String(length=7), nullable=False),
        sa.Column("caller_org", sa.String(length=64), nullable=True),
        sa.Column("call_id", sa.String(length=32), nullable=True),
        sa.Column("life_event", sa.String(length=64), nullable=True),
        sa.Column("worker_hmac", sa.String(length=64), nullable=True),
        sa.Column("worker_masked", sa.String(length=32), nullable=True),
        sa.Column("worker_number_enc", sa.LargeBinary(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index("ix_cases_reference", ["reference"], unique=False)
        batch_op.create_index(
            "uq_cases_open_reference",
            ["reference"],
            unique=True,
            sqlite_where=sa.text("state = 'open'"),
            postgresql_where=sa.text("state = 'open'"),
        )
        batch_op.create_index(batch_op.f("ix_cases_call_id"), ["call_id"], unique=False)
        batch_op.create_index("ix_cases_caller_opened", ["caller_org", "opened_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_life_event"), ["life_event"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_opened_at"), ["opened_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_worker_hmac"), ["worker_hmac"], unique=False)

    op.create_table(
        "case_steps",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("line_id", sa.String(length=64), nullable=False),
        sa.Column("target_org", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("transfer_id", sa.String(length=32), nullable=True),
        sa.Column("callback_id", sa.String(length=32), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "position"),
    )
    with op.batch_alter_table("case_steps", schema=None) as batch_op:
        batch_op.create_index("ix_case_steps_org", ["target_org", "case_id"], unique=False)

    op.create_table(
        "consents",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("target_org", sa.String(length=64), nullable=False),
        sa.Column("choice", sa.String(length=16), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("recorded_by_org", sa.String(length=64), nullable=True),
        sa.Column("recorded_by_hmac", sa.String(length=64), nullable=True),
        sa.Column("transfer_id", sa.String(length=32), nullable=True),
        sa.Column("withdrawn_at", UTCDateTime(), nullable=True),
        sa.Column("withdrawn_by", sa.String(length=120), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.create_index("ix_consents_case_org", ["case_id", "target_org"], unique=False)

    # callback_requests.call_id was unique (one request per call); a case's chain may leave one
    # per line. PostgreSQL named the constraint itself; SQLite's is unnamed, so the table is
    # copied with a naming convention that gives the reflected constraint a name to drop.
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("callback_requests_call_id_key", "callback_requests", type_="unique")
    else:
        with op.batch_alter_table(
            "callback_requests",
            recreate="always",
            naming_convention={"uq": "uq_%(table_name)s_%(column_0_name)s"},
        ) as batch_op:
            batch_op.drop_constraint("uq_callback_requests_call_id", type_="unique")
    with op.batch_alter_table("callback_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("case_id", sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_callback_requests_call_id"), ["call_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_callback_requests_case_id"), ["case_id"], unique=False)
        batch_op.create_unique_constraint("uq_callback_requests_call_line", ["call_id", "line_id"])

    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("case_id", sa.String(length=32), nullable=True))

    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("case_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("step", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("consent_level", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("direction", sa.String(length=16), nullable=True))
        batch_op.create_index(batch_op.f("ix_transfers_case_id"), ["case_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transfers_case_id"))
        batch_op.drop_column("direction")
        batch_op.drop_column("consent_level")
        batch_op.drop_column("step")
        batch_op.drop_column("case_id")

    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("case_id")

    with op.batch_alter_table("callback_requests", schema=None) as batch_op:
        batch_op.drop_constraint("uq_callback_requests_call_line", type_="unique")
        batch_op.drop_index(batch_op.f("ix_callback_requests_case_id"))
        batch_op.drop_index(batch_op.f("ix_callback_requests_call_id"))
        batch_op.drop_column("case_id")
        batch_op.create_unique_constraint("uq_callback_requests_call_id", ["call_id"])

    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_index("ix_consents_case_org")

    op.drop_table("consents")
    with op.batch_alter_table("case_steps", schema=None) as batch_op:
        batch_op.drop_index("ix_case_steps_org")

    op.drop_table("case_steps")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("uq_cases_open_reference")
        batch_op.drop_index("ix_cases_reference")
        batch_op.drop_index(batch_op.f("ix_cases_worker_hmac"))
        batch_op.drop_index(batch_op.f("ix_cases_opened_at"))
        batch_op.drop_index(batch_op.f("ix_cases_life_event"))
        batch_op.drop_index("ix_cases_caller_opened")
        batch_op.drop_index(batch_op.f("ix_cases_call_id"))

    op.drop_table("cases")
