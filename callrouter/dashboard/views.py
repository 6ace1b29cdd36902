"""The supervisors' dashboard: login, call log, call detail, callbacks, figures, live view.

Every page needs a live server-side session; every form carries a CSRF token; every answer
gets the security headers and `Cache-Control: no-store`. What a user sees is scoped by
`queries` to their organisation; an object outside it is a 404, the same as one that does
not exist.
"""

from __future__ import annotations

import csv
import io
import logging
from datetime import datetime, timedelta
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_from_directory,
    session,
    stream_with_context,
    url_for,
)
from flask_wtf.csrf import CSRFError, validate_csrf
from sqlalchemy import select
from wtforms import ValidationError

from callrouter import clock, services
from callrouter.dashboard import auth, queries
from callrouter.dashboard.csvsafe import safe_cell
from callrouter.flows.reference import grouped
from callrouter.models import Case

log = logging.getLogger(__name__)
bp = Blueprint("dashboard", __name__, url_prefix="/dashboard", template_folder="../templates")

ROOT = Path(__file__).resolve().parent.parent.parent
STATIC = Path(__file__).resolve().parent.parent / "static"
UTRECHT_CSS = ROOT / "node_modules" / "@utrecht" / "component-library-css" / "dist"
PUBLIC_ENDPOINTS = {"dashboard.login", "dashboard.assets"}
EXPORT_MAX = 100_000

CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def security_headers(response: Response) -> Response:
    """Headers of every dashboard page and API answer."""
    h = response.headers
    h.setdefault("Content-Security-Policy", CSP)
    h.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Referrer-Policy", "no-referrer")
    h.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if not request.endpoint or not request.endpoint.endswith(".assets"):
        h["Cache-Control"] = "no-store"
        h["Pragma"] = "no-cache"
    return response


def origin() -> str:
    return (request.remote_addr or "-")[:64]


def record(
    action: str,
    result: str = "success",
    obj: str | None = None,
    detail: dict | None = None,
    actor: str | None = None,
) -> None:
    """Write one audit entry in its own transaction (a failed read is audited too)."""
    svc = services.current()
    principal = g.get("principal")
    with svc.sessions.begin() as s:
        auth.audit(
            s,
            actor or (principal.actor if principal else "anonymous"),
            action,
            result,
            obj=obj,
            origin=origin(),
            detail=detail,
        )


@bp.before_request
def require_login():
    g.principal = None
    if request.endpoint == "dashboard.assets":
        return None
    svc = services.current()
    with svc.sessions.begin() as s:
        g.principal = auth.session_principal(s, session.get("sid"))
    if request.method == "POST":
        try:
            validate_csrf(request.form.get("csrf_token"))
        except ValidationError as exc:
            raise CSRFError(exc.args[0] if exc.args else "CSRF token invalid") from None
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if g.principal is None:
        session.pop("sid", None)
        if request.method == "GET" and request.endpoint:
            return redirect(url_for("dashboard.login", next=request.full_path))
        return redirect(url_for("dashboard.login"))
    return None


bp.after_request(security_headers)


@bp.errorhandler(CSRFError)
def csrf_failed(_exc):
    return render_template(
        "dashboard/error.html",
        title="Formulier verlopen",
        message="Het formulier is verlopen of ongeldig. Probeer het opnieuw.",
    ), 400


@bp.errorhandler(404)
def not_found(_exc):
    return render_template(
        "dashboard/error.html",
        title="Niet gevonden",
        message="Deze pagina of dit gegeven bestaat niet, of u heeft er geen toegang toe.",
    ), 404


@bp.app_context_processor
def template_globals():
    if not request.blueprint or request.blueprint != "dashboard":
        return {}
    svc = services.current()
    d = svc.directory

    def org_name(org_id):
        o = d.organisation(org_id) if org_id else None
        c = d.caller(org_id) if org_id and o is None else None
        return o.name if o else (c.name if c else (org_id or "-"))

    def line_name(line_id):
        ln = d.line(line_id) if line_id else None
        return ln.topic if ln else (line_id or "-")

    def line_org(line_id):
        ln = d.line(line_id) if line_id else None
        return ln.organisation_id if ln else None

    def local(moment, fmt="%d-%m-%Y %H:%M:%S"):
        return moment.astimezone(d.tz).strftime(fmt) if moment else "-"

    return {
        "principal": g.get("principal"),
        "org_name": org_name,
        "line_name": line_name,
        "line_org": line_org,
        "local": local,
        "OUTCOMES": queries.OUTCOMES,
        "status_nl": queries.status_nl,
        "grouped": grouped,
        "STEP_STATES": queries.CASE_STEP_STATES,
        "CONSENTS": queries.CONSENT_CHOICES,
        "RESULTS": queries.RESULTS,
        "CALLBACK_STATES": queries.CALLBACK_STATES,
    }


def _principal() -> auth.Principal:
    return g.principal


def _org() -> str | None:
    return _principal().org_id


# --------------------------------------------------------------------------- assets


