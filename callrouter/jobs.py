"""Side-effect jobs: REST requests to the telephony provider, run by RQ after the webhook answered.

Jobs take ids only (never numbers or names), are idempotent (RQ delivers at least once), and
guard every outbound call with database state: a leg row is written before the REST request,
and its unique (transfer, kind, position) key means a repeated job never rings twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import g, has_request_context
from redis.exceptions import RedisError
from rq import Retry, get_current_job

from callrouter import clock, services
from callrouter.flows import transfer as tflow
from callrouter.flows import warm_transfer as wt
from callrouter.models import Case, Transfer
from callrouter.privacy import loggable_sid, mask
from callrouter.store import legs as leg_rows
from callrouter.store import transfers as store
from callrouter.twilio_adapter import TelephonyError

log = logging.getLogger(__name__)


def now() -> datetime:
    return clock.now()


def retry_later(exc: TelephonyError, func, *args) -> bool:
    """Whether a failed REST request should fail the job `func(*args)`: only when the failure
    may pass, `func(*args)` is itself the RQ job running (not work it called, nor work run in
    place of a job), and RQ has a retry left for it. Otherwise the caller records the failure
    as the leg's or the call's outcome and the call moves on: never both. A job whose retries
    are used up fails with its last error and stays in RQ's failed registry."""
    if not exc.transient:
        return False
    job = get_current_job()
    return (
        job is not None
        and job.func_name == f"{func.__module__}.{func.__qualname__}"
        and tuple(job.args) == args
        and job.should_retry
    )


def _next_number(transfer_id: str, position: int) -> None:
    """Go on with the hunt group: each number its own job (its own retries)."""
    dispatch(place_leg, transfer_id, position, job_id=f"leg-{transfer_id}-{position}")


# --------------------------------------------------------------------------- dispatch


def dispatch(func, *args, job_id: str | None = None, queue: str = services.QUEUE_CALLS) -> None:
    """Run `func(*args)` in an RQ worker; if Redis is unreachable, after this response instead.

    Either way the webhook's TwiML is never held back by a REST request. Inside a webhook's
    transaction (`voice.webhook.transaction`) the job waits for the commit.
    """
    if has_request_context() and (held := g.get("held_jobs")) is not None:
        held.append((func, args, {"job_id": job_id, "queue": queue}))
        return
    svc = services.current()
    try:
        svc.queue(queue).enqueue(
            func,
            *args,
            job_id=job_id,
            retry=Retry(max=3, interval=[1, 3, 10]),
            result_ttl=3600,
            failure_ttl=svc.settings.retention_days * 24 * 3600,
        )
        return
    except (RedisError, OSError) as exc:
        log.warning(
            "queue unavailable (%s); running %s after the response",
            type(exc).__name__,
            func.__name__,
        )
    after_response(func, *args)


def after_response(func, *args) -> None:
    if has_request_context():
        g.setdefault("after_response", []).append((func, args))
    else:
        func(*args)


def run_after_response(response):
    """Flask `after_request` hook: run the deferred work once the response has been sent."""
    tasks = g.pop("after_response", None)
    if tasks:
        from flask import current_app

        app = current_app._get_current_object()

        def run():
            with app.app_context():
                for func, args in tasks:
                    try:
                        func(*args)
                    except Exception:  # the caller has its TwiML already; log it
                        log.exception("deferred %s failed", func.__name__)

        response.call_on_close(run)
    return response


# --------------------------------------------------------------------------- the hunt group


