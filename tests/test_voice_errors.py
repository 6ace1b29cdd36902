"""Failures never reach the caller as Twilio's 'application error': calm Dutch TwiML instead."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from conftest import WORKER, action_of, says


def _dead_redis():
    return redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )


def _break_backends(app):
    """The database and Redis go down while the service runs."""
    svc = app.extensions["callrouter"]
    dead = create_engine(
        "postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 1}
    )
    svc.engine = dead
    svc.sessions = sessionmaker(dead)
    svc.__dict__["redis"] = _dead_redis()


def test_fallback_names_public_number_with_database_and_redis_down(phone, app):
    """The Fallback URL answers with the chosen organisation's public number, no backends."""
    _break_backends(app)
    root = phone.post(
        "/voice/fallback",
        CallSid="CAf1",
        ErrorCode="11200",
        ErrorUrl="https://callrouter.example.test/voice/transfer?line=toeslagen-algemeen",
    )
    text = says(root)
    assert "storing" in text and "Belastingdienst Toeslagen" in text
    assert "0 8 0 0, 0 5 4 3" in text and root.find("Hangup") is not None


def test_fallback_without_known_organisation(phone, app):
    """Without a recognisable failed URL the fallback still speaks calm Dutch."""
    _break_backends(app)
    root = phone.post("/voice/fallback", CallSid="CAf2", ErrorUrl="garbage")
    assert "storing" in says(root) and "publieke nummer" not in says(root)


def test_exception_in_handler_gives_dutch_way_forward(phone, app, caplog):
    """A crash inside a handler answers TwiML offering a retry, and logs the CallSid."""
    caplog.set_level(logging.ERROR)
    _break_backends(app)
    resp = phone.raw_post("/voice/incoming", CallSid="CAerr1", From=WORKER)
    assert resp.status_code == 200 and resp.mimetype == "text/xml"
    import xml.etree.ElementTree as ET

    root = ET.fromstring(resp.data)
    assert "opnieuw" in says(root) and "/voice/retry" in action_of(root)
    assert any("CAerr1" in r.getMessage() for r in caplog.records)
    assert not any(WORKER in r.getMessage() for r in caplog.records)


def test_retry_after_error_returns_to_menu(phone, app):
    """Pressing 1 after an error brings an identified caller back to the menu."""
    phone.post("/voice/incoming", CallSid="CAerr2", From=WORKER)
    root = phone.post("/voice/retry", CallSid="CAerr2", Digits="1")
    assert "/voice/menu" in action_of(root)
    root = phone.post("/voice/retry", CallSid="CAerr2", Digits="")
    assert root.find("Hangup") is not None


def test_redis_down_refuses_pin_entry_politely(phone, app):
    """Without Redis the PIN lock cannot be kept, so PIN entry is refused (fails closed)."""
    app.extensions["callrouter"].__dict__["redis"] = _dead_redis()
    root = phone.post("/voice/incoming", CallSid="CAerr3", From="+31201234567")
    assert root.find("Hangup") is not None and "niet bereikbaar" in says(root)


def test_redis_down_transfer_still_dials(phone, app):
    """With Redis down, the REST request runs in the web process right after the response."""
    app.extensions["callrouter"].__dict__["redis"] = _dead_redis()
    root = phone.post("/voice/incoming", CallSid="CAerr4", From=WORKER)
    root = phone.post(action_of(root), CallSid="CAerr4", From=WORKER, Digits="31")
    root = phone.post(action_of(root), CallSid="CAerr4", From=WORKER, Digits="")
    assert root.find("Dial/Conference") is not None
    assert [c["To"] for c in phone.twilio.created] == ["+31883001001"]


# ---------------------------------------------------------------- found by a black-box probe


def test_unknown_voice_path_or_method_refuses_unsigned_and_answers_signed_in_dutch(phone):
    """No route under /voice/ (or a method the route lacks): unsigned gets 403 like every
    webhook; signed gets calm Dutch TwiML with a way forward, never an HTML error page."""
    from callrouter.signatures import sign

    from conftest import PUBLIC, TOKEN

    client = phone.client
    assert client.post("/voice/no-such-step", data={"CallSid": "CA" + "1" * 32}).status_code == 403
    assert client.get("/voice/incoming").status_code == 403
    resp = phone.raw_post("/voice/no-such-step", CallSid="CA" + "1" * 32)
    assert resp.status_code == 200 and resp.mimetype == "text/xml"
    root = ET.fromstring(resp.data)
    assert "Excuses" in says(root) and root.find("Gather") is not None
    url = PUBLIC + "/voice/incoming"
    resp = client.get("/voice/incoming", headers={"X-Twilio-Signature": sign(TOKEN, url)})
    assert resp.status_code == 200 and ET.fromstring(resp.data).find("Gather") is not None
    # Elsewhere the usual answers stay.
    assert client.get("/no-such-page").status_code == 404
    assert client.post("/healthz").status_code == 405


