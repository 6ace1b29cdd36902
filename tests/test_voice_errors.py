"""Failures never reach the caller as Twilio's 'application error': calm Dutch TwiML instead."""

from __future__ import annotations

import logging

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from conftest import WORKER, action_of, says


def _dead_redis():
    return redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5,
                       retry=Retry(NoBackoff(), 0))


def _break_backends(app):
    """The database and Redis go down while the service runs."""
    svc = app.extensions["callrouter"]
    dead = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none",
                         connect_args={"connect_timeout": 1})
    svc.engine = dead
    svc.sessions = sessionmaker(dead)
    svc.__dict__["redis"] = _dead_redis()


def test_fallback_names_public_number_with_database_and_redis_down(phone, app):
    """The Fallback URL answers with the chosen organisation's public number, no backends."""
    _break_backends(app)
    root = phone.post("/voice/fallback", CallSid="CAf1", ErrorCode="11200",
                      ErrorUrl="https://callrouter.example.test/voice/transfer?line=toeslagen-algemeen")
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