def place_leg(transfer_id: str, position: int) -> str | None:
    """Ring number `position` of the transfer's hunt group; past the end, the transfer model
    decides (the worker is told). Returns the new call's SID."""
    svc = services.current()
    with svc.sessions.begin() as s:
        loaded = store.load(s, transfer_id, svc.directory)
        if loaded is None or loaded.row.state != "dialling":
            return None
        tr = loaded.row
        numbers = _numbers(s, tr, svc)
        if position >= len(numbers):
            outcomes = tuple(leg.outcome for leg in loaded.legs if leg.kind == "professional")
            actions = store.apply(s, loaded, wt.HuntExhausted(outcomes), now())
            worker_sid = tr.worker_call_sid
            leg_id = None
        else:
            leg_id = _leg_row(s, tr, position, numbers[position], svc)
            if leg_id is None:
                return None  # placed already (RQ delivers at least once)
            request = _leg_request(tr, numbers[position], leg_id, svc.directory)
    if leg_id is None:
        carry_out(transfer_id, worker_sid, actions)
        return None
    if leg_id == leg_rows.LOST:
        _next_number(transfer_id, position + 1)
        return None
    try:
        placed = svc.telephony.create_call(**request)
    except TelephonyError as exc:
        retry = retry_later(exc, place_leg, transfer_id, position)
        with svc.sessions.begin() as s:
            if retry:  # the retry writes the row afresh and places the call then
                leg_rows.forget(s, leg_id)
            else:
                leg_rows.mark_failed(s, leg_id, now())
        if retry:
            raise
        log.warning("transfer %s: leg %s could not be placed", transfer_id, position)
        _next_number(transfer_id, position + 1)
        return None
    _leg_placed(transfer_id, leg_id, placed)
    return placed.sid


def _numbers(s, tr: Transfer, svc) -> tuple[str, ...]:
    if tr.direction == "to-worker":
        # The way back: ring the worker who opened the case (their number, decrypted).
        return _worker_of_case(s, tr.case_id, svc)
    line = svc.directory.line(tr.line_id)
    return tflow.hunt_group(line, tr.urgent) if line else ()


def _leg_row(s, tr: Transfer, position: int, number: str, svc) -> str | None:
    pseudonym, masked = svc.pseudonyms.pseudonym(number), mask(number)
    return leg_rows.add_professional(s, tr, position, pseudonym, masked, now())


def _leg_request(tr: Transfer, number: str, leg_id: str, directory) -> dict:
    line = directory.line(tr.line_id)
    ring = WAY_BACK_RING if tr.direction == "to-worker" or line is None else line.ring_seconds
    shown = (
        directory.caller_id
        if tr.direction == "to-worker"
        else directory.caller_id_for(tr.caller_org)
    )
    svc = services.current()
    return dict(
        to=number,
        from_=shown,
        url=svc.url(f"/voice/whisper?tr={tr.id}&leg={leg_id}"),
        status_callback=svc.url(f"/voice/status/leg?tr={tr.id}&leg={leg_id}"),
        timeout=ring,
    )


def _leg_placed(transfer_id: str, leg_id: str, placed) -> None:
    """Keep the new call's SID; the status the REST answer gave goes through the transfer
    model like any status callback (the callbacks may have been faster than the answer)."""
    svc = services.current()
    with svc.sessions.begin() as s:
        loaded = store.load(s, transfer_id, svc.directory)
        leg = next((leg for leg in loaded.legs if leg.id == leg_id), None)
        leg.call_sid = leg.call_sid or placed.sid
        loaded.row.ringing_at = loaded.row.ringing_at or now()
        actions = store.apply(s, loaded, wt.LegStatus(leg_id, placed.status or "queued"), now())
        still_wanted = loaded.row.state == "dialling"
        worker_sid = loaded.row.worker_call_sid
    carry_out(transfer_id, worker_sid, actions)
    if not still_wanted:
        # The worker left while the request was in flight: take the call back at once.
        dispatch(cancel_legs, transfer_id)


WAY_BACK_RING = 25  # seconds the worker's phone rings when a professional calls back
WAY_BACK_DEADLINE = timedelta(seconds=WAY_BACK_RING + 45 + 30)


def _worker_of_case(s, case_id: str | None, svc) -> tuple[str, ...]:
    case = s.get(Case, case_id) if case_id else None
    number = svc.pseudonyms.decrypt(case.worker_number_enc) if case is not None else None
    return (number,) if number else ()


def watchdog_deadline(line, urgent: bool) -> timedelta:
    """How long a transfer may ring before the worker is told, whatever callbacks were lost:
    every number's ring time, plus time for each whisper, plus a margin."""
    numbers = tflow.hunt_group(line, urgent)
    return timedelta(seconds=len(numbers) * (line.ring_seconds + 45) + 30)


