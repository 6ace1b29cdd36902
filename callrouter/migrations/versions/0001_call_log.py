"""call log

Revision ID: 0001
Revises:
Create Date: 2026-11-25 15:21:39.811500
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("caller_org", sa.String(length=64), nullable=True),
        sa.Column("identified_by", sa.String(length=16), nullable=True),
        sa.Column("from_hmac", sa.String(length=64), nullable=True),
        sa.Column("from_masked", sa.String(length=32), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("menu_done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("target_org", sa.String(length=64), nullable=True),
        sa.Column("line_id", sa.String(length=64), nullable=True),
        sa.Column("selected_by", sa.String(length=16), nullable=True),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("consent", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=True),
        sa.Column("duration_s", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("call_sid"),
    )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calls_caller_org"), ["caller_org"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_from_hmac"), ["from_hmac"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_line_id"), ["line_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_outcome"), ["outcome"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_received_at"), ["received_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_target_org"), ["target_org"], unique=False)

    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("sid", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=96), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=32), nullable=True),
        sa.Column("transfer_id", sa.String(length=32), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "sid", "event", "sequence"),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_call_received", ["call_id", "received_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_events_transfer_id"), ["transfer_id"], unique=False)

    op.create_table(
        "callback_requests",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("call_id", sa.String(length=32), nullable=False),
        sa.Column("transfer_id", sa.String(length=32), nullable=True),
        sa.Column("caller_org", sa.String(length=64), nullable=True),
        sa.Column("target_org", sa.String(length=64), nullable=False),
        sa.Column("line_id", sa.String(length=64), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("consent", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("worker_number_enc", sa.LargeBinary(), nullable=True),
        sa.Column("worker_hmac", sa.String(length=64), nullable=True),
        sa.Column("worker_masked", sa.String(length=32), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("call_id"),
    )
    with op.batch_alter_table("callback_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_callback_requests_caller_org"), ["caller_org"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_callback_requests_line_id"), ["line_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_callback_requests_planned_at"), ["planned_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_callback_requests_state"), ["state"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_callback_requests_target_org"), ["target_org"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_callback_requests_worker_hmac"), ["worker_hmac"], unique=False
        )

    op.create_table(
        "transfers",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("call_id", sa.String(length=32), nullable=False),
        sa.Column("caller_org", sa.String(length=64), nullable=True),
        sa.Column("target_org", sa.String(length=64), nullable=False),
        sa.Column("line_id", sa.String(length=64), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("consent", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("hunt_position", sa.Integer(), nullable=False),
        sa.Column("worker_call_sid", sa.String(length=64), nullable=True),
        sa.Column("conference_sid", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ringing_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("citizen_added_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker_left_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("time_to_answer_s", sa.Float(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("minutes_saved", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_transfers_call_id"), ["call_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_transfers_caller_org"), ["caller_org"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_transfers_conference_sid"), ["conference_sid"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_transfers_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_transfers_line_id"), ["line_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_transfers_outcome"), ["outcome"], unique=False)
        batch_op.create_index(batch_op.f("ix_transfers_target_org"), ["target_org"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_transfers_worker_call_sid"), ["worker_call_sid"], unique=False
        )

    op.create_table(
        "legs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("transfer_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=True),
        sa.Column("number_hmac", sa.String(length=64), nullable=False),
        sa.Column("number_masked", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("whisper_plays", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["transfer_id"],
            ["transfers.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("call_sid"),
        sa.UniqueConstraint("transfer_id", "kind", "position"),
    )
    with op.batch_alter_table("legs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_legs_transfer_id"), ["transfer_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("legs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_legs_transfer_id"))

    op.drop_table("legs")
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transfers_worker_call_sid"))
        batch_op.drop_index(batch_op.f("ix_transfers_target_org"))
        batch_op.drop_index(batch_op.f("ix_transfers_outcome"))
        batch_op.drop_index(batch_op.f("ix_transfers_line_id"))
        batch_op.drop_index(batch_op.f("ix_transfers_created_at"))
        batch_op.drop_index(batch_op.f("ix_transfers_conference_sid"))
        batch_op.drop_index(batch_op.f("ix_transfers_caller_org"))
        batch_op.drop_index(batch_op.f("ix_transfers_call_id"))

    op.drop_table("transfers")
    with op.batch_alter_table("callback_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_callback_requests_worker_hmac"))
        batch_op.drop_index(batch_op.f("ix_callback_requests_target_org"))
        batch_op.drop_index(batch_op.f("ix_callback_requests_state"))
        batch_op.drop_index(batch_op.f("ix_callback_requests_planned_at"))
        batch_op.drop_index(batch_op.f("ix_callback_requests_line_id"))
        batch_op.drop_index(batch_op.f("ix_callback_requests_caller_org"))

    op.drop_table("callback_requests")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_transfer_id"))
        batch_op.drop_index("ix_events_call_received")

    op.drop_table("events")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calls_target_org"))
        batch_op.drop_index(batch_op.f("ix_calls_received_at"))
        batch_op.drop_index(batch_op.f("ix_calls_outcome"))
        batch_op.drop_index(batch_op.f("ix_calls_line_id"))
        batch_op.drop_index(batch_op.f("ix_calls_from_hmac"))
        batch_op.drop_index(batch_op.f("ix_calls_caller_org"))

    op.drop_table("calls")