def test_forged_sid_and_error_fields_never_carry_a_number_into_the_log(phone, caplog):
    """A signed fallback whose CallSid and ErrorCode hold phone numbers logs neither."""
    caplog.set_level(logging.INFO)
    phone.post("/voice/fallback", CallSid="+31612345678", ErrorCode="+31612345679")
    phone.post("/voice/fallback", CallSid="CA31612345678", ErrorCode="0612345678")
    assert caplog.text.count("fallback for call") == 2
    assert "1234567" not in caplog.text and "612345" not in caplog.text
    phone.post("/voice/fallback", CallSid="CA" + "ab12" * 8, ErrorCode="11200")
    assert "CA" + "ab12" * 8 in caplog.text and "11200" in caplog.text


def test_an_unsupported_signature_algorithm_is_refused_in_one_log_line(phone, caplog):
    """A request asking for MD5 is refused (403) with one warning, not a traceback each time."""
    resp = phone.raw_post(
        "/voice/incoming",
        headers={"X-Twilio-Webhooks-Signature-Settings": "algorithm=MD5"},
        CallSid="CA" + "2" * 32,
    )
    assert resp.status_code == 403
    assert "Traceback" not in caplog.text and "signature check refused" in caplog.text


def test_an_oversized_webhook_is_refused_and_nothing_is_written(phone, app, caplog):
    """A body over the limit (1 MiB) is refused before any handler writes."""
    from sqlalchemy import func, select

    from callrouter.models import Call

    resp = phone.raw_post(
        "/voice/incoming", CallSid="CA" + "3" * 32, From=WORKER, Padding="x" * (1024 * 1024 + 10)
    )
    assert resp.status_code in (403, 413)
    with app.extensions["callrouter"].sessions() as s:
        assert s.scalar(select(func.count()).select_from(Call)) == 0
    # Unsigned, to a route and to no route: refused in one log line each, no traceback.
    for path in ("/voice/incoming", "/voice/no-such-step"):
        resp = phone.client.post(path, data={"Padding": "x" * (1024 * 1024 + 10)})
        assert resp.status_code in (403, 413)
    assert "Traceback" not in caplog.text


def test_readiness_sees_a_damaged_database_file(environ, tmp_path):
    """/readyz reads the schema: a SQLite file that is no database any more is reported."""
    from callrouter import create_app

    path = tmp_path / "ready.db"
    app = create_app(environ={**environ, "DATABASE_URL": f"sqlite:///{path}"})
    svc = app.extensions["callrouter"]
    try:
        assert app.test_client().get("/readyz").get_json()["checks"]["database"] == "ok"
        svc.engine.dispose()
        with open(path, "r+b") as f:
            f.write(b"this is not a database file at all" * 200)
        resp = app.test_client().get("/readyz")
        assert resp.status_code == 503 and resp.get_json()["checks"]["database"] != "ok"
    finally:
        svc.engine.dispose()


def test_forged_event_fields_never_store_a_number(phone, app):
    """Signed callbacks whose detail fields carry numbers: the event is kept, the numbers not."""
    from sqlalchemy import select

    from callrouter.models import Event

    phone.post("/voice/incoming", CallSid="CA" + "4" * 32, From=WORKER)
    phone.raw_post(
        "/voice/status/call",
        CallSid="CA" + "4" * 32,
        CallStatus="completed",
        CallDuration="+31612345678",
        Reason="bel 0612345678 terug",
        ConferenceSid="+31612345678",
        SequenceNumber="2",
    )
    with app.extensions["callrouter"].sessions() as s:
        details = [e.detail for e in s.scalars(select(Event))]
    dump = repr(details)
    assert "CallDuration" in dump and "Reason" in dump
    assert "612345678" not in dump and "1234567" not in dump
