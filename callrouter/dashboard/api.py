"""The read-only JSON API: `GET /api/v1/transfers`, `/api/v1/callbacks` and `/api/v1/cases`.

Bearer tokens (`flask --app app tokens create`) are scoped like users. Filters: `since` and
`until` (ISO date or date-time; local time without an offset), `organisation` (either side),
`limit` (1-500, default 50) and `cursor` (from the previous page's `next_cursor`). Every read is
audited. Phone numbers appear masked only.
"""

from __future__ import annotations

from flask import Blueprint, g, jsonify, make_response, request

from callrouter import services
from callrouter.dashboard import auth, queries
from callrouter.dashboard.blueprint import origin, security_headers
from callrouter.dashboard.dates import DateOutOfRange
from callrouter.ldv.records import case_traceparent, transfer_traceparent

bp = Blueprint("api", __name__, url_prefix="/api/v1")
bp.after_request(security_headers)


def _iso(moment):
    return moment.isoformat() if moment else None


@bp.before_request
def require_token():
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else None
    svc = services.current()
    with svc.sessions.begin() as s:
        g.principal = auth.token_principal(s, token)
        if g.principal is None:
            auth.audit(
                s, "anonymous", "api-read", "denied", obj=request.path[:120], origin=origin()
            )
    if g.principal is None:
        resp = jsonify(
            error="unauthorized", message="Send a valid API token: Authorization: Bearer <token>."
        )
        resp.status_code = 401
        resp.headers["WWW-Authenticate"] = 'Bearer realm="callrouter"'
        return resp
    return None


@bp.errorhandler(404)
def not_found(_exc):
    return jsonify(error="not_found"), 404


@bp.errorhandler(405)
def not_allowed(_exc):
    return jsonify(error="method_not_allowed", message="The API is read-only."), 405


def unmatched(exc):
    """A path under /api/v1/ that no route matches: the API's JSON error and headers."""
    body, status = not_allowed(exc) if exc.code == 405 else not_found(exc)
    return security_headers(make_response(body, status))


class BadRequest(Exception):
    pass


@bp.errorhandler(DateOutOfRange)
def date_out_of_range(exc: DateOutOfRange):
    return jsonify(error="bad_request", message=exc.description), 400


@bp.errorhandler(BadRequest)
def bad_request(exc):
    return jsonify(error="bad_request", message=str(exc)), 400


def _params():
    d = services.current().directory
    args = request.args
    since = queries.parse_instant(args.get("since"), d.tz, "since")
    until = queries.parse_instant(args.get("until"), d.tz, "until")
    if args.get("since") and since is None:
        raise BadRequest("since: an ISO date or date-time, e.g. 2026-11-30 or 2026-11-30T08:00")
    if args.get("until") and until is None:
        raise BadRequest("until: an ISO date or date-time, e.g. 2026-11-30T17:00")
    org = args.get("organisation") or None
    if org and d.caller(org) is None and d.organisation(org) is None:
        raise BadRequest("organisation: not a caller or organisation id of the directory")
    raw_limit = args.get("limit", "50")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= queries.API_PAGE_MAX:
        raise BadRequest(f"limit: a whole number from 1 to {queries.API_PAGE_MAX}")
    cursor = None
    if args.get("cursor"):
        cursor = queries.decode_cursor(args["cursor"])
        if cursor is None:
            raise BadRequest("cursor: use the next_cursor of the previous page")
    return since, until, org, cursor, int(raw_limit)


def _audit(count: int) -> None:
    svc = services.current()
    with svc.sessions.begin() as s:
        auth.audit(
            s,
            g.principal.actor,
            "api-read",
            "success",
            obj=request.path[:120],
            origin=origin(),
            detail={"rows": count, "query": request.query_string.decode()[:300]},
        )