def schedule_watchdog(transfer_id: str, after: timedelta) -> None:
    svc = services.current()
    try:
        svc.queue().enqueue_in(
            after, transfer_watchdog, transfer_id, job_id=f"watchdog-{transfer_id}", result_ttl=600
        )
    except (RedisError, OSError):
        log.warning("transfer %s: no watchdog (queue unavailable)", transfer_id)


def transfer_watchdog(transfer_id: str) -> bool:
    """RQ job: a transfer still ringing past its deadline (status callbacks lost, a job died)
    is ended by the transfer model: ringing legs are cancelled and the worker is offered a
    callback."""
    svc = services.current()
    with svc.sessions.begin() as s:
        loaded = store.load(s, transfer_id, svc.directory)
        if loaded is None or loaded.row.state != "dialling":
            return False
        outcomes = tuple(leg.outcome for leg in loaded.legs if leg.kind == "professional")
        actions = store.apply(s, loaded, wt.HuntExhausted(outcomes, deadline=True), now())
        worker_sid = loaded.row.worker_call_sid
    log.warning("transfer %s: still ringing past its deadline; ended by the watchdog", transfer_id)
    carry_out(transfer_id, worker_sid, actions)
    return True


def redirect_call(call_sid: str, path: str) -> None:
    """Move a live call to another of the service's TwiML documents."""
    svc = services.current()
    try:
        svc.telephony.update_call(call_sid, url=svc.url(path))
    except TelephonyError as exc:
        if retry_later(exc, redirect_call, call_sid, path):
            raise
        log.warning("call %s could not be redirected", loggable_sid(call_sid))


def carry_out(tr_id: str, worker_call_sid: str | None, actions: list) -> None:
    """Dispatch the jobs of the transfer model's actions (a `Reply` is for the webhook to
    render; inside a webhook's transaction they are enqueued after its commit)."""
    for action in actions:
        if isinstance(action, wt.CancelLegs):
            dispatch(cancel_legs, tr_id)
        elif isinstance(action, wt.EndConversation):
            dispatch(end_conference, tr_id, action.who)
        elif isinstance(action, wt.EndConference):
            dispatch(end_lonely_conference, tr_id, action.conference_sid)
        elif isinstance(action, wt.Hold):
            dispatch(hold_professional, tr_id)
        elif isinstance(action, wt.PlaceLeg):
            dispatch(place_leg, tr_id, action.position, job_id=f"leg-{tr_id}-{action.position}")
        elif isinstance(action, wt.BringWorkerBack) and worker_call_sid:
            dispatch(bring_worker_back, tr_id)
        elif isinstance(action, wt.RedirectWorker) and worker_call_sid:
            dispatch(redirect_call, worker_call_sid, f"/voice/unanswered?tr={tr_id}")


def worker_hung_up(call_id: str) -> None:
    """The worker's own call ended while a transfer of it rang or talked: the transfer model
    decides for each (stop the ringing; leave the professional with the citizen, or tell the
    professional and end)."""
    svc = services.current()
    with svc.sessions.begin() as s:
        todo = []
        for tr_id in store.open_ids_for_call(s, call_id):
            loaded = store.load(s, tr_id, svc.directory)
            if loaded is not None:
                todo.append(
                    (
                        tr_id,
                        loaded.row.worker_call_sid,
                        store.apply(s, loaded, wt.WorkerHungUp(), now()),
                    )
                )
    for tr_id, sid, actions in todo:
        carry_out(tr_id, sid, actions)


def bring_worker_back(transfer_id: str) -> None:
    """The conversation ended while the worker was in the * menu (outside the conference, so
    no Dial action tells them): move their call to the end of the conversation, unless they
    have moved on by the time this runs."""
    svc = services.current()
    with svc.sessions() as s:
        tr = s.get(Transfer, transfer_id)
        if tr is None or tr.worker_place != "menu" or not tr.worker_call_sid:
            return
        sid = tr.worker_call_sid
    redirect_call(sid, f"/voice/conversation-ended?tr={transfer_id}")


def end_lonely_conference(transfer_id: str, conference_sid: str) -> None:
    """The worker is alone in a conference (the professional left while the worker was on the
    way back into it): end it, so that the worker's Dial action moves the call on."""
    try:
        services.current().telephony.end_conference(conference_sid)
    except TelephonyError as exc:
        if retry_later(exc, end_lonely_conference, transfer_id, conference_sid):
            raise
        log.warning("transfer %s: a conference could not be ended", transfer_id)


