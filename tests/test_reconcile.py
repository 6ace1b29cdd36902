"""Reconciliation fills in final states from the provider's call list, and reconstructs calls
the log never saw, without duplicating rows when a late callback arrives after all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from callrouter import reconcile
from callrouter.models import Call, Event, Leg, Transfer

from conftest import ACCOUNT, INTERNAL, WORKER
from test_voice_transfer import rows, start_transfer

AMS = ZoneInfo("Europe/Amsterdam")


def provider_call(sid, status, to, from_, start, duration="35", direction="inbound"):
    return {
        "sid": sid,
        "status": status,
        "to": to,
        "from": from_,
        "direction": direction,
        # Twilio writes RFC 2822 times in UTC.
        "start_time": format_datetime(start.astimezone(UTC)),
        "end_time": format_datetime((start + timedelta(seconds=int(duration))).astimezone(UTC)),
        "duration": duration,
        "account_sid": ACCOUNT,
    }


def count(app, model):
    with app.extensions["callrouter"].sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_dropped_final_callbacks_filled_in_and_unknown_call_reconstructed(phone, app, clock):
    """The provider's list closes a call and a leg whose last callbacks never came."""
    start = datetime(2026, 11, 25, 19, 0, tzinfo=AMS)
    clock.set(start)
    start_transfer(phone, "31", "", sid="CArec1")
    phone.drain()
    leg = phone.twilio.created[0]
    phone.post(leg["StatusCallback"], CallSid=leg["Sid"], CallStatus="ringing", SequenceNumber=1)
    # ... and then nothing more arrives: neither the leg's nor the inbound call's end.
    phone.twilio.call_list = [
        provider_call("CArec1", "completed", INTERNAL, WORKER, start, "95"),
        provider_call(
            leg["Sid"], "no-answer", leg["To"], INTERNAL, start, "0", direction="outbound-api"
        ),
        provider_call("CAlost9", "completed", INTERNAL, "+31205550100", start, "12"),
    ]
    clock.set(start + timedelta(hours=1))
    with app.app_context():
        counts = reconcile.reconcile()
    assert counts["calls"] == 1 and counts["legs"] == 1 and counts["reconstructed"] == 1
    # The worker's call is over, so the transfer is closed with what its legs tell.
    assert counts["transfers"] == 1 and rows(app, Transfer)[0].outcome == "no-answer"
    assert "StartTime%3E" in phone.twilio.list_requests[0]
    calls = {c.call_sid: c for c in rows(app, Call)}
    assert calls["CArec1"].status == "completed" and calls["CArec1"].duration_s == 95
    lost = calls["CAlost9"]
    assert lost.outcome == "reconstructed" and lost.caller_org == "amsterdam"
    assert lost.from_masked == "+31 2 ****0100" and lost.from_hmac
    from callrouter.models import LdvRecord

    # Its reception is accounted for too, though no webhook told of it (LDV).
    records = [r for r in rows(app, LdvRecord) if r.trace_id == lost.id]
    assert sorted(r.name for r in records) == ["call-received", "caller-identified"]
    assert {r.data_subject_id for r in records} == {lost.from_hmac}
    first = [x for x in rows(app, Leg) if x.position == 0][0]
    assert first.status == "no-answer" and first.outcome == "no-answer"

    # The late callbacks arrive after all: no row is added to calls or legs, none goes back.
    events = count(app, Event)
    phone.post(leg["StatusCallback"], CallSid=leg["Sid"], CallStatus="no-answer", SequenceNumber=3)
    phone.post(
        "/voice/status/call",
        CallSid="CArec1",
        CallStatus="completed",
        CallDuration="95",
        SequenceNumber=4,
    )
    phone.post("/voice/status/call", CallSid="CAlost9", CallStatus="completed", SequenceNumber=2)
    assert count(app, Call) == 2 and count(app, Leg) == 1
    assert count(app, Event) == events + 3  # kept as received, once each
    assert [x for x in rows(app, Leg) if x.position == 0][0].status == "no-answer"
    with app.app_context():
        again = reconcile.reconcile()
    assert again == {"calls": 0, "legs": 0, "transfers": 0, "callbacks": 0, "reconstructed": 0}


def test_transfer_closed_when_all_legs_ended_unreported(phone, app, clock):
    """A connected transfer whose professional leg ended unreported is closed with its times."""
    start = datetime(2026, 11, 25, 19, 0, tzinfo=AMS)
    clock.set(start)
    start_transfer(phone, "11", "", sid="CArec2")
    phone.drain()
    leg = phone.twilio.created[0]
    root = phone.post(leg["Url"], CallSid=leg["Sid"])
    from conftest import action_of

    phone.post(action_of(root), CallSid=leg["Sid"], Digits="1")
    phone.twilio.call_list = [
        provider_call(
            leg["Sid"], "completed", leg["To"], INTERNAL, start, "300", direction="outbound-api"
        )
    ]
    clock.set(start + timedelta(hours=2))
    with app.app_context():
        counts = reconcile.reconcile()
    assert counts["legs"] == 1 and counts["transfers"] == 1
    (tr,) = rows(app, Transfer)
    assert tr.state == "ended" and tr.outcome == "connected" and tr.duration_s is not None


def test_provider_unavailable_changes_nothing(phone, app, clock):
    """Without the provider's list nothing is guessed."""
    phone.twilio.rsps.replace("GET", phone.twilio.list_url, status=503, json={"code": 20003})
    with app.app_context():
        assert sum(reconcile.reconcile().values()) == 0
