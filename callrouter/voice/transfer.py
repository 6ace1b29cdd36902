"""The warm transfer starts: the options (urgent, consent), the conference, the wait."""

from __future__ import annotations

import uuid
from datetime import timedelta

from flask import request

from callrouter import cases, jobs, services
from callrouter.flows import menu as mflow
from callrouter.flows import speech
from callrouter.ldv import kinds as ldv
from callrouter.ldv import store as ldv_store
from callrouter.models import Call, Case, Transfer
from callrouter.store import transfers as store
from callrouter.voice.chain import chain_next, step_state
from callrouter.voice.offer import closed_offer
from callrouter.voice.prompts import menu_prompt, worker_conference
from callrouter.voice.webhook import (
    arg_pos,
    bp,
    identified_call,
    keyed,
    now,
    renderer,
    transaction,
    twiml,
)


@bp.post("/transfer")
def transfer():
    svc = services.current()
    line = svc.directory.line(request.args.get("line"))
    pos = arg_pos()
    with transaction() as s:
        call = identified_call(s)
        if call is None:
            return twiml(renderer().say(redirect="/voice/incoming"))
        if line is None:
            return twiml(menu_prompt(0))
        case = s.get(Case, call.case_id) if call.case_id else None
        step = cases.step_at(s, case.id, pos) if case is not None and pos is not None else None
        opts = mflow.parse_options(keyed(4))
        chain = case is not None and case.life_event is not None and step is not None
        if chain:
            answer = _chain_choice(s, call, case, step, pos, opts)
            if answer is not None:
                return twiml(answer)
        org = svc.directory.organisation(line.organisation_id)
        if opts.repeat and case is not None:
            return twiml(
                renderer().ask(
                    f"/voice/transfer?line={line.id}&pos={pos}",
                    speech.options(org, line, case.reference),
                    num_digits=2,
                    finish_on_key="#",
                    timeout=4,
                )
            )
        at = now()
        avail = mflow.availability(svc.directory, line, at)
        if not avail.open:
            if chain:
                return twiml(chain_next(s, call, case.id))
            return closed_offer(s, call, case.id if case else None, org, line, pos, avail, at)
        tr, level = _start_transfer(s, call, case, step, org, line, pos, opts, at)
        return twiml(
            worker_conference(
                tr.id, speech.connecting(org, opts.urgent, level), start_on_enter=False
            )
        )


def _chain_choice(s, call: Call, case: Case, step, pos: int | None, opts) -> str | None:
    """The worker's choice at a step of a life-event chain: stop, skip or hear it again;
    None when the worker goes on with this step."""
    at = now()
    if opts.stop:
        cases.set_step(s, step.id, "stopped", at, only_from=("pending",))
        cases.stop_rest(s, case.id, at)
        return renderer().ask("/voice/again", speech.CHAIN_STOPPED, speech.NEW_TRANSFER, timeout=6)
    if opts.skip:
        step_state(s, case.id, pos, "skipped")
        return chain_next(s, call, case.id, speech.step_skipped(pos))
    if opts.repeat:
        step_state(s, case.id, pos, "pending")
        return chain_next(s, call, case.id, speech.case_opened(case.reference))
    return None


def _start_transfer(s, call: Call, case: Case | None, step, org, line, pos, opts, at):
    """The transfer row (one per call and line within 30 s: a webhook retried by Twilio must
    not start a second transfer), its consent and its first leg; (transfer, consent level)."""
    withdrawn = case is not None and cases.withdrawn(s, case.id, org.id)
    level = mflow.capped_consent(opts.consent_level, withdrawn)
    call.urgent, call.consent = opts.urgent, level != "none"
    recent = store.open_for_call(s, call.id, line.id, since=at - timedelta(seconds=30))
    if recent is not None:
        return recent, level
    tr = Transfer(
        id=uuid.uuid4().hex,
        call_id=call.id,
        caller_org=call.caller_org,
        target_org=org.id,
        line_id=line.id,
        urgent=opts.urgent,
        consent=level != "none",
        state="dialling",
        worker_call_sid=call.call_sid,
        created_at=at,
        case_id=case.id if case is not None else None,
        step=pos,
        consent_level=level,
        selected_term=call.selected_term if call.line_id == line.id else None,
    )
    s.add(tr)
    if case is not None:
        consent = cases.record_consent(
            s,
            case,
            org.id,
            level,
            by_org=call.caller_org,
            by_hmac=call.from_hmac,
            transfer_id=tr.id,
            at=at,
        )
        ldv_store.write(
            s,
            [
                ldv.consent_recorded(
                    services.current().directory.register,
                    call_id=call.id,
                    case_id=case.id,
                    opening_call_id=case.call_id,
                    consent_id=consent.id,
                    org=org.id,
                    choice=level,
                    at=at,
                )
            ],
        )
        if step is not None:
            cases.set_step(s, step.id, "ringing", at, transfer_id=tr.id)
    jobs.dispatch(jobs.place_leg, tr.id, 0, job_id=f"leg-{tr.id}-0")
    jobs.after_response(jobs.schedule_watchdog, tr.id, jobs.watchdog_deadline(line, opts.urgent))
    return tr, level


@bp.route("/wait", methods=["GET", "POST"])
def wait():
    if request.args.get("to") == "worker":  # the way back: a professional waits for the worker
        return twiml(renderer().hold_loop(speech.HOLD_FOR_WORKER, "/voice/wait?to=worker"))
    return twiml(renderer().hold_loop(speech.HOLD, "/voice/wait"))


@bp.route("/hold", methods=["GET", "POST"])
def hold():
    return twiml(renderer().hold_loop(speech.PROFESSIONAL_HOLD, "/voice/hold"))
