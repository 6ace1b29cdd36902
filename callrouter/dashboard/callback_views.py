"""The callback requests' page: open, done or all requests; cancel and reschedule one."""

from __future__ import annotations

from datetime import datetime

from flask import abort, flash, redirect, render_template, request, url_for

from callrouter import services
from callrouter.dashboard import dates, queries
from callrouter.dashboard.blueprint import bp, current_org, record


@bp.get("/callbacks")
def callbacks_page():
    svc = services.current()
    state = request.args.get("state", "open")
    if state not in ("open", "done", "all"):
        state = "open"
    cursor = queries.decode_cursor(request.args.get("cursor"))
    with svc.sessions() as s:
        rows, nxt = queries.callbacks_page(s, current_org(), state, cursor=cursor)
    return render_template(
        "dashboard/callbacks.html", rows=rows, next=nxt, state=state, first_page=cursor is None
    )


@bp.post("/callbacks/<request_id>/cancel")
def callback_cancel(request_id):
    from callrouter import callbacks

    svc = services.current()
    with svc.sessions() as s:
        req = queries.callback_in_scope(s, current_org(), request_id[:32])
    if req is None:
        record("cancel-callback", "denied", obj=f"callback:{request_id[:40]}")
        abort(404)
    ok = callbacks.cancel(req.id, by="supervisor")
    record("cancel-callback", "success" if ok else "failure", obj=f"callback:{req.reference}")
    flash(
        f"Terugbelverzoek {req.reference} is geannuleerd."
        if ok
        else f"Terugbelverzoek {req.reference} kan niet meer worden geannuleerd.",
        "ok" if ok else "error",
    )
    return redirect(url_for("dashboard.callbacks_page"))


@bp.post("/callbacks/<request_id>/reschedule")
def callback_reschedule(request_id):
    from callrouter import callbacks
    from callrouter.flows import callback as cflow

    svc = services.current()
    d = svc.directory
    with svc.sessions() as s:
        req = queries.callback_in_scope(s, current_org(), request_id[:32])
    if req is None:
        record("reschedule-callback", "denied", obj=f"callback:{request_id[:40]}")
        abort(404)
    try:
        local = datetime.fromisoformat(request.form.get("at", ""))
    except ValueError:
        flash("Vul een datum en tijd in, bijvoorbeeld 2026-12-01 09:00.", "error")
        return redirect(url_for("dashboard.callbacks_page"))
    dates.moment_in_window(local, "at")
    if local.tzinfo is None:
        local = local.replace(tzinfo=d.tz)
    line = d.line(req.line_id)
    planned = cflow.plan(d, line, d.caller(req.caller_org), local) if line else None
    ok = planned is not None and callbacks.reschedule(req.id, planned)
    record("reschedule-callback", "success" if ok else "failure", obj=f"callback:{req.reference}")
    if ok:
        flash(
            f"Terugbelverzoek {req.reference} is verplaatst naar "
            f"{planned.astimezone(d.tz):%d-%m-%Y %H:%M} (het eerste moment dat de lijn "
            "open is).",
            "ok",
        )
    else:
        flash(f"Terugbelverzoek {req.reference} kan niet worden verplaatst.", "error")
    return redirect(url_for("dashboard.callbacks_page"))