@bp.get("/assets/<name>")
def assets(name):
    """The Utrecht component CSS (from npm at setup), our tokens, our layout and script."""
    if name == "utrecht.css":
        return send_from_directory(UTRECHT_CSS, "index.css", max_age=3600)
    if name in ("callrouter-tokens.css", "dashboard.css", "live.js"):
        return send_from_directory(STATIC, name, max_age=3600)
    abort(404)


# --------------------------------------------------------------------------- login


def _safe_next(target: str | None) -> str:
    # Only a path inside the dashboard: never an absolute or scheme-relative URL.
    if (
        target
        and target.startswith("/dashboard/")
        and not target.startswith("//")
        and "\\" not in target
    ):
        return target
    return url_for("dashboard.calls")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        if g.principal is not None:
            return redirect(url_for("dashboard.calls"))
        return render_template("dashboard/login.html", next=request.args.get("next", ""))
    email = request.form.get("email", "")[:254]
    password = request.form.get("password", "")[:1024]
    svc = services.current()
    with svc.sessions.begin() as s:
        result = auth.authenticate(s, email, password)
        actor = f"user:{email.strip().lower()[:100]}"
        if result.reason == "ok":
            old = session.get("sid")
            auth.end_session(s, old)
            session.clear()  # a new session id at login: no fixation
            session["sid"] = auth.start_session(s, result.user)
            session.permanent = False
            auth.audit(s, actor, "login", "success", origin=origin())
        else:
            auth.audit(
                s, actor, "login", "failure", origin=origin(), detail={"reason": result.reason}
            )
            if result.reason == "lockout":
                auth.audit(
                    s,
                    actor,
                    "lockout",
                    "success",
                    origin=origin(),
                    detail={"minutes": int(auth.LOCKOUT.total_seconds() // 60)},
                )
    if result.reason == "ok":
        log.info("dashboard login")
        return redirect(_safe_next(request.form.get("next")))
    message = (
        "Dit account is tijdelijk geblokkeerd na te veel mislukte pogingen. Probeer het "
        "over een kwartier opnieuw."
        if result.reason in ("locked", "lockout")
        else "E-mailadres of wachtwoord klopt niet."
    )
    return render_template(
        "dashboard/login.html", error=message, next=request.form.get("next", ""), email=email
    ), 401


@bp.post("/logout")
def logout():
    svc = services.current()
    with svc.sessions.begin() as s:
        auth.end_session(s, session.get("sid"))
        auth.audit(s, _principal().actor, "logout", "success", origin=origin())
    session.clear()
    return redirect(url_for("dashboard.login"))


@bp.get("/")
def index():
    return redirect(url_for("dashboard.calls"))


# --------------------------------------------------------------------------- call log


@bp.get("/calls")
def calls():
    svc = services.current()
    f, clean = queries.parse_filters(request.args, svc.directory)
    cursor = queries.decode_cursor(request.args.get("cursor"))
    with svc.sessions() as s:
        rows, nxt = queries.calls_page(s, _org(), f, cursor)
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
    org = _org()
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
        detail = queries.call_detail(s, _org(), call_id[:32], svc.directory)
    if detail is None:
        record("view-call", "denied", obj=f"call:{call_id[:40]}")
        abort(404)
    record("view-call", obj=f"call:{detail.call.id}")
    case_ref = None
    if detail.call.case_id:
        with svc.sessions() as s:
            case = s.scalar(
                select(Case).where(Case.id == detail.call.case_id, queries.case_scope(_org()))
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
            if t.direction is None and (_org() is None or t.target_org == _org())
        },
    )


CSV_COLUMNS = (
    "ontvangen",
    "gemeente",
    "organisatie",
    "lijn",
    "uitkomst",
    "spoed",
    "toestemming",
    "nummer (gemaskeerd)",
    "wachttijd tot aannemen (s)",
    "minuten bespaard",
    "duur (s)",
)


@bp.get("/calls.csv")
def export():
    svc = services.current()
    f, clean = queries.parse_filters(request.args, svc.directory)
    tz = svc.directory.tz
    record("export", obj="calls.csv", detail={"filters": clean})
    org = _org()

    def rows():
        buf = io.StringIO()
        writer = csv.writer(buf, delimiter=";")
        writer.writerow(CSV_COLUMNS)
        with svc.sessions() as s:
            batch = []
            for call in queries.calls_for_export(s, org, f, EXPORT_MAX):
                batch.append(call)
                if len(batch) >= 500:
                    _write(s, writer, batch, tz)
                    batch = []
                    yield buf.getvalue()
                    buf.seek(0)
                    buf.truncate()
            _write(s, writer, batch, tz)
        yield buf.getvalue()

    stamp = clock.now().astimezone(tz).strftime("%Y%m%d-%H%M")
    return Response(
        stream_with_context(rows()),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="callrouter-gesprekken-{stamp}.csv"'
        },
    )


