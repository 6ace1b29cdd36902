"""The way back: a professional calls the internal number with a case reference."""

from __future__ import annotations

import logging
import uuid

from flask import request

from callrouter import cases, jobs, services
from callrouter.flows import reference as refs
from callrouter.flows import speech
from callrouter.models import Call, Transfer
from callrouter.privacy import loggable_sid
from callrouter.store import transfers as store
from callrouter.voice.prompts import ask_reference, worker_conference
from callrouter.voice.webhook import (
    arg_int,
    bp,
    call_of_request,
    keyed,
    now,
    renderer,
    transaction,
    twiml,
)

log = logging.getLogger(__name__)


@bp.post("/wayback")
def wayback():
    """A professional keyed a case reference: connect them to the worker who opened it."""
    svc = services.current()
    org = svc.directory.organisation(request.args.get("org"))
    tries = arg_int("try", hi=3)
    with transaction() as s:
        call = call_of_request(s)
        if (
            org is None
            or call is None
            or call.identified_by != "staff"
            or call.caller_org != org.id
        ):
            return twiml(renderer().say(redirect="/voice/incoming"))
        ref = keyed(10).rstrip("#")
        if not refs.is_valid(ref):
            if tries + 1 >= 3:
                return twiml(renderer().say(speech.UNKNOWN_CASE, hangup=True))
            return twiml(ask_reference(org, tries + 1, speech.REFERENCE_INVALID))
        case = cases.find_for_staff(s, ref, org.id)
        if case is None or not case.worker_number_enc:
            log.info("call %s: way back to an unknown case", loggable_sid(call.call_sid))
            return twiml(renderer().say(speech.UNKNOWN_CASE, hangup=True))
        tr = _transfer_to_worker(s, call, case, org)
        return twiml(
            worker_conference(tr.id, speech.CALLING_WORKER, start_on_enter=False, reaching="worker")
        )


def _transfer_to_worker(s, call: Call, case, org) -> Transfer:
    """The transfer back to the case's worker (one per call: a retried webhook finds it)."""
    at = now()
    line_id = cases.line_for_org(s, case.id, org.id)
    call.case_id, call.target_org, call.line_id = case.id, case.caller_org, line_id
    call.menu_done_at = at
    recent = store.open_for_call(s, call.id)
    if recent is not None:
        return recent
    tr = Transfer(
        id=uuid.uuid4().hex,
        call_id=call.id,
        caller_org=org.id,
        target_org=case.caller_org or "-",
        line_id=line_id or "-",
        urgent=False,
        consent=False,
        state="dialling",
        worker_call_sid=call.call_sid,
        created_at=at,
        case_id=case.id,
        direction="to-worker",
    )
    s.add(tr)
    jobs.dispatch(jobs.place_leg, tr.id, 0, job_id=f"leg-{tr.id}-0")
    jobs.after_response(jobs.schedule_watchdog, tr.id, jobs.WAY_BACK_DEADLINE)
    return tr
