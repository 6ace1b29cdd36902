"""Whole calls through signed webhooks: menu, whisper, accept, hunt group, hang-ups, hand-over."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from callrouter.models import Call, CallbackRequest, Leg, Transfer

from conftest import CALLER_ID, WORKER, action_of, fixed_now, gather, says

AMS = ZoneInfo("Europe/Amsterdam")


def rows(app, model, **where):
    svc = app.extensions["callrouter"]
    with svc.sessions() as s:
        q = select(model)
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        return s.scalars(q).all()


def start_transfer(phone, digits="31", options="", sid="CAworker0001"):
    """Dial in from a registered number, key a line code and options; return the TwiML."""
    root = phone.post("/voice/incoming", CallSid=sid, From=WORKER, To="+31880100100")
    assert "Gemeente Utrecht" in says(root)
    g = gather(root)
    assert g.get("input") == "dtmf speech" and g.get("language") == "nl-NL"
    root = phone.post(action_of(root), CallSid=sid, From=WORKER, Digits=digits)
    if root.find("Gather") is not None and "topic" in action_of(root):
        return root
    assert "toestemming" in says(root)
    return phone.post(action_of(root), CallSid=sid, From=WORKER, Digits=options)


def leg_webhooks(phone, created: dict, *statuses: str):
    for seq, status in enumerate(statuses):
        phone.post(
            created["StatusCallback"], CallSid=created["Sid"], CallStatus=status, SequenceNumber=seq
        )


def test_accept_on_first_number(phone, app):
    """The first professional accepts: the worker waits in an opaque conference, both meet."""
    root = start_transfer(phone, "31", "1")
    conf = root.find("Dial/Conference")
    assert conf is not None and conf.get("startConferenceOnEnter") == "false"
    assert conf.text.isalnum() and WORKER[3:] not in conf.text
    assert root.find("Dial").get("hangupOnStar") == "true"
    phone.drain()
    assert [c["To"] for c in phone.twilio.created] == ["+31883001001"]
    leg = phone.twilio.created[0]
    assert leg["From"] == CALLER_ID and leg["Timeout"] == "15"
    leg_webhooks(phone, leg, "initiated", "ringing")
    root = phone.post(leg["Url"], CallSid=leg["Sid"])
    text = says(root)
    assert "Gemeente Utrecht" in text and "de A O W" in text and "toestemming" in text
    assert "Geen spoed" in text
    root = phone.post(action_of(root), CallSid=leg["Sid"], Digits="1")
    pconf = root.find("Dial/Conference")
    assert pconf.text == conf.text and pconf.get("startConferenceOnEnter") == "true"
    (tr,) = rows(app, Transfer)
    assert tr.state == "connected" and tr.outcome == "connected" and tr.consent
    assert tr.accepted_at is not None and tr.time_to_answer_s >= 0
    assert tr.minutes_saved is not None and tr.minutes_saved <= 20
    (call,) = rows(app, Call)
    assert call.outcome == "connected" and call.line_id == "svb-aow"
    assert call.caller_org == "utrecht"
    phone.drain()
    assert len(phone.twilio.created) == 1


def test_decline_then_second_number(phone, app):
    """A professional who declines passes the call to the next number of the hunt group."""
    start_transfer(phone, "31")
    phone.drain()
    first = phone.twilio.created[0]
    root = phone.post(first["Url"], CallSid=first["Sid"])
    root = phone.post(action_of(root), CallSid=first["Sid"], Digits="3")
    assert "geweigerd" in says(root) and root.find("Hangup") is not None
    leg_webhooks(phone, first, "initiated", "ringing", "in-progress", "completed")
    phone.drain()
    assert [c["To"] for c in phone.twilio.created] == ["+31883001001", "+31883001002"]
    second = phone.twilio.created[1]
    root = phone.post(second["Url"], CallSid=second["Sid"])
    root = phone.post(action_of(root), CallSid=second["Sid"], Digits="1")
    assert root.find("Dial/Conference") is not None
    legs = sorted(rows(app, Leg), key=lambda leg: leg.position)
    assert [leg.outcome for leg in legs] == ["declined", "accepted"]
    assert rows(app, Transfer)[0].state == "connected"


def test_urgent_rings_urgent_numbers_first(phone):
    """An urgent call tries the line's urgent numbers first and the whisper says so."""
    start_transfer(phone, "31", "9")
    phone.drain()
    leg = phone.twilio.created[0]
    assert leg["To"] == "+31883001009"
    assert "spoed" in says(phone.post(leg["Url"], CallSid=leg["Sid"]))


