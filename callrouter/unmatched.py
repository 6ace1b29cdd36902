"""Answers for paths that no route matches, each area of the site in its own way.

Flask answers an unmatched path before any blueprint is chosen, so the blueprints' own 404
and 405 handlers never see it. Each area registers its answer for its URL prefix here: the
voice webhooks calm Dutch TwiML (or 403 unsigned), the dashboard its error page and the API
its JSON error, both with the security headers of every other answer there.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, current_app, request
from werkzeug.exceptions import HTTPException

_KEY = "callrouter.unmatched"


def answer(app: Flask, prefix: str, handler: Callable[[HTTPException], object]) -> None:
    """Let `handler` answer the 404s and 405s of paths under `prefix` (e.g. "/api/v1/")."""
    handlers = app.extensions.setdefault(_KEY, [])
    if not handlers:
        app.register_error_handler(404, _unmatched)
        app.register_error_handler(405, _unmatched)
    handlers.append((prefix, handler))


def _unmatched(exc: HTTPException):
    for prefix, handler in current_app.extensions.get(_KEY, ()):
        if request.path.startswith(prefix) or request.path == prefix.rstrip("/"):
            return handler(exc)
    return exc
