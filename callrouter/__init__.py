"""callrouter: warm transfers from the municipal front desk to professional lines.

The package root imports nothing heavy, so that the pure core (`callrouter.flows`,
`callrouter.directory`) can be imported without Flask, Redis or a database driver.
"""

from __future__ import annotations

__all__ = ["create_app"]


def create_app(*args, **kwargs):
    """Build the Flask application (see `callrouter.factory.create_app`)."""
    from callrouter.factory import create_app as factory

    return factory(*args, **kwargs)
