"""The menu: organisation, topic or life event, by key or by speech."""

from __future__ import annotations

from flask import request

from callrouter import callbacks, cases, jobs, services
from callrouter.flows import menu as mflow
from callrouter.flows import routing, speech
from callrouter.models import Call, CallbackRequest, Case
from callrouter.voice.chain import chain_next, ensure_case
from callrouter.voice.offer import closed_offer
from callrouter.voice.prompts import event_prompt, menu_prompt, topic_prompt
from callrouter.voice.webhook import (
    arg_id,
    arg_int,
    bp,
    identified_call,
    keyed,
    now,
    renderer,
    set_outcome,
    transaction,
    twiml,
)


def menu_with_pending(caller, pending) -> str:
    """The menu, announcing the caller's pending callback request; `*` cancels it."""
    svc = services.current()
    d = svc.directory
    org, line = d.organisation(pending.target_org), d.line(pending.line_id)
    local_now = now().astimezone(d.tz)
    text = speech.pending_callback(
        org.spoken_name if org else "een organisatie",
        line.spoken_topic if line else "een onderwerp",
        pending.planned_at,
        local_now,
    )
    return renderer().ask(
        f"/voice/menu?try=0&cb={pending.id}",
        speech.welcome(caller),
        text,
        speech=True,
        hints=routing.speech_hints(d),
        num_digits=2,
        timeout=5,
    )


@bp.post("/menu")
def menu():
    svc = services.current()
    with transaction() as s:
        call = identified_call(s)
        if call is None:
            return twiml(renderer().say(redirect="/voice/incoming"))
        tries = arg_int("try", hi=mflow.MENU_TRIES)
        cb_id = arg_id("cb")
        if cb_id and keyed(2).startswith("*"):
            return twiml(_cancel_pending(s, call, cb_id))
        said = request.form.get("SpeechResult", "")[:300]
        return _menu_step(s, call, mflow.choose(svc.directory, keyed(4), said, tries))


def _cancel_pending(s, call: Call, request_id: str) -> str:
    """Cancel the caller's own pending request (one key), then back to the menu."""
    req = s.get(CallbackRequest, request_id)
    own = req is not None and req.worker_hmac and req.worker_hmac == call.from_hmac
    if own and callbacks.cancel_in(s, request_id, by="worker"):
        jobs.after_response(callbacks.forget_job, request_id)
        return menu_prompt(0, intro=speech.CALLBACK_CANCELLED)
    return menu_prompt(0)


@bp.post("/topic")
def topic():
    svc = services.current()
    org = svc.directory.organisation(request.args.get("org"))
    with transaction() as s:
        call = identified_call(s)
        if call is None:
            return twiml(renderer().say(redirect="/voice/incoming"))
        if org is None:
            return twiml(menu_prompt(0))
        tries = arg_int("try", hi=mflow.MENU_TRIES)
        said = request.form.get("SpeechResult", "")[:300]
        step = mflow.choose(svc.directory, keyed(2), said, tries, organisation=org)
        return _menu_step(s, call, step, org)


def _menu_step(s, call: Call, step, org=None):
    if isinstance(step, mflow.AskLifeEvent):
        return twiml(event_prompt(0))
    if isinstance(step, mflow.LifeEventChosen):
        return _event_chosen(s, call, step.event, step.selected_by)
    if isinstance(step, mflow.AskAgain):
        if org is not None:
            return twiml(topic_prompt(org, step.tries))
        return twiml(menu_prompt(step.tries, intro=speech.NOT_UNDERSTOOD, full=step.read_full_list))
    if isinstance(step, mflow.GiveUp):
        set_outcome(s, call.id, "menu-failed", only_if_empty=True)
        return twiml(renderer().say(speech.MENU_GIVE_UP, hangup=True))
    if isinstance(step, mflow.AskTopic):
        return twiml(topic_prompt(step.organisation, 0))
    return _line_chosen(s, call, step.organisation, step.line, step.selected_by, step.term)


@bp.post("/event")
def event():
    """The life-event menu (key 0 in the main menu)."""
    svc = services.current()
    with transaction() as s:
        call = identified_call(s)
        if call is None:
            return twiml(renderer().say(redirect="/voice/incoming"))
        tries = arg_int("try", hi=mflow.MENU_TRIES)
        said = request.form.get("SpeechResult", "")[:300]
        step = mflow.choose_event(svc.directory, keyed(2), said, tries)
        if isinstance(step, mflow.AskAgain):
            return twiml(event_prompt(step.tries, speech.NOT_UNDERSTOOD))
        return _menu_step(s, call, step)


def _event_chosen(s, call: Call, event, selected_by: str):
    """A life event: open a case with its chain of steps, say the route, start step 1."""
    svc = services.current()
    at = now()
    old = s.get(Case, call.case_id) if call.case_id else None
    if old is not None and old.life_event == event.id:
        case = old  # a retried webhook
    else:
        call.case_id = None  # a chain after a single transfer: a case of its own
        case, _ = ensure_case(s, call, at, life_event=event.id)
        cases.start_chain(s, case, event, svc.directory, at)
    call.selected_by, call.menu_done_at = selected_by, call.menu_done_at or at
    intro = speech.life_event_route(svc.directory, event, case.reference)
    return twiml(chain_next(s, call, case.id, intro))


def _line_chosen(s, call: Call, org, line, selected_by: str, term: str | None = None):
    svc = services.current()
    at = now()
    call.target_org, call.line_id, call.selected_by = org.id, line.id, selected_by
    call.selected_term = term[:100] if term else None
    call.menu_done_at = at
    case, opened = ensure_case(s, call, at)
    step = cases.add_step(s, case, line, at)
    withdrawn = cases.withdrawn(s, case.id, org.id)
    avail = mflow.availability(svc.directory, line, at)
    if not avail.open:
        return closed_offer(s, call, case.id, org, line, step.position, avail, at)
    return twiml(
        renderer().ask(
            f"/voice/transfer?line={line.id}&pos={step.position}",
            speech.options(org, line, case.reference if opened else None, withdrawn),
            num_digits=2,
            finish_on_key="#",
            timeout=4,
        )
    )