@bp.get("/transfers")
def transfers():
    since, until, org, cursor, limit = _params()
    svc = services.current()
    with svc.sessions() as s:
        rows, nxt = queries.transfers_page(s, g.principal.org_id, since, until, org, cursor, limit)
    _audit(len(rows))
    return jsonify(
        data=[
            {
                "id": t.id,
                "call_id": t.call_id,
                "case_id": t.case_id,
                "caller_organisation": t.caller_org,
                "organisation": t.target_org,
                "line": t.line_id,
                "urgent": t.urgent,
                "consent": t.consent,
                "state": t.state,
                "outcome": t.outcome,
                "created_at": _iso(t.created_at),
                "ringing_at": _iso(t.ringing_at),
                "accepted_at": _iso(t.accepted_at),
                "citizen_added_at": _iso(t.citizen_added_at),
                "worker_left_at": _iso(t.worker_left_at),
                "ended_at": _iso(t.ended_at),
                "time_to_answer_s": t.time_to_answer_s,
                "duration_s": t.duration_s,
                "minutes_saved": t.minutes_saved,
                "consent_level": t.consent_level,
                "result": t.result,
                "result_by": t.result_by,
                "right_organisation": t.right_org,
                "right_line": t.right_line,
                # W3C Trace Context of the context shared with the organisation (its LDV
                # record): the receiving organisation's own systems continue this trace.
                "traceparent": transfer_traceparent(t.call_id, t.id),
            }
            for t in rows
        ],
        next_cursor=nxt,
    )


@bp.get("/callbacks")
def callbacks():
    since, until, org, cursor, limit = _params()
    state = request.args.get("state", "all")
    if state not in ("open", "done", "all"):
        raise BadRequest("state: open, done or all")
    svc = services.current()
    with svc.sessions() as s:
        rows, nxt = queries.callbacks_page(
            s, g.principal.org_id, state, since, until, org, cursor, limit
        )
    _audit(len(rows))
    return jsonify(
        data=[
            {
                "id": r.id,
                "reference": r.reference,
                "call_id": r.call_id,
                "case_id": r.case_id,
                "transfer_id": r.transfer_id,
                "caller_organisation": r.caller_org,
                "organisation": r.target_org,
                "line": r.line_id,
                "urgent": r.urgent,
                "consent": r.consent,
                "reason": r.reason,
                "state": r.state,
                "outcome": r.outcome,
                "worker": r.worker_masked,
                "requested_at": _iso(r.requested_at),
                "planned_at": _iso(r.planned_at),
                "attempts": r.attempts,
                "done_at": _iso(r.done_at),
            }
            for r in rows
        ],
        next_cursor=nxt,
    )


@bp.get("/cases")
def cases():
    """Cases with their steps, consents, transfers and callback requests."""
    since, until, org, cursor, limit = _params()
    svc = services.current()
    with svc.sessions() as s:
        rows, nxt = queries.cases_page(
            s,
            g.principal.org_id,
            since,
            until,
            org,
            request.args.get("life_event") or None,
            cursor,
            limit,
        )
        parts = queries.case_parts(s, [c.id for c in rows])
    _audit(len(rows))
    return jsonify(
        data=[
            {
                "id": c.id,
                "reference": c.reference,
                "caller_organisation": c.caller_org,
                "life_event": c.life_event,
                "state": c.state,
                "worker": c.worker_masked,
                "opened_at": _iso(c.opened_at),
                "traceparent": case_traceparent(c.call_id, c.id),
                "steps": [
                    {
                        "position": st.position,
                        "organisation": st.target_org,
                        "line": st.line_id,
                        "reason": st.reason,
                        "state": st.state,
                        "transfer_id": st.transfer_id,
                        "callback_id": st.callback_id,
                    }
                    for st in parts[c.id]["steps"]
                ],
                "consents": [
                    {
                        "id": cs.id,
                        "organisation": cs.target_org,
                        "choice": cs.choice,
                        "recorded_at": _iso(cs.recorded_at),
                        "recorded_by_organisation": cs.recorded_by_org,
                        "withdrawn_at": _iso(cs.withdrawn_at),
                    }
                    for cs in parts[c.id]["consents"]
                ],
                "transfers": [
                    {
                        "id": t.id,
                        "organisation": t.target_org,
                        "line": t.line_id,
                        "outcome": t.outcome,
                        "direction": t.direction or "to-organisation",
                        "consent": t.consent_level,
                        "result": t.result,
                        "right_line": t.right_line,
                        "created_at": _iso(t.created_at),
                        "traceparent": transfer_traceparent(t.call_id, t.id),
                    }
                    for t in parts[c.id]["transfers"]
                ],
                "callbacks": [
                    {"id": r.id, "reference": r.reference, "line": r.line_id, "state": r.state}
                    for r in parts[c.id]["callbacks"]
                ],
            }
            for c in rows
        ],
        next_cursor=nxt,
    )
