"""WSGI entry point: `gunicorn app:app` (production) or `flask --app app run` (development)."""

from callrouter import create_app

app = create_app()
