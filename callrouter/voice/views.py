"""Voice webhooks: thin handlers that verify, parse, decide (flows), record and render TwiML.

Every URL here is reached only through URLs that the service itself hands to Twilio, built
from `PUBLIC_BASE_URL`. Each handler commits its log rows before it dispatches side effects, and
no REST request runs before the TwiML is answered.
"""

from __future__ import annotations

import logging
import re
import uuid
from datetime import UTC, datetime, timedelta

from flask import Blueprint, Response, abort, request
from redis.exceptions import RedisError
from sqlalchemy import Integer, bindparam, case, func, literal, literal_column, or_, select, update
from werkzeug.exceptions import HTTPException

from callrouter import callbacks, cases, clock, db, jobs, services, signatures
from callrouter.flows import callback as cflow
from callrouter.flows import menu as mflow
from callrouter.flows import reference as refs
from callrouter.flows import routing, speech
from callrouter.flows import transfer as tflow
from callrouter.models import TS as UTC_TS
from callrouter.models import Call, CallbackRequest, Case, CaseStep, Event, Leg, Transfer
from callrouter.privacy import loggable_sid, mask
from callrouter.twiml import Renderer

log = logging.getLogger(__name__)
bp = Blueprint("voice", __name__, url_prefix="/voice")

PIN_TRIES = 3
LOCK_SECONDS = 15 * 60
_ID = re.compile(r"^[0-9a-f]{32}$")
_SAFE = re.compile(r"[^0-9A-Za-z_.:-]")
_DIGIT_RUN = re.compile(r"[0-9]{6,}")


def now() -> datetime:
    return clock.now()


# --------------------------------------------------------------------------- plumbing


@bp.before_request
def verify_signature():
    svc = services.current()
    s = svc.settings
    tokens = [s.twilio_auth_token, s.twilio_auth_token_secondary or ""]
    if not signatures.is_valid(request, s.public_base_url, tokens):
        log.warning("rejected %s %s: bad or missing X-Twilio-Signature", request.method,
                    request.path)
        abort(403)
    return None


@bp.errorhandler(Exception)
def voice_error(exc):
    if isinstance(exc, HTTPException):
        return exc
    log.exception("voice handler %s failed for call %s", request.path,
                  loggable_sid(_sid("CallSid")))
    return twiml(_r().ask("/voice/retry", speech.ERROR, timeout=6))


def unrouted(exc: HTTPException):
    """App-level 404/405 handler: under /voice/ (no route, or a method the route lacks) an
    unsigned request is refused like any other (403) and a signed one gets calm Dutch TwiML
    with a way forward instead of an HTML error page (which Twilio reads as an application
    error); elsewhere Flask's own answer."""
    if not request.path.startswith(bp.url_prefix + "/"):
        return exc
    s = services.current().settings
    if not signatures.is_valid(request, s.public_base_url,
                               [s.twilio_auth_token, s.twilio_auth_token_secondary or ""]):
        return Response("", status=403)
    log.warning("no voice route for %s %s (call %s)", request.method, request.path[:80],
                loggable_sid(_sid("CallSid")))
    return twiml(_r().ask("/voice/retry", speech.ERROR, timeout=6))


@bp.after_request
def deferred(response):
    return jobs.run_after_response(response)


_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response />'


def twiml(body: str) -> Response:
    return Response(body, mimetype="text/xml")


def _r() -> Renderer:
    svc = services.current()
    return Renderer(svc.url, svc.directory.language, svc.directory.voice)


def _sid(name: str) -> str:
    """A Twilio SID from the form, reduced to safe characters (it goes into URLs)."""
    return _SAFE.sub("", request.form.get(name, ""))[:64]



def _digits(limit: int = 20) -> str:
    return "".join(ch for ch in request.form.get("Digits", "") if ch in "0123456789*#")[:limit]


def _arg_id(name: str) -> str | None:
    value = request.args.get(name, "")
    return value if _ID.match(value) else None


def _arg_int(name: str, default: int = 0, hi: int = 10) -> int:
    value = request.args.get(name, "")
    return min(int(value), hi) if value.isdigit() else default


def _record_event(s, source: str, sid: str, event: str, sequence: int, **ids) -> bool:
    """Keep a webhook once; False when it was seen before (a duplicate delivery)."""
    return db.insert_ignore(s, Event.__table__, dict(
        source=source, sid=sid or "-", event=event[:96], sequence=sequence, received_at=now(),
        detail=_detail(), call_id=ids.get("call_id"), transfer_id=ids.get("transfer_id")))


# Webhook fields worth keeping with an event; none of them holds a phone number or a name.
_DETAIL_FIELDS = ("CallStatus", "CallDuration", "Duration", "StatusCallbackEvent", "Timestamp",
                  "ConferenceSid", "SequenceNumber", "ErrorCode", "AnsweredBy", "Reason",
                  "DialCallStatus", "Hold", "Muted", "ParticipantLabel")


def _detail() -> dict:
    """The fields kept with an event. Twilio never puts a number in them, but a forged
    request could: runs of six digits or more are cut (a SID, which may have them, is kept
    only when well formed)."""
    form = request.form  # once: each use of the proxy is a context lookup
    out = {k: _DIGIT_RUN.sub("#", v[:64]) for k in _DETAIL_FIELDS
           if (v := form.get(k)) is not None}
    if "ConferenceSid" in out:
        out["ConferenceSid"] = loggable_sid(form["ConferenceSid"])
    return out


def _sequence() -> int:
    value = request.form.get("SequenceNumber", "")
    return int(value) if value.isdigit() and len(value) < 10 else -1


def _call(s) -> Call | None:
    sid = _sid("CallSid")
    return jobs.call_of(s, sid) if sid else None


# --------------------------------------------------------------------------- entry points


@bp.post("/incoming")
def incoming():
    svc = services.current()
    sid = _sid("CallSid")
    if not sid:
        return twiml(_r().say(speech.UNAVAILABLE, hangup=True))
    raw_from = request.form.get("From", "")[:64]
    caller = routing.identify(svc.directory, raw_from)
    staff = routing.identify_staff(svc.directory, raw_from) if caller is None else None
    if staff is not None:
        return _staff_incoming(sid, raw_from, staff)
    number = raw_from if caller is not None else routing.normalise_number(raw_from)
    # A withheld or invalid number ("anonymous") gets a pseudonym of its own call, so that
    # wrong PINs of one such caller never lock out every other one.
    from_hmac = svc.pseudonyms.pseudonym(number or f"call:{sid}")
    pending = None
    call_id = uuid.uuid4().hex
    row = dict(id=call_id, call_sid=sid, received_at=now(), from_hmac=from_hmac,
               from_masked=mask(number) if number else "onbekend", status="in-progress",
               caller_org=caller.id if caller else None,
               identified_by="number" if caller else None, urgent=False, consent=False)
    # The hot path of every call: one insert on the driver's connection, no ORM object, and
    # the row ready before the transaction (on SQLite, the write gate) begins.
    with db.hot(svc.engine) as s:
        # A retried webhook finds the call it made before (the insert does nothing).
        inserted = db.insert_ignore(s, Call.__table__, row)
        if not inserted:
            call_id = db.run_once(s, select(Call.id).where(Call.call_sid == sid)).scalar()
    if caller is not None:
        pending = callbacks.pending_for_worker(from_hmac, svc.engine)
    if caller is not None:
        if pending is not None:
            return twiml(_menu_with_pending(caller, pending))
        return twiml(_menu_prompt(0, intro=speech.welcome(caller)))
    try:
        if _locked(from_hmac):
            _set_outcome(call_id, "locked")
            return twiml(_r().say(speech.LOCKED, hangup=True))
    except RedisError:
        log.warning("call %s: lock store unavailable; PIN entry refused", loggable_sid(sid))
        return twiml(_r().say(speech.UNAVAILABLE, hangup=True))
    return twiml(_ask_code(0))


