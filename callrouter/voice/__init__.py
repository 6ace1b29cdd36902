"""The voice webhooks of the internal number (and of the call-backs it places)."""

from callrouter.voice import callback_views  # noqa: F401 - registers the call-back routes
from callrouter.voice.views import bp

__all__ = ["bp"]
