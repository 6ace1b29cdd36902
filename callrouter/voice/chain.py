"""A case and its chain of steps during a call: the next step, a callback on the case."""

from __future__ import annotations

from flask import request

from callrouter import callbacks, cases, jobs, services
from callrouter.flows import menu as mflow
from callrouter.flows import routing, speech
from callrouter.ldv import kinds as ldv
from callrouter.ldv import store as ldv_store
from callrouter.models import Call, Case, Transfer
from callrouter.voice.webhook import now, renderer


def number_from_form(identified_by: str | None = None) -> str | None:
    """The worker's own number from the webhook (every webhook of the call carries it). A
    caller the directory recognised by this number (`identified_by="number"`) is taken as
    the directory took it: in E.164 as Twilio sends it, without parsing it again."""
    raw = request.form.get("From", "")[:64]
    if identified_by == "number" and routing.is_e164(raw):
        return raw
    return routing.normalise_number(raw)


def ensure_case(s, row: Call, at, life_event: str | None = None) -> tuple[Case, bool]:
    """The call's case, opened now if it has none; (case, opened now)."""
    if row.case_id:
        case = s.get(Case, row.case_id)
        if case is not None:
            return case, False
    svc = services.current()
    case = cases.open_case(
        s,
        call_id=row.id,
        caller_org=row.caller_org,
        worker_number=number_from_form(),
        pseudonyms=svc.pseudonyms,
        at=at,
        life_event=life_event,
    )
    row.case_id = case.id
    ldv_store.write(
        s,
        [
            ldv.case_opened(
                svc.directory.register,
                call_id=row.id,
                case_id=case.id,
                worker_hmac=case.worker_hmac,
                caller_org=case.caller_org,
                life_event=life_event,
                at=at,
            )
        ],
    )
    return case, True


def step_state(s, case_id: str | None, pos: int | None, state: str, **values) -> None:
    if case_id is None or pos is None:
        return
    step = cases.step_at(s, case_id, pos)
    if step is not None:
        cases.set_step(s, step.id, state, now(), **values)


def chain_next(s, call: Call, case_id: str, intro: str = "") -> str:
    """The next pending step of the case's chain, or the end of the chain. A step whose line
    is closed becomes a callback request on the case, and the chain moves on."""
    d = services.current().directory
    texts = [intro] if intro else []
    case = s.get(Case, case_id)
    total = len(cases.steps_of(s, case_id))
    for _ in range(20):  # bounded: a chain has few steps
        step = cases.next_pending(s, case_id)
        if step is None:
            texts.append(speech.CHAIN_DONE)
            return renderer().ask("/voice/again", " ".join(texts), speech.NEW_TRANSFER, timeout=6)
        line = d.line(step.line_id)
        org = d.organisation(step.target_org)
        at = now()
        if line is None or org is None:
            cases.set_step(s, step.id, "skipped", at)
            continue
        avail = mflow.availability(d, line, at)
        if not avail.open:
            state, planned, req_id = case_callback(s, call, case, line, "closed", None, at)
            cases.set_step(s, step.id, "closed", at, callback_id=req_id)
            texts.append(
                speech.step_unreachable(
                    step.position,
                    org,
                    True,
                    planned if state == "pending" else None,
                    at.astimezone(d.tz),
                )
            )
            continue
        withdrawn = cases.withdrawn(s, case_id, step.target_org)
        texts.append(speech.step_options(step.position, total, org, line, step.reason, withdrawn))
        return renderer().ask(
            f"/voice/transfer?line={line.id}&pos={step.position}",
            *texts,
            num_digits=2,
            finish_on_key="#",
            timeout=5,
        )
    return renderer().say(speech.GOODBYE, hangup=True)


def case_callback(
    s,
    call: Call,
    case: Case | None,
    line,
    reason: str,
    transfer_id: str | None,
    at,
    worker_number: str | None = None,
    caller_org: str | None = None,
):
    """A callback request for `line` on the case (the callbacks' machinery), in the handler's
    transaction; returns (state, planned time, request id)."""
    number = worker_number if worker_number is not None else number_from_form()
    row = s.get(Call, call.id)
    req, updated = callbacks.create(
        s,
        call_id=call.id,
        transfer_id=transfer_id,
        caller_org=caller_org if caller_org is not None else call.caller_org,
        line_id=line.id,
        urgent=call.urgent,
        consent=call.consent,
        reason=reason,
        worker_number=number,
        at=at,
        case_id=case.id if case is not None else None,
    )
    if row.outcome in (None, "abandoned", "closed", "no-answer", "busy", "declined", "failed"):
        row.outcome = "callback-requested"
    request_id, planned, state = req.id, req.planned_at, req.state
    if state == "pending" and not updated:
        announce_callback(request_id)
    return state, planned, request_id


def announce_callback(request_id: str) -> None:
    """A new pending callback request: plan its first attempt and confirm it by SMS, once
    the handler's transaction has committed."""
    jobs.after_response(callbacks.schedule, request_id)
    jobs.dispatch(
        callbacks.send_confirmation, request_id, queue="default", job_id=f"cb-sms-{request_id}"
    )


def chain_of(s, tr: Transfer) -> Case | None:
    """The life-event case that this transfer is a step of, if any."""
    if tr.case_id is None or tr.step is None or tr.direction is not None:
        return None
    case = s.get(Case, tr.case_id)
    return case if case is not None and case.life_event else None


def chain_continues(s, tr: Transfer) -> bool:
    case = chain_of(s, tr)
    return case is not None and cases.next_pending(s, case.id) is not None


def finish_step(s, tr: Transfer, state: str = "done") -> Case | None:
    """Mark the transfer's chain step finished; the chain's case when it is part of one."""
    case = chain_of(s, tr)
    if case is None:
        return None
    step = cases.step_at(s, case.id, tr.step)
    if step is not None:
        cases.set_step(s, step.id, state, now(), only_from=cases.OPEN_STEP_STATES)
    return case
