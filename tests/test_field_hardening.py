"""What users of other call routers learned the hard way, shown impossible here."""

from __future__ import annotations

import pytest

from callrouter.directory import DirectoryError, loads
from callrouter.models import Leg, Transfer

from conftest import AMSTERDAM_ID, CALLER_ID, PUBLIC, WORKER, action_of, says
from test_voice_transfer import _connected, rows, start_transfer


def test_abort_during_whisper_completes_the_answered_leg(phone, app):
    """* while the professional hears the whisper ends that leg with Status=completed."""
    start_transfer(phone, "31", "", sid="CAfh1")
    phone.drain()
    leg = phone.twilio.created[0]
    phone.post(leg["Url"], CallSid=leg["Sid"])  # answered: the whisper plays
    tr = rows(app, Transfer)[0]
    root = phone.post(
        f"/voice/conference/done?tr={tr.id}",
        CallSid="CAfh1",
        CallStatus="in-progress",
        DialCallStatus="completed",
    )
    assert "afgebroken" in says(root) and "/voice/menu" in action_of(root)
    phone.drain()
    assert (leg["Sid"], {"Status": "completed"}) in phone.twilio.updates
    assert rows(app, Transfer)[0].outcome == "cancelled"
    # The professional who presses 1 a moment later hears that the caller is gone.
    root = phone.post(
        f"/voice/whisper/answer?tr={tr.id}&leg={rows(app, Leg)[0].id}",
        CallSid=leg["Sid"],
        Digits="1",
    )
    assert root.find("Dial") is None and root.find("Hangup") is not None


def test_worker_hangs_up_after_professional_joined(phone, app):
    """The worker hanging up mid-conversation (no hand-over) never leaves the professional
    alone in silence: they are told and their call ends."""
    tr, leg = _connected(phone, app, "CAfh2")
    phone.post(
        f"/voice/conference/done?tr={tr.id}",
        CallSid="CAfh2",
        CallStatus="completed",
        DialCallStatus="completed",
    )
    phone.drain()
    sid, upd = phone.twilio.updates[-1]
    assert sid == leg["Sid"] and upd["Url"] == PUBLIC + "/voice/worker-left"
    root = phone.post(upd["Url"], CallSid=leg["Sid"])
    assert "beëindigd" in says(root) and root.find("Hangup") is not None


def test_worker_hangs_up_in_handover_menu_with_citizen_in_call(phone, app):
    """Hanging up in the * menu after adding the citizen is a hand-over: the professional is
    taken off hold and the conversation goes on."""
    tr, leg = _connected(phone, app, "CAfh3")
    phone.post(
        f"/voice/status/conference?tr={tr.id}",
        ConferenceSid="CF" + "d" * 32,
        CallSid=leg["Sid"],
        StatusCallbackEvent="participant-join",
        SequenceNumber=7,
    )
    root = phone.post(
        f"/voice/conference/done?tr={tr.id}", CallSid="CAfh3", CallStatus="in-progress"
    )
    root = phone.post(action_of(root), CallSid="CAfh3", Digits="1")
    phone.post(action_of(root), CallSid="CAfh3", Digits="0612345678#")
    phone.drain()
    root = phone.post(
        f"/voice/conference/done?tr={tr.id}", CallSid="CAfh3", CallStatus="in-progress"
    )
    phone.drain()
    phone.post("/voice/status/call", CallSid="CAfh3", CallStatus="completed", SequenceNumber=9)
    phone.drain()
    holds = [f for c, f in phone.twilio.participants if c.startswith("CF") and "Hold" in f]
    assert holds[-1]["Hold"] == "false"
    assert not any("/voice/worker-left" in u.get("Url", "") for _, u in phone.twilio.updates)
    assert rows(app, Transfer)[0].worker_left_at is not None


