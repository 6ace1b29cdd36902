"""The menu: organisation, topic or life event, by key or by speech."""

from __future__ import annotations

from flask import request

from callrouter import callbacks, cases, db, jobs, services
from callrouter import twiml as twiml_doc
from callrouter.flows import menu as mflow
from callrouter.flows import routing, speech
from callrouter.models import Call, CallbackRequest, Case
from callrouter.store import choices
from callrouter.voice.chain import chain_next, ensure_case, number_from_form
from callrouter.voice.offer import closed_offer
from callrouter.voice.prompts import event_prompt, menu_prompt, topic_prompt
from callrouter.voice.webhook import (
    arg_id,
    arg_int,
    bp,
    form_sid,
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
    tries = arg_int("try", hi=mflow.MENU_TRIES)
    cb_id = arg_id("cb")
    cancel = bool(cb_id) and keyed(2).startswith("*")
    said = request.form.get("SpeechResult", "")[:300]
    step = None if cancel else mflow.choose(svc.directory, keyed(4), said, tries)
    if (reply := _open_line_chosen(step)) is not None:
        return reply
    with transaction() as s:
        call = identified_call(s)
        if call is None:
            return twiml(renderer().say(redirect="/voice/incoming"))
        if cancel:
            return twiml(_cancel_pending(s, call, cb_id))
        return _menu_step(s, call, step)


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
    tries = arg_int("try", hi=mflow.MENU_TRIES)
    said = request.form.get("SpeechResult", "")[:300]
    step = mflow.choose(svc.directory, keyed(2), said, tries, organisation=org) if org else None
    if (reply := _open_line_chosen(step)) is not None:
        return reply
    with transaction() as s:
        call = identified_call(s)
        if call is None:
            return twiml(renderer().say(redirect="/voice/incoming"))
        if org is None:
            return twiml(menu_prompt(0))
        return _menu_step(s, call, step, org)


def _open_line_chosen(step):
    """An open line chosen (the menu's most frequent answer): the whole choice in one
    transaction on the hot connection (`store.choices`), the options the worker hears next.
    None for any other step, which takes the ORM path."""
    if not isinstance(step, mflow.LineChosen):
        return None
    svc = services.current()
    at = now()
    if not mflow.availability(svc.directory, step.line, at).open:
        return None
    org, line = step.organisation, step.line
    with db.hot(svc.engine) as conn:
        call = choices.identified_call(conn, form_sid("CallSid"))
        if call is None:
            return twiml(renderer().say(redirect="/voice/incoming"))
        chosen = choices.choose_line(
            conn,
            call,
            org_id=org.id,
            line=line,
            selected_by=step.selected_by,
            term=step.term,
            at=at,
            new_case=lambda reference: cases.case_values(
                reference=reference,
                call_id=call.id,
                caller_org=call.caller_org,
                worker_number=number_from_form(call.identified_by),
                pseudonyms=svc.pseudonyms,
                at=at,
            ),
            register=svc.directory.register,
        )
    return twiml(_options(org, line, chosen.position, chosen.reference, chosen.withdrawn))


def _options(org, line, position: int, reference: str | None, withdrawn: bool) -> str:
    """The transfer's options (urgency, consent) once a line is chosen: built by the SDK
    once per line and shape, then only the step's position and the case's reference change."""
    svc = services.current()
    key = ("options", line.id, withdrawn, reference is not None)
    prepared = svc.rendered.get(key)
    if prepared is None:
        prepared = twiml_doc.prepare(
            renderer().ask(
                f"/voice/transfer?line={line.id}&pos={twiml_doc.slot('pos')}",
                speech.options_with(
                    org, line, twiml_doc.slot("opened") if reference else "", withdrawn
                ),
                num_digits=2,
                finish_on_key="#",
                timeout=4,
            )
        )
        if len(svc.rendered) < 10_000:
            svc.rendered[key] = prepared
    opened = speech.case_opened(reference) if reference else ""
    return twiml_doc.fill(prepared, {"pos": str(position), "opened": opened})


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
    return twiml(_options(org, line, step.position, case.reference if opened else None, withdrawn))
