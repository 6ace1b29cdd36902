"""The supervisors' dashboard: login, call log, call detail, callbacks, figures, live view.

All pages are views of one blueprint, `bp` (blueprint.py: the session, CSRF and header checks
every page shares). The account pages and the assets are here; the other pages live in one
module per feature, imported here so that their routes are on `bp` before `init_app`
registers it:

- call_views.py: the call log, a call's detail, marking a transfer as the wrong line
- export_views.py: the call log as CSV
- case_views.py: cases and the withdrawal of a consent
- callback_views.py: callback requests (cancel, reschedule)
- report_views.py: the figures, the learning network, the live view
- privacy_views.py: the subject's own view and erasure (administrators)
"""

from __future__ import annotations

import logging
from pathlib import Path

from flask import (
    abort,
    g,
    redirect,
    render_template,
    request,
    send_from_directory,
    session,
    url_for,
)

from callrouter import services
from callrouter.dashboard import (
    auth,
    call_views,
    callback_views,
    case_views,
    export_views,
    privacy_views,
    report_views,
)
from callrouter.dashboard.blueprint import bp, current_principal, origin, unmatched

__all__ = [
    "bp",
    "call_views",
    "callback_views",
    "case_views",
    "export_views",
    "privacy_views",
    "report_views",
    "unmatched",
]

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent.parent
STATIC = Path(__file__).resolve().parent.parent / "static"
UTRECHT_CSS = ROOT / "node_modules" / "@utrecht" / "component-library-css" / "dist"


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
    address = origin()
    throttled = auth.address_throttled(svc.redis, address)
    with svc.sessions.begin() as s:  # the attempt is taken and committed before the check
        claim = auth.claim_attempt(s, email, throttled=throttled)
    ok = auth.check_password(claim, password)
    with svc.sessions.begin() as s:
        result = auth.finish_attempt(s, claim, ok, password)
        actor = f"user:{email.strip().lower()[:100]}"
        if result.reason == "ok":
            old = session.get("sid")
            auth.end_session(s, old)
            session.clear()  # a new session id at login: no fixation
            session["sid"] = auth.start_session(s, result.user)
            session.permanent = False
            auth.audit(s, actor, "login", "success", origin=address)
        else:
            auth.audit(
                s, actor, "login", "failure", origin=address, detail={"reason": result.reason}
            )
            if result.reason == "lockout":
                auth.audit(
                    s,
                    actor,
                    "lockout",
                    "success",
                    origin=address,
                    detail={"minutes": int(auth.LOCKOUT.total_seconds() // 60)},
                )
    if result.reason == "ok":
        log.info("dashboard login")
        return redirect(_safe_next(request.form.get("next")))
    auth.count_address_failure(svc.redis, address)
    # One answer for every failure, known account or not: nothing tells whether an address
    # has an account, or whether it is locked.
    return render_template(
        "dashboard/login.html",
        error=LOGIN_FAILED,
        next=request.form.get("next", ""),
        email=email,
    ), 401


LOGIN_FAILED = (
    "Inloggen is niet gelukt: het e-mailadres of het wachtwoord klopt niet, of er is te vaak "
    "geprobeerd. Probeer het opnieuw, of over een kwartier."
)


@bp.post("/logout")
def logout():
    svc = services.current()
    with svc.sessions.begin() as s:
        auth.end_session(s, session.get("sid"))
        auth.audit(s, current_principal().actor, "logout", "success", origin=origin())
    session.clear()
    return redirect(url_for("dashboard.login"))


@bp.get("/")
def index():
    return redirect(url_for("dashboard.calls"))
