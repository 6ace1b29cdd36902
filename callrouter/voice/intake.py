"""Who is calling: the internal number's entry point, the fallback, and the PIN for phones
that the directory does not know."""

from __future__ import annotations

import logging
import re
import uuid

from flask import request
from redis.exceptions import RedisError

from callrouter import callbacks, db, metrics, services
from callrouter.flows import pin as policy
from callrouter.flows import routing, speech
from callrouter.ldv import kinds as ldv
from callrouter.ldv import store as ldv_store
from callrouter.models import Call
from callrouter.privacy import loggable_sid, mask
from callrouter.voice.menu import menu_with_pending
from callrouter.voice.prompts import ask_code, ask_reference, menu_prompt
from callrouter.voice.webhook import (
    arg_int,
    bp,
    call_of_request,
    form_sid,
    keyed,
    now,
    renderer,
    transaction,
    twiml,
)

log = logging.getLogger(__name__)


@bp.post("/incoming")
def incoming():
    svc = services.current()
    sid = form_sid("CallSid")
    if not sid:
        return twiml(renderer().say(speech.UNAVAILABLE, hangup=True))
    raw_from = request.form.get("From", "")[:64]
    caller = routing.identify(svc.directory, raw_from)
    staff = routing.identify_staff(svc.directory, raw_from) if caller is None else None
    if staff is not None:
        return _staff_incoming(sid, raw_from, staff)
    number = raw_from if caller is not None else routing.normalise_number(raw_from)
    # A withheld or invalid number ("anonymous") gets a pseudonym of its own call, so that
    # wrong PINs of one such caller never lock out every other one.
    from_hmac = svc.pseudonyms.pseudonym(number or f"call:{sid}")
    locked = False
    if caller is None:
        try:
            locked = _locked(from_hmac)
        except RedisError:
            log.warning("call %s: lock store unavailable; PIN entry refused", loggable_sid(sid))
            locked = None
    row = dict(
        id=uuid.uuid4().hex,
        call_sid=sid,
        received_at=now(),
        from_hmac=from_hmac,
        from_masked=mask(number) if number else "onbekend",
        status="in-progress",
        caller_org=caller.id if caller else None,
        identified_by="number" if caller else None,
        urgent=False,
        consent=False,
        outcome="locked" if locked else None,
    )
    # The hot path of every call: one statement on the driver's connection, no ORM object,
    # the row ready before the transaction (on SQLite, the write gate) begins; on PostgreSQL
    # the insert commits by itself (the pending check after it only reads). A retried webhook
    # finds the call it made before (the insert does nothing).
    pending = None
    records = _arrival_records(svc.directory.register, row, number)
    with db.hot(svc.engine, each_statement=True) as conn:
        ldv_store.with_call(conn, row, records)
        if caller is not None:
            pending = callbacks.pending_for_worker(from_hmac, conn)
    if caller is not None:
        if pending is not None:
            return twiml(menu_with_pending(caller, pending))
        return twiml(menu_prompt(0, intro=speech.welcome(caller)))
    return _pin_reply(policy.on_arrival(locked), 0)


def _arrival_records(register, row: dict, number: str | None) -> list[dict]:
    """The LDV records of a call's arrival (a withheld number is no subject)."""
    return ldv.arrival(
        register,
        call_id=row["id"],
        at=row["received_at"],
        subject=row["from_hmac"] if number else None,
        caller_org=row["caller_org"],
        identified_by=row["identified_by"],
    )


def _pin_reply(verdict: str, tries: int):
    if verdict == policy.UNAVAILABLE:
        return twiml(renderer().say(speech.UNAVAILABLE, hangup=True))
    if verdict == policy.LOCKED:
        return twiml(renderer().say(speech.LOCKED, hangup=True))
    return twiml(ask_code(tries, intro=speech.WRONG_PIN if tries else None))


def _staff_incoming(sid: str, number: str, org):
    """A professional of `org` calls the internal number: the way back to a case's worker."""
    svc = services.current()
    row = dict(
        id=uuid.uuid4().hex,
        call_sid=sid,
        received_at=now(),
        from_hmac=svc.pseudonyms.pseudonym(number),
        from_masked=mask(number),
        status="in-progress",
        caller_org=org.id,
        identified_by="staff",
        urgent=False,
        consent=False,
    )
    with svc.engine.begin() as s:
        ldv_store.with_call(s, row, _arrival_records(svc.directory.register, row, number))
    return twiml(ask_reference(org, 0))


