"""The supervisors' dashboard (server-rendered pages) and the read-only JSON API.

`init_app(app)` registers both blueprints, CSRF protection for the dashboard's forms, and the
security headers of every page and API answer. The voice webhooks are untouched by any of it.
"""

from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()


def init_app(app: Flask) -> None:
    from callrouter.dashboard import api, views

    # CSRF is checked by the dashboard's own before_request (views.py), never app-wide: the
    # voice webhooks are POSTs from Twilio, authenticated by their signature instead.
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # the token lives as long as the session
    settings = app.config["CALLROUTER_SETTINGS"]
    app.config.update(
        SESSION_COOKIE_NAME="callrouter_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.production,
    )
    csrf.init_app(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(api.bp)