def cancel_legs(transfer_id: str) -> int:
    """Cancel every professional leg still ringing or whispering; returns how many were ended."""
    svc = services.current()
    with svc.sessions() as s:
        live = leg_rows.professionals_to_cancel(s, transfer_id)
    ended = 0
    for sid, status in live:
        # Twilio: `canceled` ends a call that is queued or ringing, `completed` one in progress.
        target = "completed" if status in ("in-progress", "answered") else "canceled"
        try:
            svc.telephony.update_call(sid, status=target)
            ended += 1
        except TelephonyError as exc:
            if retry_later(exc, cancel_legs, transfer_id):
                raise  # the retry ends them all again (an ended one answers 4xx: logged)
            if target == "canceled" and exc.status in (400, 409):
                try:  # it was answered meanwhile
                    svc.telephony.update_call(sid, status="completed")
                    ended += 1
                except TelephonyError as again:
                    if retry_later(again, cancel_legs, transfer_id):
                        raise
                    log.warning("transfer %s: a leg could not be ended", transfer_id)
    return ended


def hold_professional(transfer_id: str) -> None:
    """Apply the wished hold state: the professional waits (hearing a Dutch message) while the
    worker is in the * menu, and is taken off hold when the worker returns or hands over."""
    svc = services.current()
    with svc.sessions() as s:
        tr = s.get(Transfer, transfer_id)
        hold = bool(tr.hold_wanted) if tr is not None else False
        leg = leg_rows.accepted_professional(s, transfer_id)
        if tr is None or leg is None or not tr.conference_sid or leg.status in tflow.TERMINAL:
            return
        conf, sid = tr.conference_sid, leg.call_sid
    try:
        svc.telephony.hold_participant(conf, sid, hold, svc.url("/voice/hold"))
    except TelephonyError as exc:
        if retry_later(exc, hold_professional, transfer_id):
            raise
        log.warning("transfer %s: hold=%s failed", transfer_id, hold)


def end_conference(transfer_id: str, who: str = "worker") -> None:
    """Nobody is left with the professional (`who` left last): tell the professional why and
    end their call (which ends the conference; no conference SID is needed for it)."""
    svc = services.current()
    with svc.sessions() as s:
        prof = leg_rows.accepted_professional(s, transfer_id)
        sid = prof.call_sid if prof is not None and prof.status not in tflow.TERMINAL else None
        tr = s.get(Transfer, transfer_id)
        conf = tr.conference_sid if sid is None else None
        if who == "worker" and tr.direction == "to-worker":
            who = "professional"  # the way back: the professional called, the worker answered
    try:
        if sid:
            path = "/voice/worker-left" + (f"?who={who}" if who != "worker" else "")
            svc.telephony.update_call(sid, url=svc.url(path))
        elif conf:
            svc.telephony.end_conference(conf)
    except TelephonyError as exc:
        if retry_later(exc, end_conference, transfer_id, who):
            raise
        log.warning("transfer %s: the conversation could not be ended", transfer_id)


def add_citizen(transfer_id: str, leg_id: str, number: str) -> None:
    """Dial the citizen into the conference. Runs in the web process after the response, so that
    the number stays in memory only: it is never written to a queue or a table."""
    svc = services.current()
    with svc.sessions() as s:
        tr = s.get(Transfer, transfer_id)
        shown = svc.directory.caller_id_for(tr.caller_org if tr else None)
    try:
        placed = svc.telephony.add_participant(
            transfer_id,
            to=number,
            from_=shown,
            status_callback=svc.url(f"/voice/status/leg?tr={transfer_id}&leg={leg_id}"),
        )
    except TelephonyError:
        # Runs after the response, never as an RQ job (the number is in memory only): no
        # retry, the leg is recorded as failed and the worker hears it from the leg's status.
        with svc.sessions.begin() as s:
            leg_rows.mark_failed(s, leg_id, now())
        return
    with svc.sessions.begin() as s:
        leg_rows.set_call_sid(s, leg_id, placed.sid)