def test_all_no_answer_offers_callback(phone, app):
    """Nobody answers on any number: the worker is brought back and offered a callback."""
    worker_sid = "CAworker0002"
    start_transfer(phone, "31", "", sid=worker_sid)
    for _ in range(2):
        phone.drain()
        leg = phone.twilio.created[-1]
        leg_webhooks(phone, leg, "initiated", "ringing", "no-answer")
    phone.drain()
    assert len(phone.twilio.created) == 2
    (sid, update) = phone.twilio.updates[-1]
    assert sid == worker_sid and "/voice/unanswered" in update["Url"]
    root = phone.post(update["Url"], CallSid=worker_sid, From=WORKER)
    assert "niet gelukt" in says(root) and "teruggebeld" in says(root)
    root = phone.post(action_of(root), CallSid=worker_sid, From=WORKER, Digits="1")
    assert "terugbelverzoek is genoteerd" in says(root)
    (req,) = rows(app, CallbackRequest)
    assert req.reason == "unanswered" and req.line_id == "svb-aow" and req.state == "pending"
    assert req.worker_masked == "+31 3 ****0123"
    (tr,) = rows(app, Transfer)
    assert tr.outcome == "no-answer" and tr.state == "ended"
    assert rows(app, Call)[0].outcome == "callback-requested"


def test_closed_line_says_when_it_opens_and_records_callback(phone, app, monkeypatch):
    """A closed line tells when it opens again and records the worker's callback request."""
    fixed_now(monkeypatch, datetime(2026, 11, 25, 20, 0, tzinfo=AMS))  # Wednesday evening
    root = phone.post("/voice/incoming", CallSid="CAw3", From=WORKER)
    root = phone.post(action_of(root), CallSid="CAw3", From=WORKER, Digits="32")
    text = says(root)
    assert "kinderbijslag" in text and "gesloten" in text and "morgen om 8 uur 30" in text
    root = phone.post(action_of(root), CallSid="CAw3", From=WORKER, Digits="1")
    assert "morgen om 8 uur 30" in says(root)
    (req,) = rows(app, CallbackRequest)
    assert req.reason == "closed"
    assert req.planned_at.astimezone(AMS) == datetime(2026, 11, 26, 8, 30, tzinfo=AMS)
    assert phone.twilio.created == []


def test_worker_hangs_up_while_professional_rings(phone, app):
    """When the worker hangs up during ringing, the outbound leg is cancelled."""
    start_transfer(phone, "31", "", sid="CAworker0004")
    phone.drain()
    leg = phone.twilio.created[0]
    leg_webhooks(phone, leg, "initiated", "ringing")
    tr = rows(app, Transfer)[0]
    phone.post(
        f"/voice/conference/done?tr={tr.id}",
        CallSid="CAworker0004",
        CallStatus="completed",
        DialCallStatus="completed",
    )
    phone.drain()
    assert (leg["Sid"], {"Status": "canceled"}) in phone.twilio.updates
    tr = rows(app, Transfer)[0]
    assert tr.state == "ended" and tr.outcome == "abandoned"
    # The professional who picks up a moment later hears that the caller is gone.
    root = phone.post(leg["Url"], CallSid=leg["Sid"])
    assert "opgehangen" in says(root) and root.find("Hangup") is not None


def test_worker_leaving_conference_event_cancels_ringing_leg(phone, app):
    """The conference's participant-leave for the worker also cancels a ringing leg."""
    start_transfer(phone, "31", "", sid="CAworker0005")
    phone.drain()
    leg = phone.twilio.created[0]
    tr = rows(app, Transfer)[0]
    phone.post(
        f"/voice/status/conference?tr={tr.id}",
        ConferenceSid="CF" + "a" * 32,
        CallSid="CAworker0005",
        StatusCallbackEvent="participant-leave",
        SequenceNumber=2,
    )
    phone.drain()
    assert (leg["Sid"], {"Status": "canceled"}) in phone.twilio.updates


