"""The REST subset of Twilio's 2010 API that callrouter uses, served by the sandbox provider.

Mounted under `/sandbox/api`, so `TWILIO_API_BASE_URL=<base>/sandbox/api` points the service's
own adapter (the twilio SDK) at it. Requests are checked with HTTP Basic auth as Twilio does.
"""

from __future__ import annotations

import hmac
from contextlib import nullcontext

from flask import Blueprint, current_app, jsonify, request

from callrouter.sandbox.provider import Sandbox

bp = Blueprint("sandbox_api", __name__, url_prefix="/sandbox/api/2010-04-01/Accounts/<account>")


def _sandbox() -> Sandbox:
    return current_app.extensions["callrouter.sandbox"]


def _locked():
    """The sandbox server's lock (its driver thread runs calls meanwhile), if it has one."""
    return current_app.extensions.get("callrouter.sandbox.lock") or nullcontext()


@bp.before_request
def authenticate():
    auth = request.authorization
    account_sid, token = current_app.extensions["callrouter.sandbox.auth"]
    account = (request.view_args or {}).get("account", "")
    ok = (
        auth is not None
        and auth.username == account_sid == account
        and hmac.compare_digest(auth.password or "", token)
    )
    if not ok:
        return jsonify(code=20003, message="Authenticate", status=401), 401
    return None


def _call_json(call, code=200):
    return jsonify(
        sid=call.sid,
        account_sid=_sandbox().account_sid,
        to=call.to,
        **{"from": call.from_},
        status=call.status,
        direction=call.direction,
        api_version="2010-04-01",
    ), code


@bp.post("/Calls.json")
def create_call(account):
    form = request.form.to_dict()
    form["StatusCallbackEvent"] = " ".join(request.form.getlist("StatusCallbackEvent"))
    if not form.get("To") or not form.get("From") or not form.get("Url"):
        return jsonify(code=21205, message="To, From and Url are required", status=400), 400
    with _locked():
        return _call_json(_sandbox().create_call(form), 201)


@bp.get("/Calls.json")
def list_calls(account):
    calls = [
        {
            "sid": c.sid,
            "status": c.status,
            "to": c.to,
            "from": c.from_,
            "direction": c.direction,
            "account_sid": account,
        }
        for c in _sandbox().calls.values()
    ]
    return jsonify(calls=calls, page=0, page_size=len(calls), next_page_uri=None, uri=request.path)


@bp.post("/Calls/<sid>.json")
def update_call(account, sid):
    with _locked():
        call = _sandbox().update_call(sid, request.form.to_dict())
    if call is None:
        return jsonify(code=20404, message="not found", status=404), 404
    return _call_json(call)


@bp.post("/Conferences/<conference>/Participants.json")
def add_participant(account, conference):
    form = request.form.to_dict()
    form["StatusCallbackEvent"] = " ".join(request.form.getlist("StatusCallbackEvent"))
    with _locked():
        call = _sandbox().add_participant(conference, form)
    return jsonify(
        call_sid=call.sid, conference_sid=conference, account_sid=account, status="queued"
    ), 201


@bp.post("/Conferences/<conference_sid>/Participants/<call_sid>.json")
def update_participant(account, conference_sid, call_sid):
    with _locked():
        found = _sandbox().update_participant(conference_sid, call_sid, request.form.to_dict())
    if not found:
        return jsonify(code=20404, message="not found", status=404), 404
    return jsonify(
        call_sid=call_sid,
        conference_sid=conference_sid,
        account_sid=account,
        hold=request.form.get("Hold") == "true",
    )


@bp.post("/Conferences/<sid>.json")
def update_conference(account, sid):
    with _locked():
        found = _sandbox().end_conference(sid)
    if not found:
        return jsonify(code=20404, message="not found", status=404), 404
    return jsonify(sid=sid, account_sid=account, status="completed")


@bp.post("/Messages.json")
def create_message(account):
    with _locked():
        msg = _sandbox().send_message(request.form.to_dict())
    return jsonify(account_sid=account, **msg), 201
