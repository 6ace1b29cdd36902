"""The worker after the conversation: the * menu, the citizen, the hand-over, the end.

The course is the transfer model's (`flows.warm_transfer`): each handler loads the transfer,
turns the webhook into one of the model's events, stores the outcome in its one transaction
and renders the model's reply.
"""

from __future__ import annotations

from flask import request

from callrouter import jobs, services
from callrouter.flows import routing, speech
from callrouter.flows import transfer as tflow
from callrouter.flows import warm_transfer as wt
from callrouter.ldv import kinds as ldv
from callrouter.ldv import store as ldv_store
from callrouter.privacy import mask
from callrouter.store import legs
from callrouter.store import transfers as store
from callrouter.voice.chain import chain_continues
from callrouter.voice.effects import run
from callrouter.voice.prompts import ask_citizen, menu_prompt, worker_conference
from callrouter.voice.result import ask_result
from callrouter.voice.webhook import arg_id, arg_int, bp, keyed, now, renderer, transaction, twiml


def _reply(s, loaded: store.Loaded, kind: str | None, intro: str = "") -> str:
    """The worker's TwiML for the model's reply."""
    tr = loaded.row
    then = "chain" if loaded.chain is not None else "again"
    if kind == "aborted":
        return menu_prompt(0, intro=speech.TRANSFER_ABORTED)
    if kind == "unanswered":
        return renderer().say(redirect=f"/voice/unanswered?tr={tr.id}")
    if kind == "handover-menu":
        more = speech.HANDOVER_NEXT if chain_continues(s, tr) else ""
        return renderer().ask(f"/voice/handover?tr={tr.id}", speech.HANDOVER_MENU + more, timeout=8)
    if kind == "ended":
        return ask_result(s, tr, then, speech.CONVERSATION_ENDED)
    if kind == "ask-citizen":
        return ask_citizen(tr.id, 0)
    if kind in ("handed-over", "ended-alone"):
        # The hand-over (or the end) happens now; the question comes after it.
        text = speech.HANDED_OVER_NEXT if kind == "handed-over" else speech.ENDED_ALONE_SHORT
        return ask_result(s, tr, "chain" if loaded.chain is not None else "bye", text)
    if kind in ("handed-over-next", "ended-alone-next"):
        text = speech.HANDED_OVER_NEXT if kind == "handed-over-next" else ""
        return ask_result(s, tr, "chain", text)
    if kind == "back":
        return worker_conference(tr.id, intro or speech.RETURNING, start_on_enter=True)
    return renderer().say()


@bp.post("/conference/done")
def conference_done():
    """The worker's Dial ended: they hung up, pressed *, or the conference ended."""
    d = services.current().directory
    hung_up = request.form.get("CallStatus") in tflow.TERMINAL
    with transaction() as s:
        loaded = store.load(s, arg_id("tr"), d)
        if loaded is None:
            return twiml(renderer().say(redirect="/voice/incoming"))
        kind = run(s, loaded, wt.WorkerHungUp() if hung_up else wt.DialEnded())
        return twiml(_reply(s, loaded, kind))


@bp.post("/conversation-ended")
def conversation_ended():
    """The conversation ended while the worker was in the * menu (a REST redirect)."""
    d = services.current().directory
    with transaction() as s:
        loaded = store.load(s, arg_id("tr"), d)
        if loaded is None:
            return twiml(
                renderer().ask(
                    "/voice/again", speech.CONVERSATION_ENDED, speech.NEW_TRANSFER, timeout=6
                )
            )
        return twiml(_reply(s, loaded, run(s, loaded, wt.Return())))


@bp.post("/again")
def again():
    """After an end: 1 (a new transfer) or 2 (another organisation) leads to the menu."""
    if keyed(1) in ("1", "2"):
        return twiml(menu_prompt(0))
    return twiml(renderer().say(speech.GOODBYE, hangup=True))


@bp.post("/handover")
def handover():
    """The * menu's answer: 1 add the citizen, 2 hand over, 3 (or nothing) back, 4 next step."""
    d = services.current().directory
    key = keyed(1)
    with transaction() as s:
        loaded = store.load(s, arg_id("tr"), d)
        if loaded is None:
            return twiml(renderer().say(redirect="/voice/incoming"))
        return twiml(_reply(s, loaded, run(s, loaded, wt.Handover(key))))


@bp.post("/citizen")
def citizen():
    """The citizen's number, keyed in the * menu: ring it into the conference."""
    svc = services.current()
    tries = arg_int("try", hi=3)
    number = routing.normalise_number(keyed(16).rstrip("#"))
    with transaction() as s:
        loaded = store.load(s, arg_id("tr"), svc.directory)
        if loaded is None:
            return twiml(renderer().say(redirect="/voice/incoming"))
        tr_id = loaded.row.id
        if not loaded.state.professional_present:
            return twiml(_reply(s, loaded, run(s, loaded, wt.Return())))
        if number is None:
            if tries + 1 < 3:
                return twiml(ask_citizen(tr_id, tries + 1, speech.CITIZEN_INVALID))
            kind = run(s, loaded, wt.Return())
            return twiml(_reply(s, loaded, kind, speech.CITIZEN_INVALID + " " + speech.RETURNING))
        pseudonym = svc.pseudonyms.pseudonym(number)
        at = now()
        leg_id = legs.add_citizen(s, loaded.row, pseudonym, mask(number), at)
        if leg_id is not None:
            ldv_store.write(
                s,
                [
                    ldv.citizen_dialled(
                        svc.directory.register,
                        call_id=loaded.row.call_id,
                        transfer_id=tr_id,
                        leg_id=leg_id,
                        case_id=loaded.row.case_id,
                        citizen_hmac=pseudonym,
                        org=loaded.row.target_org,
                        at=at,
                    )
                ],
            )
        kind = run(s, loaded, wt.Return())
        body = _reply(s, loaded, kind, speech.CITIZEN_CALLING)
    if leg_id is not None:
        # The citizen's number stays in this process's memory: never in a queue or a table.
        jobs.after_response(jobs.add_citizen, tr_id, leg_id, number)
    return twiml(body)