def _staff_incoming(sid: str, number: str, org):
    """A professional of `org` calls the internal number: the way back to a case's worker."""
    svc = services.current()
    with svc.engine.begin() as s:
        db.insert_ignore(s, Call.__table__, dict(
            id=uuid.uuid4().hex, call_sid=sid, received_at=now(),
            from_hmac=svc.pseudonyms.pseudonym(number), from_masked=mask(number),
            status="in-progress", caller_org=org.id, identified_by="staff", urgent=False,
            consent=False))
    return twiml(_ask_reference(org, 0))


def _ask_reference(org, tries: int, intro: str = "") -> str:
    return _r().ask(f"/voice/wayback?org={org.id}&try={tries}", intro,
                    speech.staff_welcome(org) if not intro else "",
                    num_digits=refs.LENGTH, finish_on_key="#", timeout=10)


@bp.post("/wayback")
def wayback():
    """A professional keyed a case reference: connect them to the worker who opened it."""
    svc = services.current()
    org = svc.directory.organisation(request.args.get("org"))
    tries = _arg_int("try", hi=3)
    with svc.sessions() as s:
        call = _call(s)
    if org is None or call is None or call.identified_by != "staff" or call.caller_org != org.id:
        return twiml(_r().say(redirect="/voice/incoming"))
    ref = _digits(10).rstrip("#")
    if not refs.is_valid(ref):
        if tries + 1 >= 3:
            return twiml(_r().say(speech.UNKNOWN_CASE, hangup=True))
        return twiml(_ask_reference(org, tries + 1, speech.REFERENCE_INVALID))
    at = now()
    with svc.sessions.begin() as s:
        case = cases.find_for_staff(s, ref, org.id)
        if case is None or not case.worker_number_enc:
            log.info("call %s: way back to an unknown case", loggable_sid(call.call_sid))
            found = False
        else:
            found = True
            line_id = cases.line_for_org(s, case.id, org.id)
            row = s.get(Call, call.id)
            row.case_id, row.target_org, row.line_id = case.id, case.caller_org, line_id
            row.menu_done_at = at
            recent = s.scalar(select(Transfer).where(
                Transfer.call_id == call.id, Transfer.state.in_(("dialling", "connected"))))
            tr = recent or Transfer(
                id=uuid.uuid4().hex, call_id=call.id, caller_org=org.id,
                target_org=case.caller_org or "-", line_id=line_id or "-", urgent=False,
                consent=False, state="dialling", worker_call_sid=call.call_sid, created_at=at,
                case_id=case.id, direction="to-worker")
            if recent is None:
                s.add(tr)
            tr_id = tr.id
    if not found:
        return twiml(_r().say(speech.UNKNOWN_CASE, hangup=True))
    if recent is None:
        jobs.dispatch(jobs.place_leg, tr_id, 0, job_id=f"leg-{tr_id}-0")
        jobs.after_response(jobs.schedule_watchdog, tr_id, jobs.WAY_BACK_DEADLINE)
    return twiml(_worker_conference(tr_id, speech.CALLING_WORKER, start_on_enter=False))


@bp.post("/fallback")
def fallback():
    """Twilio's Fallback URL: calm Dutch, needs neither the database nor Redis."""
    svc = services.current()
    failed_url = request.form.get("ErrorUrl", "")
    org = None
    m = re.search(r"[?&]org=([a-z0-9_-]+)", failed_url)
    if m:
        org = svc.directory.organisation(m.group(1))
    m = re.search(r"[?&]line=([a-z0-9_-]+)", failed_url)
    if org is None and m and (line := svc.directory.line(m.group(1))):
        org = svc.directory.organisation(line.organisation_id)
    code = request.form.get("ErrorCode", "")
    log.warning("fallback for call %s after error %s", loggable_sid(_sid("CallSid")),
                code if code.isdigit() and len(code) <= 5 else "(none)")
    return twiml(_r().say(speech.fallback(org), hangup=True))


@bp.post("/retry")
def retry():
    """After an error: 1 tries the menu again; anything else ends the call kindly."""
    if _digits() == "1":
        with services.current().sessions() as s:
            call = _call(s)
            if call is not None and call.caller_org:
                return twiml(_menu_prompt(0))
        return twiml(_r().say(redirect="/voice/incoming"))
    return twiml(_r().say(speech.GOODBYE, hangup=True))


# --------------------------------------------------------------------------- intake by PIN


def _lock_keys(from_hmac: str | None) -> tuple[str, str]:
    key = from_hmac or "unknown"
    return f"callrouter:pin-lock:{key}", f"callrouter:pin-fail:{key}"


def _locked(from_hmac: str | None) -> bool:
    lock, _ = _lock_keys(from_hmac)
    return bool(services.current().redis.exists(lock))


def _ask_code(tries: int, intro: str | None = None) -> str:
    return _r().ask(f"/voice/intake/code?try={tries}", intro or "", speech.ASK_CODE if not intro
                    else "Toets de code van uw organisatie, gevolgd door een hekje.",
                    num_digits=None, finish_on_key="#", timeout=8)


@bp.post("/intake/code")
def intake_code():
    tries = _arg_int("try", hi=PIN_TRIES)
    code = _digits().rstrip("#")
    if not code.isdigit():
        return _pin_failed(tries)
    return twiml(_r().ask(f"/voice/intake/pin?try={tries}&code={code[:8]}", speech.ASK_PIN,
                          num_digits=None, finish_on_key="#", timeout=8))


@bp.post("/intake/pin")
def intake_pin():
    svc = services.current()
    tries = _arg_int("try", hi=PIN_TRIES)
    code = "".join(ch for ch in request.args.get("code", "") if ch.isdigit())[:8]
    pin = _digits().rstrip("#")
    with svc.sessions() as s:
        call = _call(s)
        from_hmac = call.from_hmac if call else None
    try:
        if _locked(from_hmac):
            return twiml(_r().say(speech.LOCKED, hangup=True))
    except RedisError:
        return twiml(_r().say(speech.UNAVAILABLE, hangup=True))
    caller = routing.check_pin(svc.directory, code, pin) if code and pin.isdigit() else None
    if caller is None or call is None:
        return _pin_failed(tries, from_hmac)
    with svc.sessions.begin() as s:
        row = s.get(Call, call.id)
        row.caller_org, row.identified_by = caller.id, "pin"
    try:
        svc.redis.delete(_lock_keys(from_hmac)[1])
    except RedisError:
        pass
    return twiml(_menu_prompt(0, intro=f"Dank u wel. U belt namens {caller.spoken_name}."))


def _pin_failed(tries: int, from_hmac: str | None = None):
    svc = services.current()
    if from_hmac is None:
        with svc.sessions() as s:
            call = _call(s)
            from_hmac = call.from_hmac if call else None
    lock, fails = _lock_keys(from_hmac)
    try:
        pipe = svc.redis.pipeline()
        pipe.incr(fails)
        pipe.expire(fails, LOCK_SECONDS)
        failed_total = pipe.execute()[0]
        if tries + 1 >= PIN_TRIES or failed_total >= PIN_TRIES:
            svc.redis.set(lock, "1", ex=LOCK_SECONDS)
            svc.redis.delete(fails)
            with svc.sessions() as s:
                call = _call(s)
            if call is not None:
                _set_outcome(call.id, "locked")
            log.info("call %s: PIN entry locked for 15 minutes", loggable_sid(_sid("CallSid")))
            return twiml(_r().say(speech.LOCKED, hangup=True))
    except RedisError:
        return twiml(_r().say(speech.UNAVAILABLE, hangup=True))
    return twiml(_ask_code(tries + 1, intro=speech.WRONG_PIN))


def _set_outcome(call_id: str, outcome: str, only_if_empty: bool = False) -> None:
    with services.current().sessions.begin() as s:
        call = s.get(Call, call_id)
        if call is not None and not (only_if_empty and call.outcome):
            call.outcome = outcome


# --------------------------------------------------------------------------- the menu


