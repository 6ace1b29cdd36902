"""Retention: personal fields of the call log are removed once their period has passed.

The period is `CALLROUTER_RETENTION_DAYS` (default 90), or a caller organisation's own
`retention_days` in the directory. Removed are the number pseudonyms and masked numbers of
calls and legs, the worker's (encrypted) number of finished callback requests and of cases
(which are closed then; any case closes after 30 days, ending the way back to it), and the
pseudonym of who recorded a consent; what the figures count (times, organisations, lines,
outcomes, durations, minutes saved) stays. LDV records are deleted after their processing
activity's own period (the register in the directory), and each purge is an LDV record too.
Rows are changed in small batches so that the webhooks' writes never wait long. A daily RQ
job runs it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from redis.exceptions import RedisError
from sqlalchemy import and_, delete, not_, or_, select, update

from callrouter import clock, metrics_state, services
from callrouter.dashboard.auth import SESSION_MAX
from callrouter.models import Call, CallbackRequest, Case, Consent, Leg, Transfer, WebSession

log = logging.getLogger(__name__)
BATCH = 2000
EVERY = timedelta(days=1)
CASE_OPEN_DAYS = timedelta(days=30)  # how long a professional can still call back on a case


def now() -> datetime:
    return clock.now()


def policies(directory, default_days: int) -> list[tuple]:
    """(call, transfer, callback, case and consent conditions, days) per retention period."""
    custom = {c.id: c.retention_days for c in directory.callers if c.retention_days}
    out: list[tuple] = [
        (
            Call.caller_org == cid,
            Transfer.caller_org == cid,
            CallbackRequest.caller_org == cid,
            Case.caller_org == cid,
            Consent.recorded_by_org == cid,
            days,
        )
        for cid, days in custom.items()
    ]
    ids = list(custom)

    def rest(col):
        return or_(col.is_(None), not_(col.in_(ids))) if ids else True

    out.append(
        (
            rest(Call.caller_org),
            rest(Transfer.caller_org),
            rest(CallbackRequest.caller_org),
            rest(Case.caller_org),
            rest(Consent.recorded_by_org),
            default_days,
        )
    )
    return out


def purge(moment: datetime | None = None) -> dict:
    """Remove personal fields past their period; returns how many rows of each kind changed."""
    svc = services.current()
    moment = moment or now()
    counts = {"calls": 0, "legs": 0, "callbacks": 0, "cases": 0, "consents": 0}
    for *conditions, days in policies(svc.directory, svc.settings.retention_days):
        _purge_period(svc, conditions, moment - timedelta(days=days), moment, counts)
    # A case stays open for the way back for CASE_OPEN_DAYS, then it is closed.
    _batched(
        svc,
        Case,
        Case.id,
        and_(Case.state == "open", Case.opened_at < moment - CASE_OPEN_DAYS),
        dict(state="closed", closed_at=moment),
        logged=False,  # closes cases; removes nothing personal
    )
    with svc.sessions.begin() as s:  # sessions past their maximum age (never logged out)
        s.execute(delete(WebSession).where(WebSession.created_at < moment - SESSION_MAX))
    counts["ldv_records"] = _accountable(svc, moment)
    if any(counts.values()):
        log.info("retention: personal fields removed from %s", counts)
        metrics_state.count(svc.redis, "retention_purged", counts)
    return counts


def _purge_period(svc, conditions: list, cutoff: datetime, moment: datetime, counts: dict):
    """One retention period's rows older than `cutoff`: their personal fields removed."""
    from callrouter.callbacks import OPEN

    call_cond, transfer_cond, cb_cond, case_cond, consent_cond = conditions
    counts["calls"] += _batched(
        svc,
        Call,
        Call.id,
        and_(call_cond, Call.received_at < cutoff, Call.purged_at.is_(None)),
        dict(from_hmac=None, from_masked=None, purged_at=moment),
    )
    old_transfers = select(Transfer.id).where(transfer_cond, Transfer.created_at < cutoff)
    counts["legs"] += _batched(
        svc,
        Leg,
        Leg.id,
        and_(Leg.transfer_id.in_(old_transfers), Leg.number_hmac != ""),
        dict(number_hmac="", number_masked="verwijderd"),
    )
    counts["callbacks"] += _batched(
        svc,
        CallbackRequest,
        CallbackRequest.id,
        and_(
            cb_cond,
            CallbackRequest.requested_at < cutoff,
            CallbackRequest.state.not_in(OPEN),
            or_(
                CallbackRequest.worker_hmac.is_not(None),
                CallbackRequest.worker_number_enc.is_not(None),
                CallbackRequest.worker_masked.is_not(None),
            ),
        ),
        dict(worker_number_enc=None, worker_hmac=None, worker_masked=None),
    )
    counts["cases"] += _batched(
        svc,
        Case,
        Case.id,
        and_(
            case_cond,
            Case.opened_at < cutoff,
            or_(
                Case.worker_hmac.is_not(None),
                Case.worker_number_enc.is_not(None),
                Case.worker_masked.is_not(None),
            ),
        ),
        dict(
            worker_number_enc=None,
            worker_hmac=None,
            worker_masked=None,
            state="closed",
            closed_at=moment,
        ),
    )
    counts["consents"] += _batched(  # who recorded it: the worker's pseudonym
        svc,
        Consent,
        Consent.id,
        and_(consent_cond, Consent.recorded_at < cutoff, Consent.recorded_by_hmac.is_not(None)),
        dict(recorded_by_hmac=None),
    )


