"""Voice webhooks of a call-back: the professional is called first, then the worker.

Registered on the voice blueprint, so the same signature check and error handling apply.
"""

from __future__ import annotations

from flask import request

from callrouter import callbacks, jobs, services
from callrouter.flows import callback as cflow
from callrouter.flows import speech
from callrouter.flows import transfer as tflow
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


@bp.post("/callback/whisper")
def callback_whisper():
    """The professional answered a call-back: say whose request it is and ask to accept."""
    with transaction() as s:
        req, _ = _request(s)
        if req is None or req.state != "dialling":
            return twiml(renderer().say(NOT_NEEDED, hangup=True))
        return twiml(_whisper(req, 1, s))


@bp.post("/callback/answer")
def callback_answer():
    key = keyed(1)
    plays = arg_int("n", default=1, hi=10)
    with transaction() as s:
        req, attempt = _request(s)
        if (
            req is not None
            and key == "1"
            and req.state in ("connecting", "connected")
            and req.call_sid == (form_sid("CallSid") or None)
        ):
            # A retried delivery of this very acceptance: answer it the same way again.
            return twiml(_professional_conference(req.id, attempt))
        if req is None or req.state != "dialling":
            return twiml(renderer().say(NOT_NEEDED, hangup=True))
        if key != "1":
            if plays < 3:
                return twiml(_whisper(req, plays + 1, s))
            # No acceptance: the leg's final status callback records the attempt as declined.
            return twiml(renderer().say(speech.WHISPER_DECLINED, hangup=True))
        if not callbacks.claim_connecting(s, req.id, attempt, now()):
            return twiml(renderer().say(NOT_NEEDED, hangup=True))
        jobs.dispatch(callbacks.dial_worker, req.id, attempt, job_id=f"cb-dial-{req.id}-{attempt}")
        return twiml(_professional_conference(req.id, attempt))


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
        if seen is None or seen[1] not in tflow.TERMINAL:
            return twiml(EMPTY)
        req, attempt = _request(s)
        state = req.state if req is not None else None
        if state == "dialling":  # never accepted: busy, no answer, declined, failed
            outcome = tflow.leg_outcome(seen[1], answered=False, accepted=False)
            jobs.dispatch(callbacks.attempt_failed, req.id, attempt, outcome, queue="default")
        elif state == "connecting":  # hung up while the worker was being dialled
            jobs.dispatch(callbacks.professional_left, req.id, attempt, queue="default")
        elif state == "connected":
            jobs.dispatch(callbacks.finished, req.id, attempt, "connected", queue="default")
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
        if status in ("in-progress", "answered") and req.state == "connecting":
            req.state, req.updated_at = "connected", now()
            req.worker_call_sid = req.worker_call_sid or sid or None
        elif status in tflow.TERMINAL:
            if req.state == "connecting" and status != "completed":
                jobs.dispatch(callbacks.worker_unreachable, req.id, attempt, queue="default")
            elif req.state == "connected" or status == "completed":
                # Twilio reports `completed` only for an answered call: they did talk.
                jobs.dispatch(callbacks.finished, req.id, attempt, "connected", queue="default")
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
