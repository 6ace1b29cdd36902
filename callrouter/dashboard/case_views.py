"""The cases' pages: the list, a case's detail, and the withdrawal of a consent."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for

from callrouter import clock, services
from callrouter.dashboard import queries
from callrouter.dashboard.blueprint import bp, current_org, current_principal, record
from callrouter.ldv import kinds as ldv
from callrouter.ldv import store as ldv_store
from callrouter.ldv.records import SUBJECT_CASE
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
    case = detail.case
    record(
        "view-case",
        obj=f"case:{case.reference}",
        ldv=[
            ldv.dashboard(
                svc.directory.register,
                "case-viewed",
                at=clock.now(),
                subject=case.id,
                subject_type=SUBJECT_CASE,
                case_id=case.id,
                links=ldv.case_link(case.call_id, case.id),
            )
        ],
    )
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
            at = clock.now()
            ok = cases.withdraw(s, consent.id, current_principal().actor, at)
            case = s.get(Case, consent.case_id)
            reference = case.reference
            if ok:
                ldv_store.write(
                    s,
                    [
                        ldv.consent_withdrawn(
                            svc.directory.register,
                            case_id=case.id,
                            opening_call_id=case.call_id,
                            consent_id=consent.id,
                            org=consent.target_org,
                            at=at,
                        )
                    ],
                )
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
