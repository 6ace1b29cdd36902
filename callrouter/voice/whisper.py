"""The professional's side: the whisper, accept or decline."""

from __future__ import annotations

from flask import request

from callrouter import cases, services
from callrouter.flows import speech
from callrouter.flows import transfer as tflow
from callrouter.flows import warm_transfer as wt
from callrouter.ldv import kinds as ldv
from callrouter.ldv import store as ldv_store
from callrouter.models import Call, Case, Leg, Transfer
from callrouter.store import transfers as store
from callrouter.voice.effects import run
from callrouter.voice.prompts import professional_conference
from callrouter.voice.webhook import (
    arg_id,
    bp,
    form_sid,
    keyed,
    now,
    renderer,
    transaction,
    transfer_and_leg,
    twiml,
)


def _whisper_prompt(tr: Transfer, leg: Leg, s=None) -> str:
    svc = services.current()
    d = svc.directory
    case = s.get(Case, tr.case_id) if s is not None and tr.case_id else None
    if tr.direction == "to-worker":
        text = speech.worker_whisper(d.organisation(tr.caller_org), case.reference if case else "")
        return renderer().ask(f"/voice/whisper/answer?tr={tr.id}&leg={leg.id}", text, timeout=8)
    caller = d.caller(tr.caller_org)
    org, line = d.organisation(tr.target_org), d.line(tr.line_id)
    step = None
    if case is not None and case.life_event and tr.step is not None:
        event = d.life_event(case.life_event)
        row = cases.step_at(s, case.id, tr.step)
        total = len(cases.steps_of(s, case.id))
        step = (
            tr.step,
            total,
            event.spoken_name if event else case.life_event,
            row.reason if row is not None else None,
        )
    text = speech.whisper(
        caller.spoken_name if caller else "Een gemeente",
        org,
        line,
        tr.urgent,
        tr.consent_level or tr.consent,
        reference=case.reference if case else None,
        step=step,
    )
    return renderer().ask(f"/voice/whisper/answer?tr={tr.id}&leg={leg.id}", text, timeout=8)


@bp.post("/whisper")
def whisper():
    """The professional answered: whisper who calls and why, and ask to accept."""
    with transaction() as s:
        tr, leg = transfer_and_leg(s)
        if tr is None:
            return twiml(renderer().say(speech.WHISPER_GONE, hangup=True))
        leg.call_sid = leg.call_sid or form_sid("CallSid") or None
        leg.answered_at = leg.answered_at or now()
        if tflow.advances(leg.status, "in-progress"):
            leg.status = "in-progress"
        if tr.state != "dialling":
            gone = speech.WHISPER_TAKEN if tr.state == "connected" else speech.WHISPER_GONE
            return twiml(renderer().say(gone, hangup=True))
        leg.whisper_plays += 1
        _context_shared(s, tr)
        return twiml(_whisper_prompt(tr, leg, s))


def _context_shared(s, tr: Transfer) -> None:
    """The LDV record of the whisper: once per transfer (the organisation it reaches), in
    the whisper's transaction."""
    call = s.get(Call, tr.call_id)
    case = s.get(Case, tr.case_id) if tr.case_id else None
    # A later call of the case (the way back, a second call on it): linked to the case's trace.
    opening = case.call_id if case is not None and case.call_id != tr.call_id else None
    ldv_store.write(
        s,
        [
            ldv.context_shared(
                services.current().directory.register,
                call_id=tr.call_id,
                transfer_id=tr.id,
                case_id=tr.case_id,
                worker_hmac=call.from_hmac if call is not None else None,
                org=tr.target_org,
                line=tr.line_id,
                consent_level=tr.consent_level,
                direction=tr.direction,
                at=now(),
                links=ldv.case_link(opening, tr.case_id) if tr.case_id else None,
            )
        ],
    )


@bp.post("/whisper/answer")
def whisper_answer():
    """The professional's key after the whisper: 1 accepts, 2 (or nothing) hears it again (at
    most three times), anything else declines and the next number of the hunt group rings."""
    d = services.current().directory
    key = keyed(1)
    with transaction() as s:
        loaded = store.load(s, arg_id("tr"), d)
        leg_id = arg_id("leg")
        leg = next((leg for leg in loaded.legs if leg.id == leg_id), None) if loaded else None
        if loaded is None or leg is None:
            return twiml(renderer().say(speech.WHISPER_GONE, hangup=True))
        if (
            key != "1"
            and key in ("2", "")
            and leg.whisper_plays < 3
            and loaded.state.phase == "dialling"
        ):
            leg.whisper_plays += 1
            return twiml(_whisper_prompt(loaded.row, leg, s))
        kind = run(s, loaded, wt.Accept(leg.id) if key == "1" else wt.Decline(leg.id))
        if kind == "join":
            return twiml(professional_conference(loaded.row.id))
        # Declined: the next number rings at once (the leg's final status would do the same).
        text = {"declined": speech.WHISPER_DECLINED, "taken": speech.WHISPER_TAKEN}
        return twiml(renderer().say(text.get(kind or "", speech.WHISPER_GONE), hangup=True))


@bp.post("/worker-left")
def worker_left():
    """Said to a professional whose conversation ended with nobody else left (the worker
    left, or after a hand-over the citizen did), before hanging up."""
    who = request.args.get("who")
    text = {"citizen": speech.CITIZEN_LEFT, "professional": speech.PROFESSIONAL_LEFT}.get(
        who or "", speech.WORKER_LEFT
    )
    return twiml(renderer().say(text, hangup=True))


@bp.post("/professional/done")
def professional_done():
    return twiml(renderer().say(hangup=True))
