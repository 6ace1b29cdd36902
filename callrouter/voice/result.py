"""The worker's verdict after a conversation: one question, one key."""

from __future__ import annotations

from flask import request

from callrouter import services
from callrouter.flows import routing, speech
from callrouter.models import Call, Transfer
from callrouter.store import transfers as store
from callrouter.voice.chain import chain_next, chain_of
from callrouter.voice.webhook import arg_id, bp, keyed, now, renderer, transaction, twiml

RESULTS = {"1": "resolved", "2": "partial", "3": "unresolved", "4": "wrong-line"}


def ask_result(s, tr: Transfer, then: str, intro: str = "") -> str:
    """One question after a conversation, one key, a short timeout; then `then` goes on
    (chain: the chain's next step; again: a new transfer; bye: the end of the call)."""
    if tr.direction is not None or tr.accepted_at is None:
        return go_on(s, tr, then, intro)
    return renderer().ask(
        f"/voice/result?tr={tr.id}&then={then}", intro, speech.RESULT_QUESTION, timeout=4
    )


def then_arg() -> str:
    value = request.args.get("then", "")
    return value if value in ("chain", "again", "bye") else "again"


def go_on(s, tr: Transfer | None, then: str, intro: str = "") -> str:
    if then == "chain" and tr is not None:
        case = chain_of(s, tr)
        call = s.get(Call, tr.call_id) if case is not None else None
        if case is not None and call is not None:
            return chain_next(s, call, case.id, intro)
    if then == "bye":
        return renderer().say(intro, speech.GOODBYE, hangup=True)
    return renderer().ask("/voice/again", intro, speech.NEW_TRANSFER, timeout=6)


@bp.post("/result")
def result():
    tr_id, then = arg_id("tr"), then_arg()
    if tr_id is None:
        return twiml(renderer().say(speech.GOODBYE, hangup=True))
    outcome = RESULTS.get(keyed(1), "unknown")
    with transaction() as s:
        store.set_result(s, tr_id, outcome, now())
        if outcome == "wrong-line":
            d = services.current().directory
            return twiml(
                renderer().ask(
                    f"/voice/result/right?tr={tr_id}&then={then}",
                    speech.RIGHT_ORGANISATION,
                    speech=True,
                    hints=routing.speech_hints(d),
                    num_digits=2,
                    finish_on_key="#",
                    timeout=5,
                )
            )
        thanks = speech.RESULT_THANKS if outcome != "unknown" else ""
        return twiml(go_on(s, s.get(Transfer, tr_id), then, thanks))


@bp.post("/result/right")
def result_right():
    """After "verkeerde lijn": where it should have gone, keyed or said; # or silence skips."""
    d = services.current().directory
    tr_id, then = arg_id("tr"), then_arg()
    if tr_id is None:
        return twiml(renderer().say(speech.GOODBYE, hangup=True))
    digits = keyed(2).rstrip("#")
    said = request.form.get("SpeechResult", "")[:300]
    choice = (
        routing.resolve_digits(d, digits)
        if digits
        else routing.resolve_speech(d, said)
        if said
        else None
    )
    with transaction() as s:
        if choice is not None:
            store.set_result(
                s,
                tr_id,
                "wrong-line",
                now(),
                right_org=choice.organisation.id,
                right_line=choice.line.id if choice.line else None,
            )
        return twiml(go_on(s, s.get(Transfer, tr_id), then, speech.RESULT_THANKS))
