"""Status callbacks are stored once, whatever Twilio repeats or reorders."""

from __future__ import annotations

import random

from sqlalchemy import func, select

from callrouter.models import Event, Leg, Transfer

from conftest import WORKER, action_of
from test_voice_transfer import rows, start_transfer


def _count(app, model):
    with app.extensions["callrouter"].sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_duplicated_and_shuffled_leg_callbacks(phone, app):
    """Duplicates add no rows, and a late 'ringing' never moves a finished leg back."""
    start_transfer(phone, "31", "")
    phone.drain()
    leg = phone.twilio.created[0]
    statuses = [("initiated", 0), ("ringing", 1), ("in-progress", 2), ("completed", 3)]
    deliveries = statuses * 3
    random.Random(7).shuffle(deliveries)
    # make sure the terminal status arrives before some earlier ones
    deliveries.remove(("completed", 3))
    deliveries.insert(0, ("completed", 3))
    for status, seq in deliveries:
        phone.post(leg["StatusCallback"], CallSid=leg["Sid"], CallStatus=status, SequenceNumber=seq)
    phone.drain()
    assert _count(app, Event) == 4
    first = [x for x in rows(app, Leg) if x.position == 0][0]
    assert first.status == "completed" and first.outcome == "declined"
    # The hunt moved on exactly once.
    assert [c["To"] for c in phone.twilio.created] == ["+31883001001", "+31883001002"]


def test_conference_events_idempotent_and_terminal_kept(phone, app):
    """A repeated conference-end and a late join do not reopen an ended transfer."""
    start_transfer(phone, "31", "1", sid="CAw20")
    phone.drain()
    leg = phone.twilio.created[0]
    root = phone.post(leg["Url"], CallSid=leg["Sid"])
    phone.post(action_of(root), CallSid=leg["Sid"], Digits="1")
    tr = rows(app, Transfer)[0]
    url = f"/voice/status/conference?tr={tr.id}"
    conf = "CF" + "c" * 32
    events = [
        ("conference-start", "", 1),
        ("participant-join", "CAw20", 2),
        ("participant-join", leg["Sid"], 3),
        ("conference-end", "", 6),
    ]
    for _ in range(2):
        for event, sid, seq in reversed(events):
            phone.post(
                url, ConferenceSid=conf, CallSid=sid, StatusCallbackEvent=event, SequenceNumber=seq
            )
    tr = rows(app, Transfer)[0]
    assert tr.state == "ended" and tr.outcome == "connected" and tr.conference_sid == conf
    assert _count(app, Event) == 4
    ended = tr.ended_at
    phone.post(
        url,
        ConferenceSid=conf,
        CallSid=leg["Sid"],
        StatusCallbackEvent="participant-join",
        SequenceNumber=9,
    )
    tr = rows(app, Transfer)[0]
    assert tr.state == "ended" and tr.ended_at == ended


def test_inbound_call_completed_marks_call_and_cancels(phone, app):
    """The internal number's own status callback ends the call and cancels a ringing leg."""
    start_transfer(phone, "31", "", sid="CAw21")
    phone.drain()
    leg = phone.twilio.created[0]
    for _ in range(2):
        phone.post(
            "/voice/status/call",
            CallSid="CAw21",
            CallStatus="completed",
            CallDuration="42",
            From=WORKER,
            SequenceNumber=5,
        )
    phone.drain()
    call = rows(app, __import__("callrouter.models", fromlist=["Call"]).Call)[0]
    assert call.status == "completed" and call.duration_s == 42 and call.outcome == "abandoned"
    assert (leg["Sid"], {"Status": "canceled"}) in phone.twilio.updates
    assert len([u for u in phone.twilio.updates if u[0] == leg["Sid"]]) == 1


def test_events_of_a_transfer_the_service_does_not_hold_are_dropped(phone, app, monkeypatch):
    """A leg or conference event for a transfer id the service has no row for (purged, or
    never made) is answered with empty TwiML after one read: no event row, and no write
    transaction is opened for it. A known transfer's event still goes through."""
    from callrouter.voice import status

    opened = []
    real = status.transaction

    def counting():
        opened.append(1)
        return real()

    monkeypatch.setattr(status, "transaction", counting)
    stranger = "f" * 32
    for path in (
        f"/voice/status/conference?tr={stranger}",
        f"/voice/status/leg?tr={stranger}&leg={stranger}",
    ):
        root = phone.post(
            path,
            CallSid="CA" + "1" * 32,
            StatusCallbackEvent="participant-join",
            CallStatus="ringing",
        )
        assert len(root) == 0  # <Response/>: nothing to do
    assert _count(app, Event) == 0 and opened == []
    start_transfer(phone, "31", "1", sid="CAw21")
    phone.drain()
    tr = rows(app, Transfer)[0]
    phone.post(
        f"/voice/status/conference?tr={tr.id}",
        ConferenceSid="CF" + "d" * 32,
        CallSid="CAw21",
        StatusCallbackEvent="participant-join",
        SequenceNumber=1,
    )
    assert opened and _count(app, Event) >= 1
