"""The voice webhooks of the internal number (and of the call-backs it places).

One module per conversation, all on the blueprint of `webhook` (signature check, form values,
error handler): intake, wayback, menu, transfer, whisper, handover, result, offer, callback,
status. Their shared documents are in `prompts`, the case's chain during a call in `chain`.
"""

from __future__ import annotations

from flask import Flask

from callrouter import unmatched
from callrouter.voice import (  # noqa: F401 - each registers its routes on the blueprint
    callback,
    handover,
    intake,
    menu,
    offer,
    result,
    status,
    transfer,
    wayback,
    whisper,
)
from callrouter.voice.webhook import bp, unrouted

__all__ = ["bp", "init_app"]


def init_app(app: Flask) -> None:
    """Register the webhooks, and the Dutch answer for unknown paths under /voice/."""
    app.register_blueprint(bp)
    unmatched.answer(app, bp.url_prefix + "/", unrouted)
