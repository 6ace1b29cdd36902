"""The worker's verdict after a conversation (the learning network's first question): one key,
a short timeout, "verkeerde lijn" with where it should have gone; it never holds up a
hand-over."""

from __future__ import annotations

import pytest

from callrouter.models import Call, Transfer

from conftest import WORKER, action_of, says
from test_voice_transfer import _connected, rows


def ended_by_professional(phone, app, sid):
    tr, leg = _connected(phone, app, sid)
    phone.post(leg["StatusCallback"], CallSid=leg["Sid"], CallStatus="completed", SequenceNumber=9)
    root = phone.post(
        f"/voice/conference/done?tr={tr.id}",
        CallSid=sid,
        CallStatus="in-progress",
        DialCallStatus="completed",
    )
    assert "beëindigd" in says(root) and "Hoe is het gegaan" in says(root)
    gather = root.find("Gather")
    assert gather.get("numDigits") == "1" and int(gather.get("timeout")) <= 5
    return tr, root


@pytest.mark.parametrize("key,result", [("1", "resolved"), ("2", "partial"), ("3", "unresolved")])
def test_each_key_is_stored_on_the_transfer(phone, app, key, result):
    """1 opgelost, 2 deels, 3 niet opgelost: stored with time and source; then a new transfer
    can be chosen."""
    tr, root = ended_by_professional(phone, app, f"CAres{key}")
    root = phone.post(action_of(root), CallSid=f"CAres{key}", Digits=key)
    assert "Dank u wel" in says(root) and "/voice/again" in action_of(root)
    (row,) = rows(app, Transfer)
    assert (row.result, row.result_by) == (result, "worker") and row.result_at is not None


def test_no_answer_records_unknown(phone, app):
    """Silence (the Gather's timeout) records "unknown" and moves on without thanks."""
    tr, root = ended_by_professional(phone, app, "CAres0")
    root = phone.post(action_of(root), CallSid="CAres0", Digits="")
    assert "Dank u wel" not in says(root) and "/voice/again" in action_of(root)
    assert rows(app, Transfer)[0].result == "unknown"


def test_a_late_silence_never_overwrites_an_answer(phone, app):
    """A retried delivery without digits after an answer keeps the answer."""
    tr, root = ended_by_professional(phone, app, "CAres5")
    action = action_of(root)
    phone.post(action, CallSid="CAres5", Digits="3")
    phone.post(action, CallSid="CAres5", Digits="")
    assert rows(app, Transfer)[0].result == "unresolved"


def test_wrong_line_with_the_right_organisation_said(phone, app):
    """4 = verkeerde lijn; then saying "toeslagen" stores the organisation and its line."""
    tr, root = ended_by_professional(phone, app, "CAres4")
    root = phone.post(action_of(root), CallSid="CAres4", Digits="4")
    assert "Welke organisatie" in says(root)
    gather = root.find("Gather")
    assert "speech" in gather.get("input") and gather.get("hints")
    root = phone.post(action_of(root), CallSid="CAres4", SpeechResult="bij de toeslagen")
    assert "Dank u wel" in says(root)
    (row,) = rows(app, Transfer)
    assert (row.result, row.right_org, row.right_line) == (
        "wrong-line",
        "toeslagen",
        "toeslagen-algemeen",
    )


def test_wrong_line_keyed_as_a_line_code(phone, app):
    """The right line can be keyed as a line code."""
    tr, root = ended_by_professional(phone, app, "CAres6")
    root = phone.post(action_of(root), CallSid="CAres6", Digits="4")
    phone.post(action_of(root), CallSid="CAres6", Digits="32")
    (row,) = rows(app, Transfer)
    assert (row.right_org, row.right_line) == ("svb", "svb-kinderbijslag")