def _connected(phone, app, sid):
    start_transfer(phone, "31", "1", sid=sid)
    phone.drain()
    leg = phone.twilio.created[0]
    root = phone.post(leg["Url"], CallSid=leg["Sid"])
    phone.post(action_of(root), CallSid=leg["Sid"], Digits="1")
    tr = rows(app, Transfer)[0]
    phone.post(
        f"/voice/status/conference?tr={tr.id}",
        ConferenceSid="CF" + "b" * 32,
        CallSid=leg["Sid"],
        StatusCallbackEvent="participant-join",
        SequenceNumber=3,
    )
    leg_webhooks(phone, leg, "initiated", "ringing", "in-progress")
    return tr, leg


def test_citizen_added_and_worker_leaves(phone, app):
    """The worker adds the citizen by phone number and then leaves: a warm hand-over."""
    tr, leg = _connected(phone, app, "CAworker0006")
    root = phone.post(
        f"/voice/conference/done?tr={tr.id}",
        CallSid="CAworker0006",
        CallStatus="in-progress",
        DialCallStatus="completed",
    )
    assert "inwoner" in says(root)
    root = phone.post(action_of(root), CallSid="CAworker0006", Digits="1")
    root = phone.post(action_of(root), CallSid="CAworker0006", Digits="12345#")
    assert "geen geldig" in says(root) and "inwoner" in says(root)
    root = phone.post(action_of(root), CallSid="CAworker0006", Digits="0612345678#")
    assert "inwoner wordt gebeld" in says(root)
    assert root.find("Dial/Conference").text == tr.id
    conf, form = [p for p in phone.twilio.participants if "To" in p[1]][0]
    assert conf == tr.id and form["To"] == "+31612345678" and form["From"] == CALLER_ID
    root = phone.post(
        f"/voice/conference/done?tr={tr.id}",
        CallSid="CAworker0006",
        CallStatus="in-progress",
        DialCallStatus="completed",
    )
    root = phone.post(action_of(root), CallSid="CAworker0006", Digits="2")
    assert "overgedragen" in says(root) and "Hoe is het gegaan" in says(root)
    tr = rows(app, Transfer)[0]
    assert tr.worker_left_at is not None and tr.hold_wanted is False  # handed over already
    root = phone.post(action_of(root), CallSid="CAworker0006", Digits="1")
    assert root.find("Hangup") is not None
    tr = rows(app, Transfer)[0]
    assert tr.citizen_added_at is not None and tr.result == "resolved"
    citizen = [leg for leg in rows(app, Leg) if leg.kind == "citizen"]
    assert citizen[0].number_masked == "+31 6 ****5678"


def test_star_while_ringing_aborts_and_returns_to_menu(phone, app):
    """Pressing * before anyone accepts cancels the ringing leg and returns to the menu."""
    start_transfer(phone, "31", "", sid="CAworker0007")
    phone.drain()
    leg = phone.twilio.created[0]
    tr = rows(app, Transfer)[0]
    root = phone.post(
        f"/voice/conference/done?tr={tr.id}",
        CallSid="CAworker0007",
        CallStatus="in-progress",
        DialCallStatus="completed",
    )
    assert "afgebroken" in says(root) and "/voice/menu" in action_of(root)
    phone.drain()
    assert (leg["Sid"], {"Status": "canceled"}) in phone.twilio.updates
    assert rows(app, Transfer)[0].outcome == "cancelled"


def test_speech_selects_line(phone, app):
    """Saying 'de SVB over de AOW' selects the AOW line of the SVB."""
    root = phone.post("/voice/incoming", CallSid="CAw8", From=WORKER)
    assert "AOW" in gather(root).get("hints")
    root = phone.post(
        action_of(root),
        CallSid="CAw8",
        From=WORKER,
        SpeechResult="de SVB over de AOW",
        Confidence="0.9",
    )
    assert "de A O W" in says(root)
    call = rows(app, Call)[0]
    assert call.line_id == "svb-aow" and call.selected_by == "speech"


def test_unclear_menu_asks_twice_then_reads_list_then_ends(phone, app):
    """Unclear input is asked again, then the full list is read, then the call ends kindly."""
    root = phone.post("/voice/incoming", CallSid="CAw9", From=WORKER)
    root = phone.post(action_of(root), CallSid="CAw9", From=WORKER, Digits="")
    assert "niet goed begrepen" in says(root) and "Dit zijn de organisaties" not in says(root)
    root = phone.post(action_of(root), CallSid="CAw9", From=WORKER, SpeechResult="blabla")
    assert "Voor de S V B, toets 3" in says(root)
    root = phone.post(action_of(root), CallSid="CAw9", From=WORKER, Digits="99")
    assert root.find("Hangup") is not None and "Tot ziens" in says(root)
    assert rows(app, Call)[0].outcome == "menu-failed"


