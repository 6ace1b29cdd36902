"""The supervisors' dashboard (server-rendered pages) and the read-only JSON API.

`init_app(app)` registers both blueprints and the CSRF token of the dashboard's forms; the
blueprints add the security headers of every page and API answer. The voice webhooks are
untouched by any of it.
"""

from __future__ import annotations

from flask import Flask

from callrouter import unmatched


def init_app(app: Flask) -> None:
    from flask_wtf.csrf import generate_csrf

    from callrouter.dashboard import api, views

    # CSRF tokens come from Flask-WTF, checked by the dashboard's own before_request
    # (blueprint.py) only: no app-wide hook, so the voice webhooks (POSTs from Twilio,
    # authenticated by their signature) pay nothing for it.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # the token lives as long as the session
    settings = app.config["CALLROUTER_SETTINGS"]
    app.config.update(
        SESSION_COOKIE_NAME="callrouter_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.production,
    )
    app.jinja_env.globals["csrf_token"] = generate_csrf
    app.register_blueprint(views.bp)
    app.register_blueprint(api.bp)
    unmatched.answer(app, api.bp.url_prefix + "/", api.unmatched)
    unmatched.answer(app, views.bp.url_prefix + "/", views.unmatched)