def _menu_prompt(tries: int, intro: str | None = None, full: bool = False) -> str:
    svc = services.current()
    key = ("menu", tries, intro, full)
    cached = svc.rendered.get(key)
    if cached is None:  # the directory is fixed for the process's life, so is this TwiML
        body = speech.menu_full(svc.directory) if full else speech.MENU_SHORT
        cached = _r().ask(f"/voice/menu?try={tries}", intro or "", body, speech=True,
                          hints=routing.speech_hints(svc.directory), num_digits=2, timeout=5)
        if len(svc.rendered) < 10_000:
            svc.rendered[key] = cached
    return cached


def _menu_with_pending(caller, pending) -> str:
    """The menu, announcing the caller's pending callback request; `*` cancels it."""
    svc = services.current()
    d = svc.directory
    org, line = d.organisation(pending.target_org), d.line(pending.line_id)
    local_now = now().astimezone(d.tz)
    text = speech.pending_callback(org.spoken_name if org else "een organisatie",
                                   line.spoken_topic if line else "een onderwerp",
                                   pending.planned_at, local_now)
    return _r().ask(f"/voice/menu?try=0&cb={pending.id}", speech.welcome(caller), text,
                    speech=True, hints=routing.speech_hints(d), num_digits=2, timeout=5)


def _identified_call(s) -> Call | None:
    """The call of a recognised front-desk worker (not a professional on the way back)."""
    call = _call(s)
    if call is None or not call.caller_org or call.identified_by == "staff":
        return None
    return call


@bp.post("/menu")
def menu():
    svc = services.current()
    with svc.sessions() as s:
        call = _identified_call(s)
    if call is None:
        return twiml(_r().say(redirect="/voice/incoming"))
    tries = _arg_int("try", hi=mflow.MENU_TRIES)
    cb_id = _arg_id("cb")
    if cb_id and _digits(2).startswith("*"):
        return twiml(_cancel_pending(call, cb_id))
    step = mflow.choose(svc.directory, _digits(4), request.form.get("SpeechResult", "")[:300],
                        tries)
    return _menu_step(call, step)


def _cancel_pending(call: Call, request_id: str) -> str:
    """Cancel the caller's own pending request (one key), then back to the menu."""
    svc = services.current()
    with svc.sessions() as s:
        req = s.get(CallbackRequest, request_id)
        own = req is not None and req.worker_hmac and req.worker_hmac == call.from_hmac
    if own and callbacks.cancel(request_id, by="worker"):
        return _menu_prompt(0, intro=speech.CALLBACK_CANCELLED)
    return _menu_prompt(0)


@bp.post("/topic")
def topic():
    svc = services.current()
    org = svc.directory.organisation(request.args.get("org"))
    with svc.sessions() as s:
        call = _identified_call(s)
    if call is None:
        return twiml(_r().say(redirect="/voice/incoming"))
    if org is None:
        return twiml(_menu_prompt(0))
    tries = _arg_int("try", hi=mflow.MENU_TRIES)
    step = mflow.choose(svc.directory, _digits(2), request.form.get("SpeechResult", "")[:300],
                        tries, organisation=org)
    return _menu_step(call, step, org)


def _topic_prompt(org, tries: int) -> str:
    svc = services.current()
    return _r().ask(f"/voice/topic?org={org.id}&try={tries}",
                    speech.NOT_UNDERSTOOD if tries else "", speech.topic_menu(org), speech=True,
                    hints=routing.speech_hints(svc.directory, org), num_digits=1, timeout=5)


def _menu_step(call: Call, step, org=None):
    if isinstance(step, mflow.AskLifeEvent):
        return twiml(_event_prompt(0))
    if isinstance(step, mflow.LifeEventChosen):
        return _event_chosen(call, step.event, step.selected_by)
    if isinstance(step, mflow.AskAgain):
        if org is not None:
            return twiml(_topic_prompt(org, step.tries))
        return twiml(_menu_prompt(step.tries, intro=speech.NOT_UNDERSTOOD,
                                  full=step.read_full_list))
    if isinstance(step, mflow.GiveUp):
        _set_outcome(call.id, "menu-failed", only_if_empty=True)
        return twiml(_r().say(speech.MENU_GIVE_UP, hangup=True))
    if isinstance(step, mflow.AskTopic):
        return twiml(_topic_prompt(step.organisation, 0))
    return _line_chosen(call, step.organisation, step.line, step.selected_by, step.term)


def _event_prompt(tries: int, intro: str = "") -> str:
    svc = services.current()
    return _r().ask(f"/voice/event?try={tries}", intro, speech.life_event_menu(svc.directory),
                    speech=True, hints=routing.speech_hints(svc.directory), num_digits=1,
                    timeout=5)


@bp.post("/event")
def event():
    """The life-event menu (key 0 in the main menu)."""
    svc = services.current()
    with svc.sessions() as s:
        call = _identified_call(s)
    if call is None:
        return twiml(_r().say(redirect="/voice/incoming"))
    tries = _arg_int("try", hi=mflow.MENU_TRIES)
    step = mflow.choose_event(svc.directory, _digits(2),
                              request.form.get("SpeechResult", "")[:300], tries)
    if isinstance(step, mflow.AskAgain):
        return twiml(_event_prompt(step.tries, speech.NOT_UNDERSTOOD))
    return _menu_step(call, step)


def _worker_number() -> str | None:
    """The worker's own number from the webhook (every webhook of the call carries it)."""
    return routing.normalise_number(request.form.get("From", "")[:64])


def _ensure_case(s, row: Call, at, life_event: str | None = None) -> tuple[Case, bool]:
    """The call's case, opened now if it has none; (case, opened now)."""
    if row.case_id:
        case = s.get(Case, row.case_id)
        if case is not None:
            return case, False
    svc = services.current()
    case = cases.open_case(s, call_id=row.id, caller_org=row.caller_org,
                           worker_number=_worker_number(), pseudonyms=svc.pseudonyms, at=at,
                           life_event=life_event)
    row.case_id = case.id
    return case, True


def _event_chosen(call: Call, event, selected_by: str):
    """A life event: open a case with its chain of steps, say the route, start step 1."""
    svc = services.current()
    at = now()
    with svc.sessions.begin() as s:
        row = s.get(Call, call.id)
        if row.case_id and (old := s.get(Case, row.case_id)) is not None \
                and old.life_event == event.id:
            case = old  # a retried webhook
        else:
            if row.case_id:  # a chain after a single transfer: a case of its own
                row.case_id = None
            case, _ = _ensure_case(s, row, at, life_event=event.id)
            cases.start_chain(s, case, event, svc.directory, at)
        row.selected_by, row.menu_done_at = selected_by, row.menu_done_at or at
        case_id, ref = case.id, case.reference
    intro = speech.life_event_route(svc.directory, event, ref)
    return twiml(_chain_next(call, case_id, intro))


def _line_chosen(call: Call, org, line, selected_by: str, term: str | None = None):
    svc = services.current()
    at = now()
    with svc.sessions.begin() as s:
        row = s.get(Call, call.id)
        row.target_org, row.line_id, row.selected_by = org.id, line.id, selected_by
        row.selected_term = term[:100] if term else None
        row.menu_done_at = at
        case, opened = _ensure_case(s, row, at)
        step = cases.add_step(s, case, line, at)
        pos, ref, case_id = step.position, case.reference, case.id
        withdrawn = cases.withdrawn(s, case.id, org.id)
    avail = mflow.availability(svc.directory, line, at)
    if not avail.open:
        return _closed_offer(call, case_id, org, line, pos, avail, at)
    return twiml(_r().ask(f"/voice/transfer?line={line.id}&pos={pos}",
                          speech.options(org, line, ref if opened else None, withdrawn),
                          num_digits=2, finish_on_key="#", timeout=4))


