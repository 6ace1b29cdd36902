"""Voice webhooks of a call-back: the professional is called first, then the worker.

Registered on the voice blueprint, so the same signature check and error handling apply.
"""

from __future__ import annotations

from flask import request

from callrouter import callbacks, jobs, services
from callrouter.flows import callback as cflow
from callrouter.flows import callback_leg as leg
from callrouter.flows import speech
from callrouter.ldv import kinds as ldv
from callrouter.ldv import store as ldv_store
from callrouter.models import CallbackRequest, Case
from callrouter.voice.webhook import (
    EMPTY,
    SAFE,
    arg_id,
    arg_int,
    bp,
    form_sequence,
    form_sid,
    keyed,
    now,
    record_event,
    renderer,
    transaction,
    twiml,
)

NOT_NEEDED = "Dit terugbelverzoek is niet meer nodig. Dank u wel."


def _request(s):
    """The request and attempt named in the URL, if this attempt is still the current one."""
    request_id, attempt = arg_id("cb"), arg_int("att", default=-1, hi=1000)
    req = s.get(CallbackRequest, request_id) if request_id else None
    if req is None or req.attempts != attempt:
        return None, attempt
    return req, attempt


def _whisper(req: CallbackRequest, plays: int, s=None) -> str:
    d = services.current().directory
    caller, org, line = (
        d.caller(req.caller_org),
        d.organisation(req.target_org),
        d.line(req.line_id),
    )
    case = s.get(Case, req.case_id) if s is not None and req.case_id else None
    if s is not None:
        record = ldv.callback_context_shared(
            d.register,
            call_id=req.call_id,
            request_id=req.id,
            attempt=req.attempts,
            case_id=req.case_id,
            worker_hmac=req.worker_hmac,
            org=req.target_org,
            line=req.line_id,
            consented=req.consent,
            at=now(),
        )
        ldv_store.write(s, [record])
    text = cflow.whisper(
        caller.spoken_name if caller else "Een gemeente",
        org.spoken_name if org else "",
        line.spoken_topic if line else "",
        req.requested_at.astimezone(d.tz),
        req.urgent,
        case.reference if case is not None else None,
    )
    return renderer().ask(
        f"/voice/callback/answer?cb={req.id}&att={req.attempts}&n={plays}", text, timeout=8
    )


# The jobs of the model's `Job` actions (queued on the default queue, beside the call-backs'
# own scheduling; dialling the worker goes on the calls queue: seconds matter there).
_JOBS = {
    "attempt_failed": callbacks.attempt_failed,
    "professional_left": callbacks.professional_left,
    "worker_unreachable": callbacks.worker_unreachable,
    "finished": callbacks.finished,
}


def _carry_out(s, req: CallbackRequest | None, attempt: int, actions: list) -> str:
    """Carry out the model's actions for the attempt; the TwiML for the professional."""
    body = EMPTY
    for action in actions:
        if isinstance(action, leg.Claim):
            if not callbacks.claim_connecting(s, req.id, attempt, now()):
                return renderer().say(NOT_NEEDED, hangup=True)  # taken meanwhile
        elif isinstance(action, leg.Job) and action.name == "dial_worker":
            job_id = f"cb-dial-{req.id}-{attempt}"
            jobs.dispatch(callbacks.dial_worker, req.id, attempt, job_id=job_id)
        elif isinstance(action, leg.Job):
            extra = () if action.outcome is None else (action.outcome,)
            jobs.dispatch(_JOBS[action.name], req.id, attempt, *extra, queue="default")
        elif isinstance(action, leg.Reply):
            body = _reply(s, req, attempt, action)
    return body


def _reply(s, req: CallbackRequest | None, attempt: int, reply: leg.Reply) -> str:
    if reply.kind == "whisper":
        return _whisper(req, reply.plays, s)
    if reply.kind == "conference":
        return _professional_conference(req.id, attempt)
    if reply.kind == "declined":
        return renderer().say(speech.WHISPER_DECLINED, hangup=True)
    return renderer().say(NOT_NEEDED, hangup=True)


@bp.post("/callback/whisper")
def callback_whisper():
    """The professional answered a call-back: say whose request it is and ask to accept."""
    with transaction() as s:
        req, attempt = _request(s)
        _, actions = leg.step(req.state if req else None, leg.Answered())
        return twiml(_carry_out(s, req, attempt, actions))


@bp.post("/callback/answer")
def callback_answer():
    key = keyed(1)
    plays = arg_int("n", default=1, hi=10)
    with transaction() as s:
        req, attempt = _request(s)
        repeat = req is not None and req.call_sid == (form_sid("CallSid") or None)
        event = leg.Key(key, plays, repeat=repeat)
        _, actions = leg.step(req.state if req else None, event)
        return twiml(_carry_out(s, req, attempt, actions))


def _professional_conference(request_id: str, attempt: int) -> str:
    # The professional waits (hearing why) until the worker joins and starts the conference.
    return renderer().conference(
        callbacks.conference_name(request_id, attempt),
        intro=speech.CALLBACK_CALLING_WORKER,
        action=f"/voice/professional/done?cb={request_id}",
        wait_url="/voice/hold",
        status_callback=f"/voice/callback/conference?cb={request_id}&att={attempt}",
        start_on_enter=False,
        end_on_exit=True,
        hangup_on_star=False,
        label="professional",
    )


def _leg_event(s, source: str) -> tuple[str, str] | None:
    """The leg's status, kept once; None for a duplicate delivery."""
    status = SAFE.sub("", request.form.get("CallStatus", ""))[:20]
    sid = form_sid("CallSid")
    if not record_event(s, source, sid or "-", status or "-", form_sequence()):
        return None
    return sid, status


@bp.post("/callback/status")
def callback_status():
    """Status of the professional's leg of a call-back attempt."""
    with transaction() as s:
        seen = _leg_event(s, "cb-professional")
        if seen is None:
            return twiml(EMPTY)
        req, attempt = _request(s)
        _, actions = leg.step(req.state if req else None, leg.ProfessionalStatus(seen[1]))
        _carry_out(s, req, attempt, actions)
        return twiml(EMPTY)


@bp.post("/callback/worker-status")
def callback_worker_status():
    """Status of the worker's leg: answered connects; not answered is retried later."""
    with transaction() as s:
        seen = _leg_event(s, "cb-worker")
        if seen is None:
            return twiml(EMPTY)
        sid, status = seen
        req, attempt = _request(s)
        if req is None:
            return twiml(EMPTY)
        new, actions = leg.step(req.state, leg.WorkerStatus(status))
        if new != req.state:
            req.state, req.updated_at = new, now()
            req.worker_call_sid = req.worker_call_sid or sid or None
        _carry_out(s, req, attempt, actions)
        return twiml(EMPTY)


@bp.post("/callback/conference")
def callback_conference():
    """Conference events of a call-back, kept for the timeline."""
    event = SAFE.sub("", request.form.get("StatusCallbackEvent", ""))[:32]
    with transaction() as s:
        record_event(
            s,
            "cb-conference",
            form_sid("ConferenceSid") or arg_id("cb") or "-",
            f"{event}:{form_sid('CallSid')}",
            form_sequence(),
        )
    return twiml(EMPTY)


@bp.post("/callback/worker-unreachable")
def callback_worker_unreachable():
    return twiml(renderer().say(speech.CALLBACK_WORKER_UNREACHABLE, hangup=True))
