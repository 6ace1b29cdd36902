"""The service's log: plain text by default, one JSON object per line with `LOG_FORMAT=json`.

A JSON line holds `time` (UTC, ISO 8601), `level`, `logger`, `message`, and where known the
`request_id`, the Twilio `call_sid` and our `transfer` id of the webhook being answered, or the
RQ `job` and its function in the worker; a failure adds `exception` (its traceback). Those ids
are pseudonymous: none of them is a number or a name.

Nothing personal is logged on purpose (tests/test_privacy.py scans every line); as a second
line of defence both formats cut out anything shaped like a phone number (E.164, or a Dutch
national number) from the message and the traceback before it is written.

The context is read only when a line is written, so a request that logs nothing pays nothing.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# +31612345678, 0031612345678, %2B31612345678 (URL-encoded), +44 20 7946 0958, +31 (0)6
# 12345678, 0612345678, 030-2860777, (030) 2860777, 030 - 286 0777, with dots or
# non-breaking spaces too.
_SEP = r"(?:[ .\-\u00a0]{0,3}|\)[ \u00a0]?)"
_PHONE = re.compile(
    r"(?<![0-9A-Za-z])(?:"
    rf"(?:\+|00|%2[Bb])[1-9](?:{_SEP}(?:\(0\))?{_SEP}[0-9]){{7,14}}"
    rf"|\(?0[1-9](?:{_SEP}[0-9]){{8}}"
    r")(?![0-9A-Za-z])"
)
_SAFE_ID = re.compile(r"^[0-9A-Za-z_.:-]{1,64}$")
_HEX_ID = re.compile(r"^[0-9a-f]{32}$")
REDACTED = "[nummer]"


def scrub(text: str) -> str:
    """`text` with every phone-number-shaped run replaced."""
    return _PHONE.sub(REDACTED, text)


class TextFormatter(logging.Formatter):
    """The plain format, scrubbed."""

    def __init__(self):
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record (gunicorn's `logconfig_dict` names this class too)."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        try:
            out.update(context())
        except Exception:  # a broken request body never costs the line itself
            out["context"] = "unavailable"
        if record.exc_info:
            out["exception"] = scrub(self.formatException(record.exc_info))
        elif record.stack_info:
            out["stack"] = scrub(self.formatStack(record.stack_info))
        return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


def context() -> dict[str, str]:
    """The ids of what is being done now: a request (web) or a job (worker)."""
    from flask import g, has_request_context, request

    if has_request_context():
        out = {"request_id": _request_id(g, request)}
        if request.path.startswith("/voice/") and request.method == "POST":
            from callrouter.privacy import loggable_sid

            sid = request.form.get("CallSid")
            if sid:
                out["call_sid"] = loggable_sid(sid)
            transfer = request.args.get("tr", "")
            if _HEX_ID.match(transfer):
                out["transfer"] = transfer
        return out
    from rq import get_current_job

    job = get_current_job()
    if job is None:
        return {}
    return {"job": job.id if _SAFE_ID.match(job.id) else "-", "job_func": job.func_name or "-"}


def _request_id(g, request) -> str:
    """A proxy's X-Request-Id, else Twilio's idempotency token (the same on a retry of the
    webhook), else one made for this request; never a value that is not id-shaped."""
    rid = g.get("request_id")
    if rid is None:
        for header in ("X-Request-Id", "I-Twilio-Idempotency-Token"):
            value = request.headers.get(header, "")
            if _SAFE_ID.match(value):
                rid = value
                break
        else:
            rid = uuid.uuid4().hex
        g.request_id = rid
    return rid


def configure(log_format: str) -> None:
    """Give the root logger its handler, unless the host (gunicorn's `logconfig_dict`, a
    test) has given it one already."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # The SDK logs every request's headers at INFO; keep our logs to what we say ourselves.
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)


def gunicorn_config(log_format: str) -> dict | None:
    """gunicorn's `logconfig_dict` for JSON: its own lines (and the root's) as JSON too."""
    if log_format != "json":
        return None
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "callrouter.logs.JsonFormatter"}},
        "handlers": {"json": handler},
        "root": {"level": "INFO", "handlers": ["json"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["json"], "propagate": False},
            # gunicorn writes access lines whenever a logging config is given; as without
            # one, none (a line per webhook costs; the service's own lines name the request).
            "gunicorn.access": {"level": "WARNING", "handlers": ["json"], "propagate": False},
        },
    }
