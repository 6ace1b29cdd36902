"""Intake of unknown numbers by organisation code and PIN, with a lock held in Redis."""

from __future__ import annotations

from sqlalchemy import select

from callrouter.models import Call

from conftest import UNKNOWN, action_of, gather, says


def _enter(phone, sid, code, pin, from_=UNKNOWN):
    root = phone.post("/voice/incoming", CallSid=sid, From=from_)
    return _again(phone, root, sid, code, pin, from_)


def _again(phone, root, sid, code, pin, from_=UNKNOWN):
    assert gather(root).get("finishOnKey") == "#"
    root = phone.post(action_of(root), CallSid=sid, From=from_, Digits=code)
    return phone.post(action_of(root), CallSid=sid, From=from_, Digits=pin)


def test_unknown_number_with_right_pin_reaches_menu(phone, app):
    """An unregistered phone is let in with the organisation's code and PIN."""
    root = _enter(phone, "CAu1", "0344", "2222")
    assert "Gemeente Utrecht" in says(root) and "/voice/menu" in action_of(root)
    with app.extensions["callrouter"].sessions() as s:
        call = s.scalar(select(Call))
    assert call.caller_org == "utrecht" and call.identified_by == "pin"


def test_wrong_pin_three_times_locks_number(phone, app, redis_client):
    """Three wrong PINs end the call politely and lock the number for 15 minutes."""
    root = phone.post("/voice/incoming", CallSid="CAu2", From=UNKNOWN)
    root = _again(phone, root, "CAu2", "0344", "1111")
    assert "klopt niet" in says(root)
    root = _again(phone, root, "CAu2", "0344", "0000")
    assert "klopt niet" in says(root)
    root = _again(phone, root, "CAu2", "9999", "2222")
    assert root.find("Hangup") is not None and "kwartier" in says(root)
    # Another call from the same number, even with the right PIN, is refused while locked.
    root = phone.post("/voice/incoming", CallSid="CAu3", From=UNKNOWN)
    assert root.find("Hangup") is not None and "kwartier" in says(root)
    locks = [k for k in redis_client.scan_iter("callrouter:pin-lock:*")]
    assert len(locks) == 1 and 0 < redis_client.ttl(locks[0]) <= 900
    assert UNKNOWN[1:] not in locks[0].decode()
    with app.extensions["callrouter"].sessions() as s:
        assert {c.outcome for c in s.scalars(select(Call))} == {"locked"}


def test_lock_counts_across_calls(phone):
    """Wrong PINs spread over several calls still lock the number (held in Redis)."""
    for i in range(2):
        root = _enter(phone, f"CAu4{i}", "0344", "1234")
        assert "klopt niet" in says(root)
    root = _enter(phone, "CAu43", "0344", "4321")
    assert "kwartier" in says(root)


def test_other_number_not_locked(phone):
    """A lock on one number does not affect another unknown number."""
    for i in range(3):
        root = _enter(phone, f"CAu5{i}", "0344", "1234")
    assert "kwartier" in says(root)
    root = _enter(phone, "CAu6", "0344", "2222", from_="+31201234568")
    assert "Gemeente Utrecht" in says(root)


def test_garbage_code_counts_as_failure(phone):
    """Garbage or empty code input is a failed try, never an error."""
    root = phone.post("/voice/incoming", CallSid="CAu7", From=UNKNOWN)
    root = phone.post(action_of(root), CallSid="CAu7", From=UNKNOWN, Digits="*#*")
    assert "klopt niet" in says(root)
