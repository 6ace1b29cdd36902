"""The call log's pages: the list (filtered, keyset-paginated), a call's detail, and an
agency supervisor marking a transfer as the wrong line."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from callrouter import clock, figures, services
from callrouter.dashboard import queries
from callrouter.dashboard.blueprint import bp, current_org, record
from callrouter.dashboard.scopes import case_scope
from callrouter.ldv import kinds as ldv
from callrouter.ldv.records import root_span
from callrouter.models import Case


@bp.get("/calls")
def calls():
    svc = services.current()
    f, clean = queries.parse_filters(request.args, svc.directory)
    cursor = queries.decode_cursor(request.args.get("cursor"))
    with svc.sessions() as s:
        rows, nxt = queries.calls_page(s, current_org(), f, cursor)
        summary = queries.call_summaries(s, rows)
    return render_template(
        "dashboard/calls.html",
        rows=rows,
        summary=summary,
        next=nxt,
        filters=clean,
        first_page=cursor is None,
        choices=_filter_choices(),
    )


def _filter_choices() -> dict:
    """What a user can filter on within their scope: a municipality chooses among the
    organisations it calls, an agency among the municipalities calling it and its own lines."""
    d = services.current().directory
    org = current_org()
    is_caller = org is None or d.caller(org) is not None
    is_target = org is None or d.organisation(org) is not None
    callers = [c for c in d.callers if is_target or c.id == org]
    targets = [o for o in d.organisations if is_caller or o.id == org]
    return {
        "callers": [(c.id, c.name) for c in callers],
        "targets": [(o.id, o.name) for o in targets],
        "lines": [(ln.id, f"{o.name}: {ln.topic}") for o in targets for ln in o.lines],
    }


@bp.get("/calls/<call_id>")
def call_detail(call_id):
    svc = services.current()
    with svc.sessions() as s:
        detail = queries.call_detail(s, current_org(), call_id[:32], svc.directory)
    if detail is None:
        record("view-call", "denied", obj=f"call:{call_id[:40]}")
        abort(404)
    call = detail.call
    record(
        "view-call",
        obj=f"call:{call.id}",
        ldv=[
            ldv.dashboard(
                svc.directory.register,
                "call-viewed",
                at=clock.now(),
                subject=call.from_hmac,
                case_id=call.case_id,
                attributes={"callrouter.call_id": call.id},
                links=[(call.id, root_span(call.id))],
            )
        ],
    )
    case_ref = None
    if detail.call.case_id:
        with svc.sessions() as s:
            case = s.scalar(
                select(Case).where(Case.id == detail.call.case_id, case_scope(current_org()))
            )
            case_ref = (case.id, case.reference) if case is not None else None
    d = svc.directory
    lines = [(ln.id, f"{d.organisation(ln.organisation_id).name}: {ln.topic}") for ln in d.lines]
    return render_template(
        "dashboard/call.html",
        d=detail,
        case_ref=case_ref,
        lines=lines,
        can_mark={
            t.id
            for t in detail.transfers
            if t.direction is None and (current_org() is None or t.target_org == current_org())
        },
    )


@bp.post("/transfers/<transfer_id>/wrong-line")
def transfer_wrong_line(transfer_id):
    """An agency supervisor marks a transfer to one of its lines as the wrong line."""
    from sqlalchemy import update

    from callrouter.models import Transfer

    svc = services.current()
    d = svc.directory
    org = current_org()
    right = d.line(request.form.get("line"))
    with svc.sessions.begin() as s:
        q = select(Transfer).where(Transfer.id == transfer_id[:32], Transfer.direction.is_(None))
        if org is not None:
            q = q.where(Transfer.target_org == org)  # only the receiving organisation
        tr = s.scalar(q)
        if tr is not None and right is not None:
            s.execute(
                update(Transfer)
                .where(Transfer.id == tr.id)
                .values(
                    result="wrong-line",
                    result_by="supervisor",
                    result_at=clock.now(),
                    right_org=right.organisation_id,
                    right_line=right.id,
                )
            )
            # The day's stored network evidence no longer holds: read it from the call log.
            figures.forget_day(s, d.tz, tr.created_at)
        call_id = tr.call_id if tr is not None else None
    if tr is None:
        record("mark-wrong-line", "denied", obj=f"transfer:{transfer_id[:40]}")
        abort(404)
    if right is None:
        flash("Kies de lijn waar het gesprek had moeten uitkomen.", "error")
    else:
        record("mark-wrong-line", obj=f"transfer:{tr.id}", detail={"right_line": right.id})
        flash("De doorverbinding is gemarkeerd als verkeerde lijn.", "ok")
    return redirect(url_for("dashboard.call_detail", call_id=call_id))
