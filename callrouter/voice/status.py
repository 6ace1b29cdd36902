"""Status callbacks: the worker's call, the outbound legs, the conference."""

from __future__ import annotations

from dataclasses import replace

from flask import request

from callrouter import db, jobs, services
from callrouter.flows import warm_transfer as wt
from callrouter.store import calls as call_rows
from callrouter.store import transfers as store
from callrouter.voice.effects import run
from callrouter.voice.webhook import (
    EMPTY,
    SAFE,
    arg_id,
    bp,
    form_sequence,
    form_sid,
    now,
    record_event,
    transaction,
    twiml,
)


@bp.post("/status/call")
def status_call():
    """Status callback of the inbound call (configured on the internal number)."""
    svc = services.current()
    sid, status = form_sid("CallSid"), SAFE.sub("", request.form.get("CallStatus", ""))[:20]
    if not sid:
        return twiml(EMPTY)
    # No read first: the event (joined to the call by its CallSid) and one conditional update,
    # on the driver's connection (no ORM object is loaded here).
    with db.hot(svc.engine) as s:
        if not record_event(s, "call", sid, status or "-", form_sequence()):
            return twiml(EMPTY)
        duration = request.form.get("CallDuration", "")
        seconds = int(duration) if duration.isdigit() and len(duration) < 9 else None
        live = call_rows.apply_status(s, sid, status, seconds, now())
    if live is not None:
        # The worker hung up with a transfer still ringing or talking: the transfer model
        # decides what that means for each (in a job, so this stays the one transaction).
        jobs.dispatch(jobs.worker_hung_up, live)
    return twiml(EMPTY)


@bp.post("/status/leg")
def status_leg():
    """Status callbacks of the outbound legs (professionals and citizens)."""
    svc = services.current()
    status = SAFE.sub("", request.form.get("CallStatus", ""))[:20]
    sid = form_sid("CallSid")
    if not store.known(svc.engine, tr_id := arg_id("tr")):
        return twiml(EMPTY)
    with transaction() as s:
        loaded = store.load(s, tr_id, svc.directory)
        leg_id = arg_id("leg")
        leg = next((leg for leg in loaded.legs if leg.id == leg_id), None) if loaded else None
        if loaded is None or leg is None:
            return twiml(EMPTY)
        if not record_event(
            s,
            "leg",
            sid or leg.id,
            status or "-",
            form_sequence(),
            call_id=loaded.row.call_id,
            transfer_id=loaded.row.id,
        ):
            return twiml(EMPTY)  # a duplicate delivery
        leg.call_sid = leg.call_sid or sid or None
        run(s, loaded, wt.LegStatus(leg.id, status))
    return twiml(EMPTY)


@bp.post("/status/conference")
def status_conference():
    """The conversation's conference events: who joined, who left, the end."""
    svc = services.current()
    event = SAFE.sub("", request.form.get("StatusCallbackEvent", ""))[:32]
    conf_sid, sid = form_sid("ConferenceSid"), form_sid("CallSid")
    if not store.known(svc.engine, tr_id := arg_id("tr")):
        return twiml(EMPTY)
    with transaction() as s:
        loaded = store.load(s, tr_id, svc.directory)
        if loaded is None:
            return twiml(EMPTY)
        tr = loaded.row
        if not record_event(
            s,
            "conference",
            conf_sid or tr.id,
            f"{event}:{sid}",
            form_sequence(),
            call_id=tr.call_id,
            transfer_id=tr.id,
        ):
            return twiml(EMPTY)
        if conf_sid and not tr.conference_sid:
            tr.conference_sid = conf_sid
            loaded.state = replace(loaded.state, conference_sid=conf_sid)
        who = store.who(loaded, sid)
        if event == "participant-join" and who is not None:
            run(s, loaded, wt.Joined(who, conf_sid or None))
        elif event == "participant-leave" and who is not None:
            run(s, loaded, wt.Left(who))
        elif event == "conference-end":
            run(s, loaded, wt.ConferenceEnded(conf_sid or None))
    return twiml(EMPTY)