def _accountable(svc, moment: datetime) -> int:
    """LDV records past their activity's period are deleted (while an export is configured,
    only those the collector acknowledged)."""
    from callrouter.ldv import store as ldv_store

    return ldv_store.purge(
        svc.engine,
        svc.directory.register,
        moment,
        keep_unsent=bool(svc.settings.ldv_otlp_endpoint),
        record_of=lambda first, n: _purge_record(svc, moment, "ldv_records", first, n),
    )


def _purge_record(svc, moment: datetime, table: str, first, n: int) -> dict:
    """The LDV record of one batch of the purge, written in the batch's transaction (no
    subject: it concerns every subject in the rows, whose pseudonyms it removes)."""
    from callrouter.ldv import kinds

    return kinds.dashboard(
        svc.directory.register,
        "retention-purge",
        at=moment,
        key=f"{table}/{moment.isoformat()}/{first}",
        attributes={"callrouter.purged.table": table, "callrouter.purged.rows": n},
    )


def _batched(svc, model, key, condition, values: dict, logged: bool = True) -> int:
    """Change the rows in batches; each batch's transaction records it (`logged`)."""
    from callrouter.ldv import store as ldv_store

    total = 0
    while True:
        with svc.engine.begin() as conn:
            ids = conn.execute(select(key).where(condition).limit(BATCH)).scalars().all()
            if not ids:
                return total
            conn.execute(update(model).where(key.in_(ids)).values(**values))
            if logged:
                record = _purge_record(svc, now(), model.__tablename__, ids[0], len(ids))
                ldv_store.write(conn, [record])
        total += len(ids)
        if len(ids) < BATCH:
            return total


def purge_and_reschedule() -> dict:
    """The daily job: the purge, then the figures of the days that settled since (their rollup
    is built after the purge, which never changes what the figures count)."""
    from callrouter import figures

    try:
        counts = purge()
        try:
            counts["figure_days"] = figures.build_job()
        except Exception:
            log.exception("figures: rollup failed (the dashboard reads the call log instead)")
        return counts
    finally:
        schedule()


def schedule() -> None:
    """The next purge at 03:30 local time (a quiet hour), once per day whoever schedules it."""
    svc = services.current()
    local = now().astimezone(svc.directory.tz)
    nxt = local.replace(hour=3, minute=30, second=0, microsecond=0)
    if nxt <= local:
        nxt = (nxt + EVERY).replace(hour=3, minute=30)
    try:
        svc.queue("default").enqueue_at(
            nxt,
            purge_and_reschedule,
            job_id=f"retention-{nxt:%Y%m%d}",
            result_ttl=86400,
            failure_ttl=7 * 86400,
        )
    except (RedisError, OSError):
        log.warning("could not schedule the retention purge")
