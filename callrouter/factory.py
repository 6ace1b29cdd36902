"""The application factory: settings -> directory -> services -> blueprints -> commands."""

from __future__ import annotations

import sys
from collections.abc import Mapping

from flask import Flask
from flask.sessions import SecureCookieSessionInterface

from callrouter import directory as directory_mod
from callrouter.request import Request
from callrouter.settings import Settings, from_env


def create_app(
    test_config: Mapping | None = None, environ: Mapping[str, str] | None = None, adapter=None
) -> Flask:
    """Build the web application.

    `environ` replaces the process environment (tests pass their own); `test_config` is merged
    into Flask's config; `adapter` replaces the telephony adapter.
    """
    settings = from_env(environ)
    app = Flask(__name__, instance_path=str(settings.instance_path))
    app.request_class = Request  # Twilio's URL-encoded webhooks read in one step
    # Webhooks and the dashboard's forms are a few kB; anything near this is not ours.
    app.config.update(
        SECRET_KEY=settings.secret_key, CALLROUTER_SETTINGS=settings, MAX_CONTENT_LENGTH=1024 * 1024
    )
    app.session_interface = _WebhookFreeSessions()
    if settings.proxies:
        # Behind N reverse proxies: the client address (audit log, login throttle) and scheme
        # come from their X-Forwarded-* headers. Off by default: without a proxy that sets
        # them, anyone could. (Webhook signatures use PUBLIC_BASE_URL, never these headers.)
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]  # as Flask documents it
            app.wsgi_app, x_for=settings.proxies, x_proto=settings.proxies
        )
    if test_config:
        app.config.update(test_config)
    from callrouter import logs

    logs.configure(settings.log_format)

    directory = load_directory_or_exit(settings)

    from callrouter import clock
    from callrouter.sandbox import SANDBOX_ACCOUNT
    from callrouter.services import Services

    # Only with the sandbox as telephone network may a trainer move the clock forward.
    clock.configure(
        settings.instance_path / "sandbox-clock"
        if settings.twilio_account_sid == SANDBOX_ACCOUNT
        else None
    )
    svc = Services(settings, directory, adapter=adapter)
    app.extensions["callrouter"] = svc
    if settings.auto_migrate:
        from callrouter import db

        db.upgrade(svc.engine, settings.instance_path)
        svc.engine.dispose()  # no connection made before a fork is carried into it

    from callrouter import health, voice

    voice.init_app(app)
    app.register_blueprint(health.bp)

    from callrouter import dashboard

    dashboard.init_app(app)

    from callrouter import metrics

    metrics.init_app(app)  # after the voice routes: it labels their latency by route

    from callrouter import cli

    cli.init_app(app)
    return app


class _WebhookFreeSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie session, not opened for Twilio's webhooks: they carry no cookie
    and never use one, and building the cookie's serializer is a fifth of a webhook's time."""

    def open_session(self, app, request):
        if request.path.startswith("/voice/"):
            return self.make_null_session(app)
        return super().open_session(app, request)


def load_directory_or_exit(settings: Settings) -> directory_mod.Directory:
    """Load the directory; on a bad file print every problem and refuse to start."""
    try:
        return directory_mod.load(settings.lines_path)
    except directory_mod.DirectoryError as exc:
        print(
            "callrouter: the line directory is invalid; the service does not start.",
            file=sys.stderr,
        )
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        raise SystemExit(2) from None