def _closed_offer(call: Call, case_id: str | None, org, line, pos: int | None, avail, at):
    svc = services.current()
    _set_outcome(call.id, "closed")
    _step_state(case_id, pos, "closed")
    local_now = at.astimezone(svc.directory.tz)
    text = speech.closed(org, line, avail.opens_at, local_now, avail.reason)
    if not _callback_possible(line, call.caller_org, at, "closed"):
        return twiml(_r().ask("/voice/again", text, speech.CALLBACK_NEVER, timeout=6))
    return twiml(_r().ask(f"/voice/callback?line={line.id}&reason=closed&pos={pos}",
                          text, speech.CALLBACK_OFFER, timeout=6))


def _callback_possible(line, caller_org: str | None, at, reason: str) -> bool:
    """Whether a callback could ever be planned: the line and the caller's working hours
    meet some time soon. Offering one that cannot happen would only disappoint."""
    d = services.current().directory
    return cflow.first_plan(d, line, d.caller(caller_org), at, reason) is not None


def _step_state(case_id: str | None, pos: int | None, state: str, **values) -> None:
    if case_id is None or pos is None:
        return
    with services.current().sessions.begin() as s:
        step = cases.step_at(s, case_id, pos)
        if step is not None:
            cases.set_step(s, step.id, state, now(), **values)


def _arg_pos() -> int | None:
    value = request.args.get("pos", "")
    return int(value) if value.isdigit() and len(value) < 4 else None


def _chain_next(call: Call, case_id: str, intro: str = "") -> str:
    """The next pending step of the case's chain, or the end of the chain. A step whose line
    is closed becomes a callback request on the case, and the chain moves on."""
    svc = services.current()
    d = svc.directory
    texts = [intro] if intro else []
    for _ in range(20):  # bounded: a chain has few steps
        with svc.sessions() as s:
            step = cases.next_pending(s, case_id)
            case = s.get(Case, case_id)
            total = len(cases.steps_of(s, case_id))
            withdrawn = step is not None and cases.withdrawn(s, case_id, step.target_org)
        if step is None:
            texts.append(speech.CHAIN_DONE)
            return _r().ask("/voice/again", " ".join(texts), speech.NEW_TRANSFER, timeout=6)
        line = d.line(step.line_id)
        org = d.organisation(step.target_org)
        at = now()
        avail = mflow.availability(d, line, at) if line else None
        if line is None or org is None:
            _step_state(case_id, step.position, "skipped")
            continue
        if not avail.open:
            state, planned, req_id = _case_callback(call, case, line, "closed", None, at)
            _step_state(case_id, step.position, "closed", callback_id=req_id)
            texts.append(speech.step_unreachable(step.position, org, True,
                                                 planned if state == "pending" else None,
                                                 at.astimezone(d.tz)))
            continue
        texts.append(speech.step_options(step.position, total, org, line, step.reason,
                                         withdrawn))
        return _r().ask(f"/voice/transfer?line={line.id}&pos={step.position}", *texts,
                        num_digits=2, finish_on_key="#", timeout=5)
    return _r().say(speech.GOODBYE, hangup=True)


def _case_callback(call: Call, case: Case | None, line, reason: str, transfer_id: str | None,
                   at, worker_number: str | None = None, caller_org: str | None = None):
    """A callback request for `line` on the case (the callbacks' machinery); returns
    (state, planned time, request id)."""
    svc = services.current()
    number = worker_number if worker_number is not None else _worker_number()
    with svc.sessions.begin() as s:
        row = s.get(Call, call.id)
        req, updated = callbacks.create(
            s, call_id=call.id, transfer_id=transfer_id,
            caller_org=caller_org if caller_org is not None else call.caller_org,
            line_id=line.id, urgent=call.urgent, consent=call.consent, reason=reason,
            worker_number=number, at=at, case_id=case.id if case is not None else None)
        if row.outcome in (None, "abandoned", "closed", "no-answer", "busy", "declined",
                           "failed"):
            row.outcome = "callback-requested"
        request_id, planned, state = req.id, req.planned_at, req.state
    if state == "pending" and not updated:
        jobs.after_response(callbacks.schedule, request_id)
        jobs.dispatch(callbacks.send_confirmation, request_id, queue="default",
                      job_id=f"cb-sms-{request_id}")
    return state, planned, request_id


# --------------------------------------------------------------------------- the warm transfer


def _worker_conference(tr_id: str, intro: str | None, start_on_enter: bool) -> str:
    return _r().conference(
        tr_id, intro=intro, action=f"/voice/conference/done?tr={tr_id}",
        wait_url=f"/voice/wait?tr={tr_id}", status_callback=f"/voice/status/conference?tr={tr_id}",
        start_on_enter=start_on_enter, end_on_exit=False, hangup_on_star=True, label="worker")


@bp.post("/transfer")
def transfer():
    svc = services.current()
    line = svc.directory.line(request.args.get("line"))
    pos = _arg_pos()
    with svc.sessions() as s:
        call = _identified_call(s)
        case = s.get(Case, call.case_id) if call is not None and call.case_id else None
        step = cases.step_at(s, case.id, pos) if case is not None and pos is not None else None
    if call is None:
        return twiml(_r().say(redirect="/voice/incoming"))
    if line is None:
        return twiml(_menu_prompt(0))
    org = svc.directory.organisation(line.organisation_id)
    opts = mflow.parse_options(_digits(4))
    chain = case is not None and case.life_event is not None and step is not None
    at = now()
    if chain and opts.stop:
        with svc.sessions.begin() as s:
            cases.set_step(s, step.id, "stopped", at, only_from=("pending",))
            cases.stop_rest(s, case.id, at)
        return twiml(_r().ask("/voice/again", speech.CHAIN_STOPPED, speech.NEW_TRANSFER,
                              timeout=6))
    if chain and opts.skip:
        _step_state(case.id, pos, "skipped")
        return twiml(_chain_next(call, case.id, speech.step_skipped(pos)))
    if opts.repeat and case is not None:
        if chain:
            _step_state(case.id, pos, "pending")
            return twiml(_chain_next(call, case.id, speech.case_opened(case.reference)))
        return twiml(_r().ask(f"/voice/transfer?line={line.id}&pos={pos}",
                              speech.options(org, line, case.reference), num_digits=2,
                              finish_on_key="#", timeout=4))
    avail = mflow.availability(svc.directory, line, at)
    if not avail.open:
        if chain:
            return twiml(_chain_next(call, case.id))
        return _closed_offer(call, case.id if case else None, org, line, pos, avail, at)
    with svc.sessions.begin() as s:
        row = s.get(Call, call.id)
        withdrawn = case is not None and cases.withdrawn(s, case.id, org.id)
        level = mflow.capped_consent(opts.consent_level, withdrawn)
        row.urgent, row.consent = opts.urgent, level != "none"
        # A webhook retried by Twilio must not start a second transfer.
        recent = s.scalar(select(Transfer).where(
            Transfer.call_id == call.id, Transfer.line_id == line.id,
            Transfer.state.in_(("dialling", "connected")),
            Transfer.created_at >= at - timedelta(seconds=30)))
        tr = recent or Transfer(
            id=uuid.uuid4().hex, call_id=call.id, caller_org=call.caller_org, target_org=org.id,
            line_id=line.id, urgent=opts.urgent, consent=level != "none", state="dialling",
            worker_call_sid=call.call_sid, created_at=at,
            case_id=case.id if case is not None else None, step=pos, consent_level=level,
            selected_term=call.selected_term if call.line_id == line.id else None)
        if recent is None:
            s.add(tr)
            if case is not None:
                cases.record_consent(s, case, org.id, level, by_org=call.caller_org,
                                     by_hmac=call.from_hmac, transfer_id=tr.id, at=at)
                if step is not None:
                    cases.set_step(s, step.id, "ringing", at, transfer_id=tr.id)
        tr_id = tr.id
    if recent is None:
        jobs.dispatch(jobs.place_leg, tr_id, 0, job_id=f"leg-{tr_id}-0")
        jobs.after_response(jobs.schedule_watchdog, tr_id,
                            jobs.watchdog_deadline(line, opts.urgent))
    return twiml(_worker_conference(tr_id, speech.connecting(org, opts.urgent, level),
                                    start_on_enter=False))