@bp.post("/fallback")
def fallback():
    """Twilio's Fallback URL: calm Dutch, needs neither the database nor Redis."""
    svc = services.current()
    metrics.FALLBACK.inc()
    failed_url = request.form.get("ErrorUrl", "")
    org = None
    m = re.search(r"[?&]org=([a-z0-9_-]+)", failed_url)
    if m:
        org = svc.directory.organisation(m.group(1))
    m = re.search(r"[?&]line=([a-z0-9_-]+)", failed_url)
    if org is None and m and (line := svc.directory.line(m.group(1))):
        org = svc.directory.organisation(line.organisation_id)
    code = request.form.get("ErrorCode", "")
    log.warning(
        "fallback for call %s after error %s",
        loggable_sid(form_sid("CallSid")),
        code if code.isdigit() and len(code) <= 5 else "(none)",
    )
    return twiml(renderer().say(speech.fallback(org), hangup=True))


@bp.post("/retry")
def retry():
    """After an error: 1 tries the menu again; anything else ends the call kindly."""
    if keyed() == "1":
        with services.current().sessions() as s:
            call = call_of_request(s)
            if call is not None and call.caller_org:
                return twiml(menu_prompt(0))
        return twiml(renderer().say(redirect="/voice/incoming"))
    return twiml(renderer().say(speech.GOODBYE, hangup=True))


def _lock_keys(from_hmac: str | None) -> tuple[str, str]:
    key = from_hmac or "unknown"
    return f"callrouter:pin-lock:{key}", f"callrouter:pin-fail:{key}"


def _locked(from_hmac: str | None) -> bool:
    lock, _ = _lock_keys(from_hmac)
    return bool(services.current().redis.exists(lock))


@bp.post("/intake/code")
def intake_code():
    tries = arg_int("try", hi=policy.TRIES)
    code = keyed().rstrip("#")
    if not code.isdigit():
        with transaction() as s:
            return _pin_failed(s, call_of_request(s), tries)
    return twiml(
        renderer().ask(
            f"/voice/intake/pin?try={tries}&code={code[:8]}",
            speech.ASK_PIN,
            num_digits=None,
            finish_on_key="#",
            timeout=8,
        )
    )


@bp.post("/intake/pin")
def intake_pin():
    svc = services.current()
    tries = arg_int("try", hi=policy.TRIES)
    code = "".join(ch for ch in request.args.get("code", "") if ch.isdigit())[:8]
    pin = keyed().rstrip("#")
    with transaction() as s:
        call = call_of_request(s)
        from_hmac = call.from_hmac if call else None
        try:
            locked = _locked(from_hmac)
        except RedisError:
            locked = None
        if (verdict := policy.on_arrival(locked)) != policy.ASK:
            return _pin_reply(verdict, tries)
        ok = policy.well_formed(code, pin)
        caller = routing.check_pin(svc.directory, code, pin) if ok else None
        if caller is None or call is None:
            return _pin_failed(s, call, tries)
        call.caller_org, call.identified_by = caller.id, "pin"
        record = ldv.identified(
            svc.directory.register, call.id, now(), call.from_hmac, caller.id, "pin"
        )
        ldv_store.write(s, [record])
    try:
        svc.redis.delete(_lock_keys(from_hmac)[1])
    except RedisError:
        pass
    return twiml(menu_prompt(0, intro=f"Dank u wel. U belt namens {caller.spoken_name}."))


def _pin_failed(s, call: Call | None, tries: int):
    """A wrong code or PIN: count it for the caller (by pseudonym); the policy decides."""
    svc = services.current()
    lock, fails = _lock_keys(call.from_hmac if call else None)
    try:
        pipe = svc.redis.pipeline()
        pipe.incr(fails)
        pipe.expire(fails, policy.LOCK_SECONDS)
        failed_total: int | None = pipe.execute()[0]
    except RedisError:
        failed_total = None
    verdict = policy.after_wrong(tries, failed_total)
    if verdict == policy.LOCKED:
        try:
            svc.redis.set(lock, "1", ex=policy.LOCK_SECONDS)
            svc.redis.delete(fails)
        except RedisError:
            verdict = policy.UNAVAILABLE
        else:
            if call is not None:
                call.outcome = "locked"
            log.info("call %s: PIN entry locked for 15 minutes", loggable_sid(form_sid("CallSid")))
    return _pin_reply(verdict, tries + 1)
