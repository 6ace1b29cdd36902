"""The cases' pages: the list, a case's detail, and the withdrawal of a consent."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for

from callrouter import clock, services
from callrouter.dashboard import queries
from callrouter.dashboard.blueprint import bp, current_org, current_principal, record
from callrouter.models import Case


@bp.get("/cases")
def cases_list():
    svc = services.current()
    d = svc.directory
    f, clean = queries.parse_filters(request.args, d)
    event = request.args.get("event") or None
    if event and d.life_event(event) is None:
        event = None
    if event:
        clean["event"] = event
    cursor = queries.decode_cursor(request.args.get("cursor"))
    with svc.sessions() as s:
        rows, nxt = queries.cases_page(s, current_org(), f.since, f.until, None, event, cursor)
        parts = queries.case_parts(s, [c.id for c in rows])
    return render_template(
        "dashboard/cases.html",
        rows=rows,
        parts=parts,
        next=nxt,
        filters=clean,
        first_page=cursor is None,
        events=[(e.id, e.name) for e in d.life_events],
    )


@bp.get("/cases/<case_id>")
def case_page(case_id):
    svc = services.current()
    with svc.sessions() as s:
        detail = queries.case_detail(s, current_org(), case_id[:32], svc.directory)
    if detail is None:
        record("view-case", "denied", obj=f"case:{case_id[:40]}")
        abort(404)
    record("view-case", obj=f"case:{detail.case.reference}")
    event = svc.directory.life_event(detail.case.life_event)
    return render_template("dashboard/case.html", d=detail, event=event)


@bp.post("/cases/<case_id>/consents/<consent_id>/withdraw")
def consent_withdraw(case_id, consent_id):
    """The citizen withdraws a consent: recorded (who, when); later transfers respect it."""
    from callrouter import cases

    svc = services.current()
    with svc.sessions.begin() as s:
        consent = queries.consent_in_scope(s, current_org(), case_id[:32], consent_id[:32])
        if consent is None:
            ok = None
        else:
            ok = cases.withdraw(s, consent.id, current_principal().actor, clock.now())
            reference = s.get(Case, consent.case_id).reference
    if ok is None:
        record("withdraw-consent", "denied", obj=f"consent:{consent_id[:40]}")
        abort(404)
    record(
        "withdraw-consent",
        "success" if ok else "failure",
        obj=f"case:{reference}",
        detail={"organisation": consent.target_org},
    )
    flash(
        "De toestemming is ingetrokken. Latere doorverbindingen van deze zaak naar deze "
        "organisatie delen alleen het onderwerp."
        if ok
        else "Deze toestemming was al ingetrokken.",
        "ok" if ok else "error",
    )
    return redirect(url_for("dashboard.case_page", case_id=case_id[:32]))