def test_wrong_line_without_saying_where(phone, app):
    """# skips the second question and keeps "verkeerde lijn"."""
    tr, root = ended_by_professional(phone, app, "CAres7")
    root = phone.post(action_of(root), CallSid="CAres7", Digits="4")
    phone.post(action_of(root), CallSid="CAres7", Digits="#")
    (row,) = rows(app, Transfer)
    assert row.result == "wrong-line" and row.right_org is None


def test_the_question_comes_after_the_hand_over(phone, app):
    """With the citizen in the call, leaving hands over at once (the professional's hold is
    lifted before any answer); the question follows, then the call ends."""
    tr, leg = _connected(phone, app, "CAres8")
    root = phone.post(
        f"/voice/conference/done?tr={tr.id}",
        CallSid="CAres8",
        CallStatus="in-progress",
        DialCallStatus="completed",
    )
    root = phone.post(action_of(root), CallSid="CAres8", Digits="1")
    phone.post(action_of(root), CallSid="CAres8", Digits="0612345678#")
    root = phone.post(
        f"/voice/conference/done?tr={tr.id}",
        CallSid="CAres8",
        CallStatus="in-progress",
        DialCallStatus="completed",
    )
    root = phone.post(action_of(root), CallSid="CAres8", Digits="2")
    assert "overgedragen" in says(root) and "Hoe is het gegaan" in says(root)
    phone.drain()
    holds = [form for _, form in phone.twilio.participants if form.get("update") == leg["Sid"]]
    assert holds and holds[-1]["Hold"] == "false"
    root = phone.post(action_of(root), CallSid="CAres8", Digits="2")
    assert root.find("Hangup") is not None
    assert rows(app, Transfer)[0].result == "partial"


def test_speech_choice_keeps_the_directory_term_not_the_phrase(phone, app):
    """The call log keeps which keyword chose the line, never what was said around it."""
    root = phone.post("/voice/incoming", CallSid="CAres9", From=WORKER)
    phone.post(
        action_of(root),
        CallSid="CAres9",
        From=WORKER,
        SpeechResult="mevrouw Jansen heeft een vraag over haar pensioen",
    )
    (call,) = rows(app, Call)
    assert call.selected_by == "speech" and call.selected_term == "pensioen"
    assert call.line_id == "svb-aow"


def test_agency_supervisor_marks_a_wrong_line_on_the_dashboard(phone, app):
    """The receiving organisation's supervisor marks a transfer as the wrong line with the
    right one; another organisation's supervisor cannot; the API shows it."""
    from dashboard_helpers import csrf_of, login, make_token, make_user

    tr, root = ended_by_professional(phone, app, "CAres10")
    phone.post(action_of(root), CallSid="CAres10", Digits="1")
    make_user(app, "sup@svb.nl", "supervisor", "svb")
    make_user(app, "sup@ind.nl", "supervisor", "ind")
    client = phone.client
    login(client, "sup@ind.nl")
    page = client.get("/dashboard/calls").get_data(as_text=True)
    resp = client.post(
        f"/dashboard/transfers/{tr.id}/wrong-line",
        data={"csrf_token": csrf_of(page), "line": "ind-verblijf"},
    )
    assert resp.status_code == 404
    client.delete_cookie("callrouter_session")
    login(client, "sup@svb.nl")
    page = client.get(f"/dashboard/calls/{tr.call_id}").get_data(as_text=True)
    assert "Verkeerde lijn" in page and "opgelost" in page
    client.post(
        f"/dashboard/transfers/{tr.id}/wrong-line",
        data={"csrf_token": csrf_of(page), "line": "svb-kinderbijslag"},
    )
    (row,) = rows(app, Transfer)
    assert (row.result, row.result_by, row.right_line) == (
        "wrong-line",
        "supervisor",
        "svb-kinderbijslag",
    )
    token = make_token(app, "svb-bi", "svb")
    data = client.get("/api/v1/transfers", headers={"Authorization": f"Bearer {token}"}).get_json()[
        "data"
    ]
    assert data[0]["result"] == "wrong-line" and data[0]["right_line"] == "svb-kinderbijslag"
