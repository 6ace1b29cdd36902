"""The voice webhooks of the internal number."""

from callrouter.voice.views import bp

__all__ = ["bp"]
