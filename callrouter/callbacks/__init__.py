"""Callback requests: created by the voice flow, run by RQ, the database the source of truth.

A request is written first, then enqueued with a deterministic job id (`cb-<id>-<attempt>`),
so the same attempt is never queued twice. When its time comes, the job starts the due
requests of that line in order (urgent first, then the oldest), no more at once than the
line's hunt group has numbers. Each attempt moves the row from `pending` to `dialling` in one
conditional UPDATE before any REST request: a job that RQ delivers twice, or that runs again
after its worker was killed, finds the row moved on and places no second call.

Jobs here take ids only; the worker's number is decrypted inside the job that dials it.
"""

from callrouter.callbacks.attempts import (
    LineBusy,
    attempt_failed,
    claim_connecting,
    conference_name,
    dial_worker,
    finished,
    kick,
    professional_left,
    replan,
    reschedule,
    run_due,
    schedule,
    start_due,
    worker_unreachable,
)
from callrouter.callbacks.pending import PendingRequest, PendingWorkers, pending_for_worker
from callrouter.callbacks.plan import (
    ACTIVE,
    OPEN,
    QUEUE,
    STALE_CONNECTED,
    STALE_DIALLING,
    STALE_RINGING,
    SWEEP_EVERY,
    cancel,
    cancel_in,
    create,
    forget_job,
    job_id,
    now,
)
from callrouter.callbacks.sweep import (
    is_mobile,
    schedule_sweep,
    send_confirmation,
    sweep,
    sweep_and_reschedule,
)

__all__ = [
    "ACTIVE",
    "OPEN",
    "QUEUE",
    "STALE_CONNECTED",
    "STALE_DIALLING",
    "STALE_RINGING",
    "SWEEP_EVERY",
    "LineBusy",
    "PendingRequest",
    "PendingWorkers",
    "attempt_failed",
    "cancel",
    "cancel_in",
    "claim_connecting",
    "conference_name",
    "create",
    "dial_worker",
    "finished",
    "forget_job",
    "is_mobile",
    "job_id",
    "kick",
    "now",
    "pending_for_worker",
    "professional_left",
    "replan",
    "reschedule",
    "run_due",
    "schedule",
    "schedule_sweep",
    "send_confirmation",
    "start_due",
    "sweep",
    "sweep_and_reschedule",
    "worker_unreachable",
]