@bp.route("/wait", methods=["GET", "POST"])
def wait():
    return twiml(_r().hold_loop(speech.HOLD, "/voice/wait"))


@bp.route("/hold", methods=["GET", "POST"])
def hold():
    return twiml(_r().hold_loop(speech.PROFESSIONAL_HOLD, "/voice/hold"))


def _transfer_and_leg(s):
    tr_id, leg_id = _arg_id("tr"), _arg_id("leg")
    tr = s.get(Transfer, tr_id) if tr_id else None
    leg = s.get(Leg, leg_id) if leg_id else None
    if tr is None or leg is None or leg.transfer_id != tr.id:
        return None, None
    return tr, leg


def _whisper_prompt(tr: Transfer, leg: Leg, s=None) -> str:
    svc = services.current()
    d = svc.directory
    case = s.get(Case, tr.case_id) if s is not None and tr.case_id else None
    if tr.direction == "to-worker":
        text = speech.worker_whisper(d.organisation(tr.caller_org),
                                     case.reference if case else "")
        return _r().ask(f"/voice/whisper/answer?tr={tr.id}&leg={leg.id}", text, timeout=8)
    caller = d.caller(tr.caller_org)
    org, line = d.organisation(tr.target_org), d.line(tr.line_id)
    step = None
    if case is not None and case.life_event and tr.step is not None:
        event = d.life_event(case.life_event)
        row = cases.step_at(s, case.id, tr.step)
        total = len(cases.steps_of(s, case.id))
        step = (tr.step, total, event.spoken_name if event else case.life_event,
                row.reason if row is not None else None)
    text = speech.whisper(caller.spoken_name if caller else "Een gemeente", org, line,
                          tr.urgent, tr.consent_level or tr.consent,
                          reference=case.reference if case else None, step=step)
    return _r().ask(f"/voice/whisper/answer?tr={tr.id}&leg={leg.id}", text, timeout=8)


@bp.post("/whisper")
def whisper():
    """The professional answered: whisper who calls and why, and ask to accept."""
    svc = services.current()
    with svc.sessions.begin() as s:
        tr, leg = _transfer_and_leg(s)
        if tr is None:
            return twiml(_r().say(speech.WHISPER_GONE, hangup=True))
        leg.call_sid = leg.call_sid or _sid("CallSid") or None
        leg.answered_at = leg.answered_at or now()
        if tflow.advances(leg.status, "in-progress"):
            leg.status = "in-progress"
        if tr.state != "dialling":
            gone = speech.WHISPER_TAKEN if tr.state == "connected" else speech.WHISPER_GONE
            return twiml(_r().say(gone, hangup=True))
        leg.whisper_plays += 1
        return twiml(_whisper_prompt(tr, leg, s))


@bp.post("/whisper/answer")
def whisper_answer():
    svc = services.current()
    key = _digits(1)
    with svc.sessions.begin() as s:
        tr, leg = _transfer_and_leg(s)
        if tr is None:
            return twiml(_r().say(speech.WHISPER_GONE, hangup=True))
        if key == "1" and leg.accepted_at is not None and tr.state == "connected":
            # A retried delivery of this very acceptance: answer it the same way again.
            return twiml(_professional_conference(tr.id))
        if tr.state != "dialling":
            gone = speech.WHISPER_TAKEN if tr.state == "connected" else speech.WHISPER_GONE
            return twiml(_r().say(gone, hangup=True))
        if key == "1":
            at = now()
            won = s.execute(update(Transfer).where(Transfer.id == tr.id,
                                                   Transfer.state == "dialling")
                            .values(state="connected")).rowcount
            if not won:
                return twiml(_r().say(speech.WHISPER_GONE, hangup=True))
            org = svc.directory.organisation(tr.target_org)
            s.refresh(tr)
            tr.accepted_at = at
            tr.outcome = "connected"
            tr.time_to_answer_s = round((at - _aware(tr.created_at)).total_seconds(), 2)
            tr.minutes_saved = tflow.minutes_saved(org.public_wait_minutes if org else 0,
                                                   _aware(tr.created_at), at)
            leg.accepted_at, leg.outcome = at, "accepted"
            call = s.get(Call, tr.call_id)
            call.outcome = "connected"
            if tr.case_id is not None and tr.step is not None:
                step = cases.step_at(s, tr.case_id, tr.step)
                if step is not None:
                    cases.set_step(s, step.id, "connected", at)
            return twiml(_professional_conference(tr.id))
        if key in ("2", "") and leg.whisper_plays < 3:
            leg.whisper_plays += 1
            return twiml(_whisper_prompt(tr, leg, s))
        leg.outcome = "declined"
        tr_id, next_position = tr.id, leg.position + 1
    # Move on at once; the leg's final status callback would do the same (and finds it done).
    jobs.dispatch(jobs.place_leg, tr_id, next_position, job_id=f"leg-{tr_id}-{next_position}")
    return twiml(_r().say(speech.WHISPER_DECLINED, hangup=True))


def _professional_conference(tr_id: str) -> str:
    return _r().conference(
        tr_id, intro=speech.ACCEPTED, action=f"/voice/professional/done?tr={tr_id}",
        wait_url=None, status_callback=f"/voice/status/conference?tr={tr_id}",
        start_on_enter=True, end_on_exit=True, hangup_on_star=False, label="professional")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@bp.post("/worker-left")
def worker_left():
    """Said to a professional whose conversation the worker ended, before hanging up."""
    return twiml(_r().say(speech.WORKER_LEFT, hangup=True))


@bp.post("/professional/done")
def professional_done():
    return twiml(_r().say(hangup=True))


def _left_professional_alone(s, tr: Transfer) -> bool:
    """The worker hung up in a connected transfer without handing over: True if nobody but the
    professional is left, so the conference must end rather than leave them in silence."""
    if tr.state != "connected" or tr.worker_left_at is not None:
        return False
    tr.worker_left_at = now()
    citizen = s.scalar(select(func.count()).select_from(Leg).where(
        Leg.transfer_id == tr.id, Leg.kind == "citizen", Leg.status.not_in(tflow.TERMINAL)))
    if citizen:  # a hand-over after all: citizen and professional go on, nobody on hold
        tr.hold_wanted = False
        jobs.after_response(jobs.dispatch, jobs.hold_professional, tr.id)
    return not citizen


def _worker_gone(s, tr: Transfer) -> bool:
    """The worker left before anyone accepted: end the attempt; True if legs must be cancelled."""
    won = s.execute(update(Transfer).where(Transfer.id == tr.id, Transfer.state == "dialling")
                    .values(state="ended", outcome="abandoned", ended_at=now())).rowcount
    if won:
        call = s.get(Call, tr.call_id)
        if call is not None and call.outcome in (None, "closed"):
            call.outcome = "abandoned"
    return bool(won)