@pytest.mark.parametrize("path", ["/voice/wait", "/voice/hold"])
def test_waiting_is_never_silent(phone, path):
    """Wait and hold answer Dutch speech looped with a POST Redirect (no query string with
    the caller's number in any access log)."""
    root = phone.post(path, CallSid="CAwait", From="+31302860123")
    assert root.find("Say").get("language") == "nl-NL" and says(root)
    redirect = root.find("Redirect")
    assert redirect.get("method") == "POST" and redirect.text == PUBLIC + path


def test_worker_waits_in_conference_with_wait_audio(phone):
    """While the hunt group rings, the worker's conference has wait audio fetched with POST."""
    root = start_transfer(phone, "31", "")
    conf = root.find("Dial/Conference")
    assert (
        conf.get("waitUrl").startswith(PUBLIC + "/voice/wait") and conf.get("waitMethod") == "POST"
    )


def test_configured_caller_id_on_every_outbound_call(phone, app):
    """Every Calls.json carries the configured caller ID, per caller organisation."""
    start_transfer(phone, "31", "", sid="CAfh4")
    phone.drain()
    first = phone.twilio.created[-1]
    phone.post(first["StatusCallback"], CallSid=first["Sid"], CallStatus="busy")
    phone.drain()
    root = phone.post("/voice/incoming", CallSid="CAfh5", From="+31205550100")
    root = phone.post(action_of(root), CallSid="CAfh5", From="+31205550100", Digits="11")
    phone.post(action_of(root), CallSid="CAfh5", From="+31205550100", Digits="")
    phone.drain()
    froms = [c["From"] for c in phone.twilio.created]
    assert froms == [CALLER_ID, CALLER_ID, AMSTERDAM_ID]
    assert WORKER not in froms


@pytest.mark.parametrize("number", ["0900-1234567", "0800-0543"])
def test_lines_check_refuses_caller_id_the_provider_refuses(number):
    """A premium-rate or free number as caller ID is reported by the directory check."""
    text = f"""internal_number: "+31880100100"
caller_id: "{number}"
callers:
  - id: u
    name: U
    code: "01"
    numbers: ["+3130286*"]
organisations:
  - id: o
    name: O
    digit: 1
    lines:
      - id: l
        topic: t
        digit: 1
        numbers: ["+31883001001"]
        hours: "24/7"
"""
    with pytest.raises(DirectoryError) as info:
        loads(text, "x.yaml")
    (problem,) = info.value.problems
    assert problem.path == "caller_id" and problem.line == 2 and "caller ID" in problem.message


def test_refused_caller_id_gives_a_clear_log_line(phone, app, caplog):
    """Error 21210 from the provider names the caller ID and what to change."""
    import logging

    caplog.set_level(logging.ERROR)
    phone.twilio.fail_create = 1
    start_transfer(phone, "31", "", sid="CAfh6")
    phone.drain()
    lines = [r.getMessage() for r in caplog.records if "caller ID" in r.getMessage()]
    assert lines and CALLER_ID in lines[0] and "21210" in lines[0] and "caller_id" in lines[0]


def test_professional_hangs_up_while_worker_in_star_menu(phone, app):
    """The worker in the * menu is brought to the end of the conversation, never back into
    an empty conference."""
    tr, leg = _connected(phone, app, "CAfh7")
    root = phone.post(
        f"/voice/conference/done?tr={tr.id}", CallSid="CAfh7", CallStatus="in-progress"
    )
    assert "inwoner" in says(root)
    phone.drain()
    phone.post(leg["StatusCallback"], CallSid=leg["Sid"], CallStatus="completed", SequenceNumber=9)
    phone.drain()
    sid, upd = phone.twilio.updates[-1]
    assert sid == "CAfh7" and upd["Url"] == PUBLIC + f"/voice/conversation-ended?tr={tr.id}"
    root = phone.post(upd["Url"], CallSid="CAfh7")
    assert "beëindigd" in says(root) and "/voice/result" in action_of(root)
    root = phone.post(action_of(root), CallSid="CAfh7", Digits="")
    assert "/voice/again" in action_of(root)
    root = phone.post(f"/voice/handover?tr={tr.id}", CallSid="CAfh7", Digits="3")
    assert root.find("Dial") is None  # no rejoining an ended conversation