def test_organisation_key_then_topic(phone, app):
    """One key selects the organisation; its topic menu follows."""
    root = phone.post("/voice/incoming", CallSid="CAw10", From=WORKER)
    root = phone.post(action_of(root), CallSid="CAw10", From=WORKER, Digits="3")
    assert "Kies het onderwerp" in says(root) and "org=svb" in action_of(root)
    root = phone.post(action_of(root), CallSid="CAw10", From=WORKER, Digits="1")
    assert "de A O W" in says(root)


def test_watchdog_ends_a_transfer_whose_callbacks_were_lost(phone, app):
    """A transfer still ringing past its deadline is ended, the leg cancelled, the worker told."""
    from callrouter import jobs

    start_transfer(phone, "31", "", sid="CAworker0011")
    phone.drain()
    leg = phone.twilio.created[0]
    tr = rows(app, Transfer)[0]
    registry = app.extensions["callrouter"].queue("calls").scheduled_job_registry
    assert f"watchdog-{tr.id}" in registry.get_job_ids()
    with app.app_context():
        assert jobs.transfer_watchdog(tr.id)
        assert not jobs.transfer_watchdog(tr.id)  # once
    phone.drain()  # the model's actions: cancel the leg, bring the worker back
    assert (leg["Sid"], {"Status": "canceled"}) in phone.twilio.updates
    sid, upd = phone.twilio.updates[-1]
    assert sid == "CAworker0011" and "/voice/unanswered" in upd["Url"]
    tr = rows(app, Transfer)[0]
    assert tr.state == "ended" and tr.outcome == "no-answer"


def test_leg_row_of_a_dead_job_is_skipped(phone, app):
    """A leg row left without a call by a job that died moves the hunt on, once."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from callrouter import jobs

    start_transfer(phone, "31", "", sid="CAworker0012")
    svc = app.extensions["callrouter"]
    tr = rows(app, Transfer)[0]
    with svc.sessions.begin() as s:  # as if a job wrote the row and died before calling
        s.add(
            Leg(
                id="d" * 32,
                transfer_id=tr.id,
                kind="professional",
                position=0,
                number_hmac="x",
                number_masked="+31 8 ****1001",
                status="queued",
                created_at=datetime.now(UTC) - timedelta(minutes=5),
            )
        )
    phone.drain()  # the queued job for position 0 finds the row
    assert [c["To"] for c in phone.twilio.created] == ["+31883001002"]
    with svc.sessions.begin() as s:
        s.execute(update(Leg).where(Leg.id == "d" * 32).values(status="queued"))
    with app.app_context():
        assert jobs.place_leg(tr.id, 1) is None  # position 1 exists: nothing twice
    assert len(phone.twilio.created) == 1


def test_unanswered_line_that_never_meets_the_callers_hours_offers_no_callback(
    phone, app, monkeypatch
):
    """IND is open on Saturday morning only, the municipality on weekdays: when nobody answers
    there, no callback is offered (it could never be planned) but another organisation."""
    fixed_now(monkeypatch, datetime(2026, 11, 28, 10, 15, tzinfo=AMS))  # Saturday
    worker_sid = "CAworker0071"
    start_transfer(phone, "71", "", sid=worker_sid)
    phone.drain()
    leg_webhooks(phone, phone.twilio.created[-1], "initiated", "ringing", "no-answer")
    phone.drain()
    (sid, update) = phone.twilio.updates[-1]
    assert sid == worker_sid and "/voice/unanswered" in update["Url"]
    root = phone.post(update["Url"], CallSid=worker_sid, From=WORKER)
    assert "niet gelukt" in says(root) and "niet mogelijk" in says(root)
    assert "teruggebeld wilt worden" not in says(root)
    root = phone.post(action_of(root), CallSid=worker_sid, From=WORKER, Digits="2")
    assert "/voice/menu" in action_of(root)
    assert rows(app, CallbackRequest) == []