def _write(s, writer, calls, tz) -> None:
    summary = queries.call_summaries(s, calls)
    for c in calls:
        tta, saved = summary[c.id]
        writer.writerow(
            [
                safe_cell(v)
                for v in (
                    c.received_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
                    c.caller_org or "",
                    c.target_org or "",
                    c.line_id or "",
                    c.outcome or "",
                    "ja" if c.urgent else "nee",
                    "ja" if c.consent else "nee",
                    c.from_masked or "",
                    "" if tta is None else f"{tta:.0f}",
                    f"{saved:.0f}" if saved else "",
                    c.duration_s if c.duration_s is not None else "",
                )
            ]
        )


@bp.post("/transfers/<transfer_id>/wrong-line")
def transfer_wrong_line(transfer_id):
    """An agency supervisor marks a transfer to one of its lines as the wrong line."""
    from sqlalchemy import update

    from callrouter.models import Transfer

    svc = services.current()
    d = svc.directory
    org = _org()
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


# --------------------------------------------------------------------------- cases


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
        rows, nxt = queries.cases_page(s, _org(), f.since, f.until, None, event, cursor)
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
        detail = queries.case_detail(s, _org(), case_id[:32], svc.directory)
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
        consent = queries.consent_in_scope(s, _org(), case_id[:32], consent_id[:32])
        if consent is None:
            ok = None
        else:
            ok = cases.withdraw(s, consent.id, _principal().actor, clock.now())
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


# --------------------------------------------------------------------------- callbacks


@bp.get("/callbacks")
def callbacks_page():
    svc = services.current()
    state = request.args.get("state", "open")
    if state not in ("open", "done", "all"):
        state = "open"
    cursor = queries.decode_cursor(request.args.get("cursor"))
    with svc.sessions() as s:
        rows, nxt = queries.callbacks_page(s, _org(), state, cursor=cursor)
    return render_template(
        "dashboard/callbacks.html", rows=rows, next=nxt, state=state, first_page=cursor is None
    )


@bp.post("/callbacks/<request_id>/cancel")
def callback_cancel(request_id):
    from callrouter import callbacks

    svc = services.current()
    with svc.sessions() as s:
        req = queries.callback_in_scope(s, _org(), request_id[:32])
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
        req = queries.callback_in_scope(s, _org(), request_id[:32])
    if req is None:
        record("reschedule-callback", "denied", obj=f"callback:{request_id[:40]}")
        abort(404)
    try:
        local = datetime.fromisoformat(request.form.get("at", ""))
    except ValueError:
        flash("Vul een datum en tijd in, bijvoorbeeld 2026-12-01 09:00.", "error")
        return redirect(url_for("dashboard.callbacks_page"))
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


# --------------------------------------------------------------------------- figures


MAX_FIGURE_DAYS = 400


@bp.get("/figures")
def figures_page():
    svc = services.current()
    tz = svc.directory.tz
    today = clock.now().astimezone(tz).date()
    last = queries.parse_day(request.args.get("to")) or today
    first = queries.parse_day(request.args.get("from")) or last - timedelta(days=27)
    if first > last:
        first, last = last, first
    first = max(first, last - timedelta(days=MAX_FIGURE_DAYS))
    per = request.args.get("per", "day")
    if per not in ("day", "week"):
        per = "day"
    with svc.sessions() as s:
        fig = queries.figures(s, _org(), svc.directory, first, last, per)
        case_fig = queries.case_figures_days(s, _org(), svc.directory, first, last)
    peak = max([b.calls for b in fig.periods] + [1])
    events = {e.id: e.name for e in svc.directory.life_events}
    return render_template(
        "dashboard/figures.html",
        fig=fig,
        first=first,
        last=last,
        per=per,
        peak=peak,
        cf=case_fig,
        event_names=events,
    )


# --------------------------------------------------------------------------- network


@bp.get("/network")
def network_page():
    """The learning network: evidence per line (with a heat map), per speech term and per
    combination of lines, and the suggested changes to the directory. Supervisors see their
    own scope with small cells hidden; admins see everything."""
    from callrouter import network

    svc = services.current()
    d = svc.directory
    today = clock.now().astimezone(d.tz).date()
    last = queries.parse_day(request.args.get("to")) or today - timedelta(days=1)
    first = queries.parse_day(request.args.get("from")) or last - timedelta(days=89)
    if first > last:
        first, last = last, first
    first = max(first, last - timedelta(days=MAX_FIGURE_DAYS))
    with svc.sessions() as s:
        report = network.collect(
            s,
            d,
            queries.day_start(first, d.tz),
            queries.day_start(last + timedelta(days=1), d.tz),
            _org(),
        )
    admin = _principal().is_admin
    data = network.as_dict(report, d, admin)
    if not admin:
        data["suggestions"] = []  # changes to the directory are the administrators' business
    return render_template(
        "dashboard/network.html",
        data=data,
        first=first,
        last=last,
        admin=admin,
        weekdays=network.WEEKDAYS,
    )


# --------------------------------------------------------------------------- live


@bp.get("/live")
def live():
    return render_template("dashboard/live.html", rows=_live_rows(), now=clock.now())


@bp.get("/live/rows")
def live_rows():
    return render_template("dashboard/_live_rows.html", rows=_live_rows(), now=clock.now())


def _live_rows():
    svc = services.current()
    with svc.sessions() as s:
        return queries.live_transfers(s, _org(), clock.now())