@bp.post("/conference/done")
def conference_done():
    """The worker left the conference: hung up, pressed *, or the conference ended."""
    svc = services.current()
    tr_id = _arg_id("tr")
    worker_hung_up = request.form.get("CallStatus") in tflow.TERMINAL
    with svc.sessions.begin() as s:
        tr = s.get(Transfer, tr_id) if tr_id else None
        if tr is None:
            return twiml(_r().say(redirect="/voice/incoming"))
        if worker_hung_up:
            cancel = _worker_gone(s, tr)
            end_alone = _left_professional_alone(s, tr)
            state = "gone"
        elif tr.accepted_at is None:
            # * while the professional's phone rings: abort the transfer, keep the call. (The
            # conference's participant-leave may have ended the attempt a moment earlier.)
            aborted = s.execute(update(Transfer).where(
                Transfer.id == tr.id, Transfer.accepted_at.is_(None),
                or_(Transfer.state == "dialling", Transfer.outcome == "abandoned"))
                .values(state="ended", outcome="cancelled",
                        ended_at=func.coalesce(Transfer.ended_at, now()))).rowcount
            s.refresh(tr)
            cancel = bool(aborted)
            if tr.state == "connected":  # accepted a moment ago: carry on as connected
                state = "menu"
            else:
                state = "aborted" if cancel or tr.outcome == "cancelled" else "unanswered"
        else:
            cancel = False
            prof = s.scalar(select(Leg).where(Leg.transfer_id == tr.id, Leg.kind == "professional",
                                              Leg.accepted_at.is_not(None)))
            live = (tr.state == "connected" and prof is not None
                    and prof.status not in tflow.TERMINAL)
            state = "menu" if live else "ended"
    if cancel:
        jobs.dispatch(jobs.cancel_legs, tr_id)
    if state == "gone":
        if end_alone:
            jobs.dispatch(jobs.end_conference, tr_id)
        return twiml(_r().say())
    if state == "aborted":
        return twiml(_menu_prompt(0, intro=speech.TRANSFER_ABORTED))
    if state == "unanswered":
        return twiml(_r().say(redirect=f"/voice/unanswered?tr={tr_id}"))
    if state == "menu":
        _want_hold(tr_id, True)
        more = speech.HANDOVER_NEXT if _chain_continues(tr_id) else ""
        return twiml(_r().ask(f"/voice/handover?tr={tr_id}", speech.HANDOVER_MENU + more,
                              timeout=8))
    chain = _finish_step(tr_id)
    return twiml(_ask_result(tr_id, "chain" if chain is not None else "again",
                             speech.CONVERSATION_ENDED))


# --------------------------------------------------------------------------- the worker's verdict

RESULTS = {"1": "resolved", "2": "partial", "3": "unresolved", "4": "wrong-line"}


def _ask_result(tr_id: str, then: str, intro: str = "") -> str:
    """One question after a conversation, one key, a short timeout; then `then` goes on
    (chain: the chain's next step; again: a new transfer; bye: the end of the call)."""
    with services.current().sessions() as s:
        tr = s.get(Transfer, tr_id)
        ask = tr is not None and tr.direction is None and tr.accepted_at is not None
    if not ask:
        return _go_on(tr_id, then, intro)
    return _r().ask(f"/voice/result?tr={tr_id}&then={then}", intro, speech.RESULT_QUESTION,
                    timeout=4)


def _then() -> str:
    value = request.args.get("then", "")
    return value if value in ("chain", "again", "bye") else "again"


def _go_on(tr_id: str, then: str, intro: str = "") -> str:
    if then == "chain":
        with services.current().sessions() as s:
            tr = s.get(Transfer, tr_id)
            case = _chain_of(s, tr) if tr is not None else None
            call = s.get(Call, tr.call_id) if case is not None else None
        if case is not None and call is not None:
            return _chain_next(call, case.id, intro)
    if then == "bye":
        return _r().say(intro, speech.GOODBYE, hangup=True)
    return _r().ask("/voice/again", intro, speech.NEW_TRANSFER, timeout=6)


def _store_result(tr_id: str, result: str, **values) -> None:
    """Keep the first real answer; "unknown" (no answer) never overwrites one."""
    with services.current().sessions.begin() as s:
        q = update(Transfer).where(Transfer.id == tr_id)
        if result == "unknown":
            q = q.where(Transfer.result.is_(None))
        else:
            q = q.where(or_(Transfer.result.is_(None), Transfer.result == "unknown",
                            Transfer.result == result))
        s.execute(q.values(result=result, result_at=now(), result_by="worker", **values))


@bp.post("/result")
def result():
    tr_id, then = _arg_id("tr"), _then()
    if tr_id is None:
        return twiml(_r().say(speech.GOODBYE, hangup=True))
    outcome = RESULTS.get(_digits(1), "unknown")
    _store_result(tr_id, outcome)
    if outcome == "wrong-line":
        svc = services.current()
        return twiml(_r().ask(f"/voice/result/right?tr={tr_id}&then={then}",
                              speech.RIGHT_ORGANISATION, speech=True,
                              hints=routing.speech_hints(svc.directory), num_digits=2,
                              finish_on_key="#", timeout=5))
    return twiml(_go_on(tr_id, then, speech.RESULT_THANKS if outcome != "unknown" else ""))


@bp.post("/result/right")
def result_right():
    """After "verkeerde lijn": where it should have gone, keyed or said; # or silence skips."""
    svc = services.current()
    tr_id, then = _arg_id("tr"), _then()
    if tr_id is None:
        return twiml(_r().say(speech.GOODBYE, hangup=True))
    digits = _digits(2).rstrip("#")
    said = request.form.get("SpeechResult", "")[:300]
    choice = (routing.resolve_digits(svc.directory, digits) if digits
              else routing.resolve_speech(svc.directory, said) if said else None)
    if choice is not None:
        _store_result(tr_id, "wrong-line", right_org=choice.organisation.id,
                      right_line=choice.line.id if choice.line else None)
    return twiml(_go_on(tr_id, then, speech.RESULT_THANKS))


def _chain_of(s, tr: Transfer) -> Case | None:
    """The life-event case that this transfer is a step of, if any."""
    if tr.case_id is None or tr.step is None or tr.direction is not None:
        return None
    case = s.get(Case, tr.case_id)
    return case if case is not None and case.life_event else None


def _chain_continues(tr_id: str) -> bool:
    with services.current().sessions() as s:
        tr = s.get(Transfer, tr_id)
        case = _chain_of(s, tr) if tr is not None else None
        return case is not None and cases.next_pending(s, case.id) is not None


def _finish_step(tr_id: str, state: str = "done"):
    """Mark the transfer's chain step finished; (call, case id) when it is part of a chain."""
    svc = services.current()
    with svc.sessions.begin() as s:
        tr = s.get(Transfer, tr_id)
        case = _chain_of(s, tr) if tr is not None else None
        if case is None:
            return None
        step = cases.step_at(s, case.id, tr.step)
        if step is not None:
            cases.set_step(s, step.id, state, now(), only_from=cases.OPEN_STEP_STATES)
        call = s.get(Call, tr.call_id)
        return call, case.id


@bp.post("/conversation-ended")
def conversation_ended():
    """The professional hung up while the worker was in the * menu."""
    tr_id = _arg_id("tr")
    if tr_id is None:
        return twiml(_r().ask("/voice/again", speech.CONVERSATION_ENDED, speech.NEW_TRANSFER,
                              timeout=6))
    chain = _finish_step(tr_id)
    return twiml(_ask_result(tr_id, "chain" if chain is not None else "again",
                             speech.CONVERSATION_ENDED))


@bp.post("/again")
def again():
    """After an end: 1 (a new transfer) or 2 (another organisation) leads to the menu."""
    if _digits(1) in ("1", "2"):
        return twiml(_menu_prompt(0))
    return twiml(_r().say(speech.GOODBYE, hangup=True))


@bp.post("/handover")
def handover():
    svc = services.current()
    tr_id = _arg_id("tr")
    key = _digits(1)
    with svc.sessions.begin() as s:
        tr = s.get(Transfer, tr_id) if tr_id else None
        if tr is None:
            return twiml(_r().say(redirect="/voice/incoming"))
        if tr.state != "connected":
            return twiml(_r().ask("/voice/again", speech.CONVERSATION_ENDED, speech.NEW_TRANSFER,
                                  timeout=6))
        if key == "1":
            return twiml(_ask_citizen(tr.id, 0))
        if key == "4" and _chain_of(s, tr) is None:
            key = "3"  # not in a chain: back to the conversation
        if key in ("2", "4"):
            citizen = s.scalar(select(func.count()).select_from(Leg).where(
                Leg.transfer_id == tr.id, Leg.kind == "citizen",
                Leg.status.not_in(tflow.TERMINAL)))
            tr.worker_left_at = now()
            handed_over = bool(citizen)
    if key == "4":  # on to the next organisation of the chain, in the same call
        if handed_over:
            _want_hold(tr_id, False)
        else:
            jobs.dispatch(jobs.end_conference, tr_id)
        chain = _finish_step(tr_id)
        if chain is not None:
            intro = speech.HANDED_OVER_NEXT if handed_over else ""
            return twiml(_ask_result(tr_id, "chain", intro))
    if key == "2":
        # The hand-over (or the end) happens now; the question comes after it.
        if handed_over:
            _want_hold(tr_id, False)
        else:
            jobs.dispatch(jobs.end_conference, tr_id)
        chain = _finish_step(tr_id)
        intro = speech.HANDED_OVER_NEXT if handed_over else speech.ENDED_ALONE_SHORT
        return twiml(_ask_result(tr_id, "chain" if chain is not None else "bye", intro))
    _want_hold(tr_id, False)
    return twiml(_worker_conference(tr_id, speech.RETURNING, start_on_enter=True))


