"""A closed or unanswered line: the callback offer and its acceptance."""

from __future__ import annotations

from flask import request

from callrouter import callbacks, cases, services
from callrouter.flows import callback as cflow
from callrouter.flows import routing, speech
from callrouter.models import Call, Case, Transfer
from callrouter.voice.chain import (
    announce_callback,
    case_callback,
    chain_next,
    chain_of,
    finish_step,
    step_state,
)
from callrouter.voice.prompts import menu_prompt
from callrouter.voice.webhook import (
    arg_id,
    bp,
    identified_call,
    keyed,
    now,
    renderer,
    set_outcome,
    transaction,
    twiml,
)


def closed_offer(s, call: Call, case_id: str | None, org, line, pos: int | None, avail, at):
    """The line is closed: say when it opens and offer a callback when one can be planned."""
    svc = services.current()
    set_outcome(s, call.id, "closed")
    step_state(s, case_id, pos, "closed")
    local_now = at.astimezone(svc.directory.tz)
    text = speech.closed(org, line, avail.opens_at, local_now, avail.reason)
    if not callback_possible(line, call.caller_org, at, "closed"):
        return twiml(renderer().ask("/voice/again", text, speech.CALLBACK_NEVER, timeout=6))
    return twiml(
        renderer().ask(
            f"/voice/callback?line={line.id}&reason=closed&pos={pos}",
            text,
            speech.CALLBACK_OFFER,
            timeout=6,
        )
    )


def callback_possible(line, caller_org: str | None, at, reason: str) -> bool:
    """Whether a callback could ever be planned: the line and the caller's working hours
    meet some time soon. Offering one that cannot happen would only disappoint."""
    d = services.current().directory
    return cflow.first_plan(d, line, d.caller(caller_org), at, reason) is not None


@bp.post("/unanswered")
def unanswered():
    """Every number of the hunt group failed: the worker was redirected here from the wait."""
    tr_id = arg_id("tr")
    with transaction() as s:
        tr = s.get(Transfer, tr_id) if tr_id else None
        if tr is None:
            return twiml(menu_prompt(0))
        call = s.get(Call, tr.call_id)
        if call is not None and call.outcome in (None, "abandoned"):
            call.outcome = tr.outcome or "no-answer"
        if tr.direction == "to-worker":
            return twiml(_worker_unreachable(s, tr, call))
        return twiml(_unanswered_offer(s, tr, call))


def _worker_unreachable(s, tr: Transfer, call: Call | None) -> str:
    """The worker who opened the case does not answer: the case's line of the calling
    organisation is called back first when it is open, then the worker."""
    svc = services.current()
    at = now()
    case = s.get(Case, tr.case_id) if tr.case_id else None
    line = svc.directory.line(tr.line_id)
    planned = None
    if case is not None and line is not None and call is not None and case.worker_number_enc:
        number = svc.pseudonyms.decrypt(case.worker_number_enc)
        state, planned, _ = case_callback(
            s,
            call,
            case,
            line,
            "unanswered",
            tr.id,
            at,
            worker_number=number,
            caller_org=case.caller_org,
        )
        planned = planned if state == "pending" else None
    return renderer().say(
        speech.worker_unreachable(planned, at.astimezone(svc.directory.tz)), hangup=True
    )


def _unanswered_offer(s, tr: Transfer, call: Call | None) -> str:
    """Nobody of the line answered: the chain goes on (with a callback on the step), or the
    worker is offered a callback when one can be planned."""
    svc = services.current()
    at = now()
    local_now = at.astimezone(svc.directory.tz)
    org = svc.directory.organisation(tr.target_org)
    line = svc.directory.line(tr.line_id)
    chain = chain_of(s, tr)
    if chain is not None and line is not None and call is not None:
        state, planned, req_id = case_callback(s, call, chain, line, "unanswered", tr.id, at)
        finish_step(s, tr, "unanswered")
        step_state(s, chain.id, tr.step, "unanswered", callback_id=req_id)
        text = speech.step_unreachable(
            tr.step, org, False, planned if state == "pending" else None, local_now
        )
        return chain_next(s, call, chain.id, text)
    if line is None:  # gone from the directory since: nothing to call back
        return renderer().ask(
            "/voice/again", speech.unanswered(org), speech.OTHER_ORGANISATION, timeout=6
        )
    if not callback_possible(line, call.caller_org if call else None, at, "unanswered"):
        return renderer().ask(
            "/voice/again", speech.unanswered(org), speech.CALLBACK_NEVER, timeout=6
        )
    return renderer().ask(
        f"/voice/callback?line={line.id}&reason=unanswered&tr={tr.id}",
        speech.unanswered(org),
        speech.CALLBACK_OFFER,
        timeout=6,
    )


@bp.post("/callback")
def callback():
    svc = services.current()
    line = svc.directory.line(request.args.get("line"))
    key = keyed(1)
    with transaction() as s:
        call = identified_call(s)
        if call is None:
            return twiml(renderer().say(redirect="/voice/incoming"))
        if key == "2" or line is None:
            return twiml(menu_prompt(0))
        if key != "1":
            return twiml(renderer().say(speech.GOODBYE, hangup=True))
        return twiml(_callback_accepted(s, call, line))


def _callback_accepted(s, call: Call, line) -> str:
    """The worker accepted the callback: one request per call and line (also when the
    webhook is delivered twice), on the call's case when it has one."""
    at = now()
    local_now = at.astimezone(services.current().directory.tz)
    reason = "unanswered" if request.args.get("reason") == "unanswered" else "closed"
    number = routing.normalise_number(request.form.get("From", "")[:64])
    req, updated = callbacks.create(
        s,
        call_id=call.id,
        transfer_id=arg_id("tr"),
        caller_org=call.caller_org,
        line_id=line.id,
        urgent=call.urgent,
        consent=call.consent,
        reason=reason,
        worker_number=number,
        at=at,
        case_id=call.case_id,
    )
    call.outcome = "callback-requested"
    if call.case_id is not None:
        step = cases.last_step_for_line(s, call.case_id, line.id)
        if step is not None:
            state = step.state if step.state != "pending" else reason
            cases.set_step(s, step.id, state, at, callback_id=req.id)
    if req.state == "pending" and not updated:
        announce_callback(req.id)
    if req.state != "pending":
        text = speech.CALLBACK_NO_NUMBER if not number else speech.CALLBACK_IMPOSSIBLE
        return renderer().say(text, hangup=True)
    if updated:
        return renderer().say(speech.callback_updated(req.planned_at, local_now), hangup=True)
    return renderer().say(speech.callback_planned(req.planned_at, local_now), hangup=True)
