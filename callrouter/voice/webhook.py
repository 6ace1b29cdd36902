"""What every voice webhook shares: the blueprint, the signature check, the form read into
safe values, the error handler, and the TwiML response.

Every URL here is reached only through URLs that the service itself hands to Twilio, built
from `PUBLIC_BASE_URL`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from flask import Blueprint, Response, abort, g, request
from werkzeug.exceptions import HTTPException

from callrouter import clock, jobs, metrics, services, signatures
from callrouter import twiml as twiml_doc
from callrouter.flows import speech
from callrouter.models import Call, Leg, Transfer
from callrouter.privacy import loggable_sid
from callrouter.store import calls as call_rows
from callrouter.twiml import Renderer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


bp = Blueprint("voice", __name__, url_prefix="/voice")

ID_FORM = re.compile(r"^[0-9a-f]{32}$")
SAFE = re.compile(r"[^0-9A-Za-z_.:-]")
DIGIT_RUN = re.compile(r"[0-9]{6,}")


def now() -> datetime:
    return clock.now()


@contextmanager
def transaction() -> Iterator[Session]:
    """The handler's one transaction. It commits when the block ends (also by `return`);
    jobs dispatched inside are enqueued only after the commit, so that a worker never runs
    one before the rows it reads exist."""
    svc = services.current()
    held: list = []
    g.held_jobs = held
    try:
        with svc.sessions.begin() as s:
            yield s
    finally:
        g.pop("held_jobs", None)
    for func, args, kwargs in held:
        jobs.dispatch(func, *args, **kwargs)


@bp.before_request
def verify_signature():
    svc = services.current()
    s = svc.settings
    tokens = [s.twilio_auth_token, s.twilio_auth_token_secondary or ""]
    if not signatures.is_valid(request, s.public_base_url, tokens):
        log.warning(
            "rejected %s %s: bad or missing X-Twilio-Signature",
            request.method,
            request.path[:80],
        )
        metrics.rejected(request.path)
        abort(403)
    return None


@bp.errorhandler(Exception)
def voice_error(exc):
    if isinstance(exc, HTTPException):
        return exc
    log.exception(
        "voice handler %s failed for call %s", request.path, loggable_sid(form_sid("CallSid"))
    )
    metrics.failed(request.path)
    return twiml(renderer().ask("/voice/retry", speech.ERROR, timeout=6))


def unrouted(exc: HTTPException):
    """App-level 404/405 handler: under /voice/ (no route, or a method the route lacks) an
    unsigned request is refused like any other (403) and a signed one gets calm Dutch TwiML
    with a way forward instead of an HTML error page (which Twilio reads as an application
    error); elsewhere Flask's own answer."""
    if not request.path.startswith(bp.url_prefix + "/"):
        return exc
    s = services.current().settings
    if not signatures.is_valid(
        request, s.public_base_url, [s.twilio_auth_token, s.twilio_auth_token_secondary or ""]
    ):
        metrics.rejected(request.path)
        return Response("", status=403)
    log.warning(
        "no voice route for %s %s (call %s)",
        request.method,
        request.path[:80],
        loggable_sid(form_sid("CallSid")),
    )
    return twiml(renderer().ask("/voice/retry", speech.ERROR, timeout=6))


@bp.after_request
def deferred(response):
    return jobs.run_after_response(response)


EMPTY = twiml_doc.EMPTY


def twiml(body: str) -> Response:
    return Response(body, mimetype="text/xml")


def renderer() -> Renderer:
    svc = services.current()
    return Renderer(svc.url, svc.directory.language, svc.directory.voice)


def form_sid(name: str) -> str:
    """A Twilio SID from the form, reduced to safe characters (it goes into URLs)."""
    return SAFE.sub("", request.form.get(name, ""))[:64]


def keyed(limit: int = 20) -> str:
    return "".join(ch for ch in request.form.get("Digits", "") if ch in "0123456789*#")[:limit]


def arg_id(name: str) -> str | None:
    value = request.args.get(name, "")
    return value if ID_FORM.match(value) else None


def arg_int(name: str, default: int = 0, hi: int = 10) -> int:
    value = request.args.get(name, "")
    return min(int(value), hi) if value.isdigit() else default


def arg_pos() -> int | None:
    value = request.args.get("pos", "")
    return int(value) if value.isdigit() and len(value) < 4 else None


def record_event(s, source: str, sid: str, event: str, sequence: int, **ids) -> bool:
    """Keep this webhook once; False when it was seen before (a duplicate delivery)."""
    return call_rows.record_event(s, source, sid, event, sequence, now(), detail(), **ids)


# Webhook fields worth keeping with an event; none of them holds a phone number or a name.
DETAIL_FIELDS = frozenset(
    (
        "CallStatus",
        "CallDuration",
        "Duration",
        "StatusCallbackEvent",
        "Timestamp",
        "ConferenceSid",
        "SequenceNumber",
        "ErrorCode",
        "AnsweredBy",
        "Reason",
        "DialCallStatus",
        "Hold",
        "Muted",
        "ParticipantLabel",
    )
)


def detail() -> dict:
    """The fields kept with an event. Twilio never puts a number in them, but a forged
    request could: runs of six digits or more are cut (a SID, which may have them, is kept
    only when well formed). One pass over the form's own fields (a look-up of each wanted
    name would miss most of them, and a miss costs the form an exception)."""
    form = request.form
    out = {k: DIGIT_RUN.sub("#", v[:64]) for k, v in form.items() if k in DETAIL_FIELDS}
    if "ConferenceSid" in out:
        out["ConferenceSid"] = loggable_sid(form["ConferenceSid"])
    return out


def form_sequence() -> int:
    value = request.form.get("SequenceNumber", "")
    return int(value) if value.isdigit() and len(value) < 10 else -1


def call_of_request(s) -> Call | None:
    sid = form_sid("CallSid")
    return call_rows.by_sid(s, sid) if sid else None


def identified_call(s) -> Call | None:
    """The call of a recognised front-desk worker (not a professional on the way back)."""
    call = call_of_request(s)
    if call is None or not call.caller_org or call.identified_by == "staff":
        return None
    return call


def transfer_and_leg(s):
    tr_id, leg_id = arg_id("tr"), arg_id("leg")
    tr = s.get(Transfer, tr_id) if tr_id else None
    leg = s.get(Leg, leg_id) if leg_id else None
    if tr is None or leg is None or leg.transfer_id != tr.id:
        return None, None
    return tr, leg


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


set_outcome = call_rows.set_outcome
