"""The dashboard's blueprint and what all its pages share.

Every page needs a live server-side session; every form carries a CSRF token; every answer
gets the security headers and `Cache-Control: no-store`. What a user sees is scoped by
`queries` to their organisation; an object outside it is a 404, the same as one that does
not exist. The pages themselves are in views.py and the *_views.py modules it imports.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFError, validate_csrf
from wtforms import ValidationError

from callrouter import services
from callrouter.dashboard import auth, case_queries, queries
from callrouter.dashboard.dates import DateOutOfRange
from callrouter.flows.reference import grouped
from callrouter.ldv.records import case_traceparent, transfer_traceparent

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard", template_folder="../templates")

PUBLIC_ENDPOINTS = {"dashboard.login", "dashboard.assets"}

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
    ldv: list[dict] | None = None,
) -> None:
    """Write one audit entry in its own transaction (a failed read is audited too), with the
    LDV records of what was processed (the audit entry names who; the records name whose)."""
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
        if ldv:
            from callrouter.ldv import store as ldv_store

            ldv_store.write(s, ldv)


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


@bp.errorhandler(DateOutOfRange)
def date_out_of_range(exc: DateOutOfRange):
    return render_template(
        "dashboard/error.html", title="Datum buiten bereik", message=exc.dutch
    ), 400


@bp.errorhandler(404)
def not_found(_exc):
    return render_template(
        "dashboard/error.html",
        title="Niet gevonden",
        message="Deze pagina of dit gegeven bestaat niet, of u heeft er geen toegang toe.",
    ), 404


def unmatched(exc):
    """A path under /dashboard/ that no route matches (or a method it lacks): the dashboard's
    own error page, with the headers of every dashboard answer."""
    if exc.code == 405:
        body = render_template(
            "dashboard/error.html",
            title="Niet toegestaan",
            message="Deze handeling kan op deze pagina niet.",
        )
        response = make_response(body, 405)
        if getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)
    else:
        response = make_response(not_found(exc))
    return security_headers(response)


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

    def minutes(seconds):
        """A duration as a person reads it: `4 min 05 s`, `35 s`."""
        whole = int(round(seconds))
        return f"{whole // 60} min {whole % 60:02d} s" if whole >= 60 else f"{whole} s"

    def local(moment, fmt="%d-%m-%Y %H:%M:%S"):
        return moment.astimezone(d.tz).strftime(fmt) if moment else "-"

    return {
        "principal": g.get("principal"),
        "org_name": org_name,
        "line_name": line_name,
        "line_org": line_org,
        "local": local,
        "minutes": minutes,
        "step_state": case_queries.step_state,
        "OUTCOMES": queries.OUTCOMES,
        "status_nl": queries.status_nl,
        "grouped": grouped,
        "STEP_STATES": queries.CASE_STEP_STATES,
        "CONSENTS": queries.CONSENT_CHOICES,
        "RESULTS": queries.RESULTS,
        "CALLBACK_STATES": queries.CALLBACK_STATES,
        "transfer_traceparent": transfer_traceparent,
        "case_traceparent": case_traceparent,
    }


def current_principal() -> auth.Principal:
    """The signed-in user of this request (set by `require_login`)."""
    return g.principal


def current_org() -> str | None:
    """The signed-in user's organisation, None for an admin: the scope of every read."""
    return current_principal().org_id