def _want_hold(tr_id: str, hold: bool) -> None:
    """Record whether the professional should be on hold, then let a job apply it. The job
    applies the newest wish, so jobs that run out of order cannot leave a stale hold."""
    with services.current().sessions.begin() as s:
        s.execute(update(Transfer).where(Transfer.id == tr_id).values(hold_wanted=hold))
    jobs.dispatch(jobs.hold_professional, tr_id)


def _ask_citizen(tr_id: str, tries: int, intro: str = "") -> str:
    return _r().ask(f"/voice/citizen?tr={tr_id}&try={tries}", intro, speech.ASK_CITIZEN,
                    num_digits=None, finish_on_key="#", timeout=10)


@bp.post("/citizen")
def citizen():
    svc = services.current()
    tr_id = _arg_id("tr")
    tries = _arg_int("try", hi=3)
    number = routing.normalise_number(_digits(16).rstrip("#"))
    with svc.sessions.begin() as s:
        tr = s.get(Transfer, tr_id) if tr_id else None
        if tr is None:
            return twiml(_r().say(redirect="/voice/incoming"))
        if tr.state != "connected":
            return twiml(_r().ask("/voice/again", speech.CONVERSATION_ENDED, speech.NEW_TRANSFER,
                                  timeout=6))
        if number is None:
            if tries + 1 < 3:
                return twiml(_ask_citizen(tr.id, tries + 1, speech.CITIZEN_INVALID))
            retry = False
        else:
            retry = True
    if not retry:
        _want_hold(tr_id, False)
        return twiml(_worker_conference(tr_id, speech.CITIZEN_INVALID + " " + speech.RETURNING,
                                        start_on_enter=True))
    number_hmac = svc.pseudonyms.pseudonym(number)
    with svc.sessions.begin() as s:
        tr = s.get(Transfer, tr_id)
        calling = s.scalar(select(Leg.id).where(
            Leg.transfer_id == tr.id, Leg.kind == "citizen", Leg.number_hmac == number_hmac,
            Leg.status.not_in(tflow.TERMINAL)))
        if calling is not None:  # a retried webhook, or the same number again: ring it once
            leg_id = None
        else:
            position = s.scalar(select(func.count()).select_from(Leg).where(
                Leg.transfer_id == tr.id, Leg.kind == "citizen")) or 0
            leg = Leg(id=uuid.uuid4().hex, transfer_id=tr.id, kind="citizen",
                      position=position, number_hmac=number_hmac, number_masked=mask(number),
                      status="queued", created_at=now())
            s.add(leg)
            tr.citizen_added_at = tr.citizen_added_at or now()
            leg_id = leg.id
    if leg_id is not None:
        # The citizen's number stays in this process's memory: never in a queue or a table.
        jobs.after_response(jobs.add_citizen, tr_id, leg_id, number)
    _want_hold(tr_id, False)
    return twiml(_worker_conference(tr_id, speech.CITIZEN_CALLING, start_on_enter=True))


# --------------------------------------------------------------------------- unanswered, callbacks


@bp.post("/unanswered")
def unanswered():
    """Every number of the hunt group failed: the worker was redirected here from the wait."""
    svc = services.current()
    tr_id = _arg_id("tr")
    with svc.sessions.begin() as s:
        tr = s.get(Transfer, tr_id) if tr_id else None
        if tr is None:
            return twiml(_menu_prompt(0))
        call = s.get(Call, tr.call_id)
        if call is not None and call.outcome in (None, "abandoned"):
            call.outcome = tr.outcome or "no-answer"
        org = svc.directory.organisation(tr.target_org)
        line_id = tr.line_id
        chain = _chain_of(s, tr)
        case = s.get(Case, tr.case_id) if tr.case_id else None
        direction, step_pos = tr.direction, tr.step
    at = now()
    local_now = at.astimezone(svc.directory.tz)
    line = svc.directory.line(line_id)
    if direction == "to-worker":
        # The worker who opened the case does not answer: the case's line of the calling
        # organisation is called back first when it is open, then the worker.
        planned = None
        if case is not None and line is not None and case.worker_number_enc:
            number = svc.pseudonyms.decrypt(case.worker_number_enc)
            state, planned, _ = _case_callback(call, case, line, "unanswered", tr_id, at,
                                               worker_number=number,
                                               caller_org=case.caller_org)
            planned = planned if state == "pending" else None
        return twiml(_r().say(speech.worker_unreachable(planned, local_now), hangup=True))
    if chain is not None and line is not None and call is not None:
        state, planned, req_id = _case_callback(call, chain, line, "unanswered", tr_id, at)
        _finish_step(tr_id, "unanswered")
        _step_state(chain.id, step_pos, "unanswered", callback_id=req_id)
        text = speech.step_unreachable(step_pos, org, False,
                                       planned if state == "pending" else None, local_now)
        return twiml(_chain_next(call, chain.id, text))
    if line is None:  # gone from the directory since: nothing to call back
        return twiml(_r().ask("/voice/again", speech.unanswered(org), speech.OTHER_ORGANISATION,
                              timeout=6))
    if not _callback_possible(line, call.caller_org if call else None, at, "unanswered"):
        return twiml(_r().ask("/voice/again", speech.unanswered(org), speech.CALLBACK_NEVER,
                              timeout=6))
    return twiml(_r().ask(f"/voice/callback?line={line_id}&reason=unanswered&tr={tr_id}",
                          speech.unanswered(org), speech.CALLBACK_OFFER, timeout=6))


@bp.post("/callback")
def callback():
    svc = services.current()
    line = svc.directory.line(request.args.get("line"))
    key = _digits(1)
    with svc.sessions() as s:
        call = _identified_call(s)
    if call is None:
        return twiml(_r().say(redirect="/voice/incoming"))
    if key == "2" or line is None:
        return twiml(_menu_prompt(0))
    if key != "1":
        return twiml(_r().say(speech.GOODBYE, hangup=True))
    at = now()
    reason = "unanswered" if request.args.get("reason") == "unanswered" else "closed"
    number = routing.normalise_number(request.form.get("From", "")[:64])
    with svc.sessions.begin() as s:
        # Written first; one request per call and line, also when the webhook is delivered
        # twice; on the call's case when it has one.
        req, updated = callbacks.create(s, call_id=call.id, transfer_id=_arg_id("tr"),
                               caller_org=call.caller_org, line_id=line.id, urgent=call.urgent,
                               consent=call.consent, reason=reason, worker_number=number,
                               at=at, case_id=call.case_id)
        row = s.get(Call, call.id)
        row.outcome = "callback-requested"
        request_id, planned, state = req.id, req.planned_at, req.state
        if call.case_id is not None:
            step = s.scalar(select(CaseStep).where(
                CaseStep.case_id == call.case_id, CaseStep.line_id == line.id)
                .order_by(CaseStep.position.desc()).limit(1))
            if step is not None:
                cases.set_step(s, step.id, step.state if step.state != "pending" else reason,
                               at, callback_id=request_id)
    if state == "pending" and not updated:
        jobs.after_response(callbacks.schedule, request_id)
        jobs.dispatch(callbacks.send_confirmation, request_id, queue="default",
                      job_id=f"cb-sms-{request_id}")
    local_now = at.astimezone(svc.directory.tz)
    if state != "pending":
        text = speech.CALLBACK_NO_NUMBER if not number else speech.CALLBACK_IMPOSSIBLE
        return twiml(_r().say(text, hangup=True))
    if updated:
        return twiml(_r().say(speech.callback_updated(planned, local_now), hangup=True))
    return twiml(_r().say(speech.callback_planned(planned, local_now), hangup=True))


