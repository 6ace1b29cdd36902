"""Liveness and readiness for load balancers and the operator on call."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text

from callrouter import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    svc = services.current()
    checks = {}
    try:
        with svc.engine.connect() as conn:
            # Reads the schema, not only the connection: a damaged SQLite file fails here.
            conn.execute(text("SELECT version_num FROM alembic_version"))
        checks["database"] = "ok"
    except Exception as exc:  # report, never raise
        checks["database"] = type(exc).__name__
    try:
        svc.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = type(exc).__name__
    ok = all(v == "ok" for v in checks.values())
    return jsonify(status="ok" if ok else "degraded", checks=checks), 200 if ok else 503