# --------------------------------------------------------------------------- status callbacks


_STATUS_UPDATES: dict = {}


def _call_status_update(status: str):
    """The UPDATE for an inbound call's status, built once per status value (Core, bound
    parameters): moves the status forward only, fills the end once, and returns whether a
    transfer of the call is still ringing. None when the status changes nothing."""
    if status in _STATUS_UPDATES:
        return _STATUS_UPDATES[status]
    calls = Call.__table__
    earlier = tflow.earlier_than(status)
    values: dict = {}
    if earlier:  # a late or repeated status never moves the call back
        values["status"] = case((or_(calls.c.status.is_(None),
                                     *[calls.c.status == e for e in earlier]),
                                 literal(status)), else_=calls.c.status)
    if status in tflow.TERMINAL:
        values["ended_at"] = func.coalesce(calls.c.ended_at, bindparam("now", type_=UTC_TS))
        values["outcome"] = func.coalesce(calls.c.outcome, literal("abandoned"))
        values["duration_s"] = func.coalesce(bindparam("duration", type_=Integer),
                                             calls.c.duration_s)
    stmt = None
    if values:
        # Written out: in RETURNING, SQLAlchemy leaves the updated table's columns unqualified,
        # and an unqualified `id` inside the subquery would mean transfers.id.
        ringing = literal_column("EXISTS (SELECT 1 FROM transfers AS t WHERE "
                                 "t.call_id = calls.id AND t.state = 'dialling')")
        talking = literal_column("EXISTS (SELECT 1 FROM transfers AS t WHERE "
                                 "t.call_id = calls.id AND t.state = 'connected')")
        stmt = (update(calls).where(calls.c.call_sid == bindparam("sid")).values(**values)
                .returning(calls.c.id, ringing, talking))
    if len(_STATUS_UPDATES) < 64:  # statuses are validated to a short safe alphabet
        _STATUS_UPDATES[status] = stmt
    return stmt


@bp.post("/status/call")
def status_call():
    """Status callback of the inbound call (configured on the internal number)."""
    svc = services.current()
    sid, status = _sid("CallSid"), _SAFE.sub("", request.form.get("CallStatus", ""))[:20]
    if not sid:
        return twiml(_EMPTY)
    cancel: list[str] = []
    end_alone: list[str] = []
    # No read first: the event (joined to the call by its CallSid) and one conditional update,
    # on the driver's connection (no ORM object is loaded here).
    with db.hot(svc.engine) as s:
        if not _record_event(s, "call", sid, status or "-", _sequence()):
            return twiml(_EMPTY)
        stmt = _call_status_update(status)
        if stmt is None:
            return twiml(_EMPTY)
        duration = request.form.get("CallDuration", "")
        row = db.run_prepared(s, stmt, {
            "sid": sid, "now": now(),
            "duration": int(duration) if duration.isdigit() and len(duration) < 9 else None,
        }).first()
        talking_id = row[0] if row is not None and row[2] and status in tflow.TERMINAL else None
        if row is not None and row[1] and status in tflow.TERMINAL:
            # The worker is gone: end every attempt still ringing.
            transfers = Transfer.__table__
            cancel = db.run_once(s, (
                update(transfers)
                .where(transfers.c.call_id == row[0], transfers.c.state == "dialling")
                .values(state="ended", outcome="abandoned", ended_at=now())
                .returning(transfers.c.id))).scalars()
    if talking_id is not None:  # the worker's call ended during a conversation
        with svc.sessions.begin() as ss:
            for tr in ss.scalars(select(Transfer).where(Transfer.call_id == talking_id,
                                                        Transfer.state == "connected")):
                if _left_professional_alone(ss, tr):
                    end_alone.append(tr.id)
    for tr_id in cancel:
        jobs.dispatch(jobs.cancel_legs, tr_id)
    for tr_id in end_alone:
        jobs.dispatch(jobs.end_conference, tr_id)
    return twiml(_EMPTY)


@bp.post("/status/leg")
def status_leg():
    """Status callbacks of the outbound legs (professionals and citizens)."""
    svc = services.current()
    status = _SAFE.sub("", request.form.get("CallStatus", ""))[:20]
    sid = _sid("CallSid")
    next_position = None
    bring_back = None
    with svc.sessions.begin() as s:
        tr, leg = _transfer_and_leg(s)
        if tr is None:
            return twiml(_r().say())
        if not _record_event(s, "leg", sid or leg.id, status or "-", _sequence(),
                             call_id=tr.call_id, transfer_id=tr.id):
            return twiml(_r().say())
        leg.call_sid = leg.call_sid or sid or None
        if not tflow.advances(leg.status, status):
            return twiml(_r().say())  # late or out of order: never move back
        leg.status = status
        if status in ("in-progress", "answered"):
            leg.answered_at = leg.answered_at or now()
        if status in tflow.TERMINAL:
            leg.ended_at = now()
            leg.outcome = leg.outcome or tflow.leg_outcome(
                status, leg.answered_at is not None, leg.accepted_at is not None)
            if leg.kind == "professional" and tr.state == "dialling" and leg.accepted_at is None:
                next_position = leg.position + 1
            elif leg.kind == "professional" and leg.accepted_at is not None:
                _end_transfer(tr)
                # The worker is in the * menu (outside the conference, so no Dial action
                # will tell them): bring them to the end of the conversation.
                if tr.hold_wanted and tr.worker_left_at is None and tr.worker_call_sid:
                    bring_back = tr.worker_call_sid
    if next_position is not None:
        jobs.dispatch(jobs.place_leg, tr.id, next_position, job_id=f"leg-{tr.id}-{next_position}")
    if bring_back:
        jobs.dispatch(jobs.redirect_call, bring_back, f"/voice/conversation-ended?tr={tr.id}")
    return twiml(_r().say())


def _end_transfer(tr: Transfer) -> None:
    if tr.state == "connected":
        tr.state = "ended"
    if tr.ended_at is None:
        tr.ended_at = now()
        if tr.accepted_at is not None:
            tr.duration_s = round((tr.ended_at - _aware(tr.accepted_at)).total_seconds(), 2)


@bp.post("/status/conference")
def status_conference():
    svc = services.current()
    tr_id = _arg_id("tr")
    event = _SAFE.sub("", request.form.get("StatusCallbackEvent", ""))[:32]
    conf_sid, sid = _sid("ConferenceSid"), _sid("CallSid")
    cancel = False
    with svc.sessions.begin() as s:
        tr = s.get(Transfer, tr_id) if tr_id else None
        if tr is None:
            return twiml(_r().say())
        if not _record_event(s, "conference", conf_sid or tr.id, f"{event}:{sid}", _sequence(),
                             call_id=tr.call_id, transfer_id=tr.id):
            return twiml(_r().say())
        if conf_sid and not tr.conference_sid:
            tr.conference_sid = conf_sid
        is_worker = bool(sid) and sid == tr.worker_call_sid
        if event == "participant-leave" and is_worker:
            if tr.state == "dialling":
                cancel = _worker_gone(s, tr)
        elif event == "conference-end":
            if tr.state == "dialling":
                cancel = _worker_gone(s, tr)
            else:
                _end_transfer(tr)
    if cancel:
        jobs.dispatch(jobs.cancel_legs, tr_id)
    return twiml(_r().say())
