"""Callbacks with a real Redis and real RQ workers: scheduled, professional first, retried,
ordered, never lost, never doubled."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import redis as redis_pkg
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import select, update

from callrouter import callbacks
from callrouter.models import CallbackRequest

from conftest import ALL_NUMBERS, CALLER_ID, WORKER, WORKER_MOBILE, action_of, says

AMS = ZoneInfo("Europe/Amsterdam")
OTHER_WORKER = "+31302860456"  # a colleague in the same municipality
THURSDAY_0830 = datetime(2026, 11, 26, 8, 30, tzinfo=AMS)


def requests_(app) -> list[CallbackRequest]:
    with app.extensions["callrouter"].sessions() as s:
        return s.scalars(
            select(CallbackRequest).order_by(CallbackRequest.requested_at, CallbackRequest.id)
        ).all()


def ask_callback(phone, sid: str, digits: str = "32", from_: str = WORKER):
    """Reach the closed kinderbijslag line (or a line by code) and ask for a callback."""
    root = phone.post("/voice/incoming", CallSid=sid, From=from_)
    root = phone.post(action_of(root), CallSid=sid, From=from_, Digits=digits)
    assert "gesloten" in says(root), says(root)
    root = phone.post(action_of(root), CallSid=sid, From=from_, Digits="1")
    assert "terugbelverzoek is genoteerd" in says(root)
    return root


def callback_calls(phone) -> list[dict]:
    return [c for c in phone.twilio.created if "/voice/callback/whisper" in c["Url"]]


def test_closed_line_callback_end_to_end(phone, app, clock):
    """At the opening the professional is called first, accepts, and the worker is dialled in."""
    root = ask_callback(phone, "CAcb1")
    assert "morgen om 8 uur 30" in says(root)
    (req,) = requests_(app)
    assert req.state == "pending" and req.planned_at == THURSDAY_0830
    phone.drain()
    assert callback_calls(phone) == []  # nothing before its time
    clock.set(THURSDAY_0830)
    assert phone.fire_scheduled() >= 1
    phone.drain()
    (leg,) = callback_calls(phone)
    assert leg["To"] == "+31883002001" and leg["From"] == CALLER_ID
    root = phone.post(leg["Url"], CallSid=leg["Sid"])
    text = says(root)
    assert "Terugbelverzoek" in text and "Gemeente Utrecht" in text and "20 uur" in text
    root = phone.post(action_of(root), CallSid=leg["Sid"], Digits="1")
    conf = root.find("Dial/Conference")
    assert conf.get("startConferenceOnEnter") == "false" and conf.get("waitUrl")
    phone.drain()
    (name, form) = [p for p in phone.twilio.participants if "To" in p[1]][0]
    assert name == conf.text and form["To"] == WORKER
    assert form["StartConferenceOnEnter"] == "true"
    status_url = form["StatusCallback"]
    phone.post(status_url, CallSid=form["Sid"], CallStatus="in-progress", SequenceNumber=2)
    assert requests_(app)[0].state == "connected"
    phone.post(leg["StatusCallback"], CallSid=leg["Sid"], CallStatus="completed", SequenceNumber=4)
    phone.drain()
    (req,) = requests_(app)
    assert req.state == "done" and req.outcome == "connected" and req.attempts == 1


def test_no_answer_is_retried_with_backoff(phone, app, clock):
    """A professional line that does not answer is tried again 10 minutes later."""
    ask_callback(phone, "CAcb2")
    clock.set(THURSDAY_0830)
    phone.fire_scheduled()
    phone.drain()
    first = callback_calls(phone)[0]
    phone.post(first["StatusCallback"], CallSid=first["Sid"], CallStatus="no-answer")
    phone.drain()
    (req,) = requests_(app)
    assert req.state == "pending" and req.attempts == 1 and req.outcome == "no-answer"
    assert req.planned_at == datetime(2026, 11, 26, 8, 40, tzinfo=AMS)
    phone.drain()
    assert len(callback_calls(phone)) == 1  # not before its time
    clock.set(datetime(2026, 11, 26, 8, 40, tzinfo=AMS))
    phone.fire_scheduled()
    phone.drain()
    assert len(callback_calls(phone)) == 2
    assert requests_(app)[0].attempts == 2


def test_attempts_run_out_and_the_outcome_is_recorded(phone, app, clock):
    """After the configured number of attempts the request ends as failed, visibly."""
    ask_callback(phone, "CAcb3")
    with app.extensions["callrouter"].sessions.begin() as s:
        s.execute(update(CallbackRequest).values(max_attempts=1))
    clock.set(THURSDAY_0830)
    phone.fire_scheduled()
    phone.drain()
    leg = callback_calls(phone)[0]
    phone.post(leg["StatusCallback"], CallSid=leg["Sid"], CallStatus="busy")
    phone.drain()
    (req,) = requests_(app)
    assert req.state == "failed" and req.outcome == "busy" and req.done_at is not None


def test_worker_unreachable_professional_told_and_retried(phone, app, clock):
    """If the worker does not answer, the professional hears so and the request is retried."""
    ask_callback(phone, "CAcb4")
    clock.set(THURSDAY_0830)
    phone.fire_scheduled()
    phone.drain()
    leg = callback_calls(phone)[0]
    root = phone.post(leg["Url"], CallSid=leg["Sid"])
    phone.post(action_of(root), CallSid=leg["Sid"], Digits="1")
    phone.drain()
    (_, form) = [p for p in phone.twilio.participants if "To" in p[1]][0]
    phone.post(form["StatusCallback"], CallSid=form["Sid"], CallStatus="no-answer")
    phone.drain()
    sid, upd = phone.twilio.updates[-1]
    assert sid == leg["Sid"] and "/voice/callback/worker-unreachable" in upd["Url"]
    root = phone.post(upd["Url"], CallSid=leg["Sid"])
    assert "neemt helaas niet op" in says(root) and root.find("Hangup") is not None
    (req,) = requests_(app)
    assert req.state == "pending" and req.outcome == "worker-unreachable"


def test_duplicated_webhook_and_job_place_one_call(phone, app, clock):
    """A repeated callback webhook keeps one request; a job run twice rings once."""
    root = phone.post("/voice/incoming", CallSid="CAcb5", From=WORKER)
    root = phone.post(action_of(root), CallSid="CAcb5", From=WORKER, Digits="32")
    action = action_of(root)
    for _ in range(2):
        phone.post(action, CallSid="CAcb5", From=WORKER, Digits="1")
    (req,) = requests_(app)
    clock.set(THURSDAY_0830)
    with app.app_context():
        callbacks.run_due(req.id, 1)
        callbacks.run_due(req.id, 1)
    phone.fire_scheduled()
    phone.drain()
    assert len(callback_calls(phone)) == 1
    # A repeated status callback of the attempt does not fail it twice.
    leg = callback_calls(phone)[0]
    for _ in range(2):
        phone.post(
            leg["StatusCallback"], CallSid=leg["Sid"], CallStatus="no-answer", SequenceNumber=3
        )
    phone.drain()
    assert requests_(app)[0].attempts == 1


def test_urgent_first_and_one_at_a_time_per_number(phone, app, clock):
    """Of two due requests on a one-number line the urgent one rings first, alone."""
    ask_callback(phone, "CAcb6")
    clock.set(datetime(2026, 11, 25, 20, 5, tzinfo=AMS))
    ask_callback(phone, "CAcb7", from_=OTHER_WORKER)
    with app.extensions["callrouter"].sessions.begin() as s:  # the second one is urgent
        s.execute(
            update(CallbackRequest)
            .where(
                CallbackRequest.call_id.in_(
                    select(CallbackRequest.call_id)
                    .order_by(CallbackRequest.requested_at.desc())
                    .limit(1)
                    .scalar_subquery()
                )
            )
            .values(urgent=True)
        )
    normal, urgent = requests_(app)
    assert urgent.urgent and not normal.urgent
    clock.set(THURSDAY_0830)
    phone.fire_scheduled()
    phone.drain()
    (first,) = callback_calls(phone)
    assert f"cb={urgent.id}" in first["Url"]
    phone.post(first["StatusCallback"], CallSid=first["Sid"], CallStatus="busy")
    phone.drain()
    second = callback_calls(phone)[1]
    assert f"cb={normal.id}" in second["Url"]


def test_redis_down_then_back_loses_and_doubles_nothing(phone, app, clock):
    """Requests made while Redis is down are kept in the database and enqueued once later."""
    svc = app.extensions["callrouter"]
    real = svc.redis
    svc.__dict__["redis"] = redis_pkg.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.3, retry=Retry(NoBackoff(), 0)
    )
    ask_callback(phone, "CAcb8")
    ask_callback(phone, "CAcb9", from_=OTHER_WORKER)
    assert len(requests_(app)) == 2
    svc.__dict__["redis"] = real
    with app.app_context():
        assert callbacks.sweep()["enqueued"] == 2
        assert callbacks.sweep()["enqueued"] == 0
    scheduled = svc.queue("default").scheduled_job_registry.get_job_ids()
    ids = {r.id for r in requests_(app)}
    assert sorted(scheduled) == sorted(f"cb-{i}-1" for i in ids)


def test_worker_cancels_pending_request_with_one_key(phone, app, clock):
    """Calling in again, the worker hears the pending request and cancels it with *."""
    ask_callback(phone, "CAcb10")
    root = phone.post("/voice/incoming", CallSid="CAcb11", From=WORKER)
    assert "terugbelverzoek openstaan" in says(root) and "kinderbijslag" in says(root)
    root = phone.post(action_of(root), CallSid="CAcb11", From=WORKER, Digits="*")
    assert "geannuleerd" in says(root)
    (req,) = requests_(app)
    assert req.state == "cancelled" and req.outcome == "cancelled-by-worker"
    assert app.extensions["callrouter"].queue("default").scheduled_job_registry.count == 0
    clock.set(THURSDAY_0830)
    phone.fire_scheduled()
    phone.drain()
    assert callback_calls(phone) == []


def test_sms_confirmation_to_mobile_only(phone, app, clock):
    """An organisation that enables it gets an SMS with the planned time, on mobiles only."""
    ask_callback(phone, "CAcb12", from_=WORKER_MOBILE)
    clock.set(datetime(2026, 11, 25, 20, 1, tzinfo=AMS))
    ask_callback(phone, "CAcb13", from_=WORKER)
    phone.drain()
    (sms,) = phone.twilio.messages
    ref = requests_(app)[0].reference
    assert sms["To"] == WORKER_MOBILE and ref in sms["Body"] and "morgen" in sms["Body"]


def test_no_number_or_name_in_redis(phone, app, clock, redis_client):
    """After the scenarios, no phone number and no name is in any Redis key or value."""
    ask_callback(phone, "CAcb14")
    ask_callback(phone, "CAcb15", from_=WORKER_MOBILE)
    clock.set(THURSDAY_0830)
    phone.fire_scheduled()
    phone.drain()
    leg = callback_calls(phone)[0]
    phone.post(leg["StatusCallback"], CallSid=leg["Sid"], CallStatus="failed")
    phone.drain()
    dump = []
    for key in redis_client.scan_iter("*"):
        dump.append(key.decode(errors="replace"))
        kind = redis_client.type(key).decode()
        if kind == "string":
            dump.append(repr(redis_client.get(key)))
        elif kind == "hash":
            dump.append(repr(redis_client.hgetall(key)))
        elif kind == "list":
            dump.append(repr(redis_client.lrange(key, 0, -1)))
        elif kind in ("set",):
            dump.append(repr(redis_client.smembers(key)))
        elif kind == "zset":
            dump.append(repr(redis_client.zrange(key, 0, -1)))
    text = "\n".join(dump)
    assert "cb-" in text  # the scan did see the callback jobs
    for number in ALL_NUMBERS:
        for form in (number, number[1:], "0" + number[3:]):
            assert form not in text
    for name in ("Utrecht", "Amsterdam", "kinderbijslag", "SVB"):
        assert name not in text


def test_line_never_open_with_caller_offers_no_callback(phone, app, clock):
    """A line that is never open while the caller's office is (IND: Saturdays only): no
    callback is offered (it could never happen); 1 leads to another organisation, and no
    request is stored. A stale offer posted anyway still says so and stores a failed one."""
    root = phone.post("/voice/incoming", CallSid="CAcb16", From=WORKER)
    root = phone.post(action_of(root), CallSid="CAcb16", From=WORKER, Digits="71")
    assert "gesloten" in says(root) and "niet mogelijk" in says(root)
    assert "teruggebeld wilt worden" not in says(root)
    assert action_of(root).endswith("/voice/again")
    root = phone.post(action_of(root), CallSid="CAcb16", From=WORKER, Digits="2")
    assert "/voice/menu" in action_of(root)  # 2, as in the usual offer
    assert requests_(app) == []
    root = phone.post(
        "/voice/callback?line=ind-verblijf&reason=closed", CallSid="CAcb16", From=WORKER, Digits="1"
    )
    assert "geen openingstijden" in says(root)
    (req,) = requests_(app)
    assert req.state == "failed" and req.outcome == "never-open"


def test_real_redis_stopped_then_restarted(tmp_path, environ, twilio, clock):
    """With the Redis server itself stopped, requests are kept; after its restart the
    worker's start-up sweep enqueues each exactly once."""
    from callrouter import create_app, redis_conn

    from conftest import Phone

    instance = tmp_path / "own-redis"
    url = redis_conn.ensure_embedded(instance)
    app = create_app(environ=dict(environ, REDIS_URL=url))
    with app.test_client() as client:
        phone = Phone(app, client, twilio, url)
        ask_callback(phone, "CAcbr0")  # Redis up: scheduled at once
        redis_conn.stop_embedded(instance)
        for i in range(1, 4):  # Redis down: kept in the database only
            ask_callback(phone, f"CAcbr{i}", from_=f"+3130286{i:04d}")
        assert len(requests_(app)) == 4
        redis_conn.ensure_embedded(instance)  # restarted (its saved data reloaded)
        try:
            with app.app_context():
                counts = callbacks.sweep()
                again = callbacks.sweep()
            svc = app.extensions["callrouter"]
            scheduled = sorted(svc.queue("default").scheduled_job_registry.get_job_ids())
            assert counts["enqueued"] == 3 and again["enqueued"] == 0
            assert scheduled == sorted(f"cb-{r.id}-1" for r in requests_(app))
        finally:
            redis_conn.stop_embedded(instance)


def test_operator_lists_cancels_and_reschedules(phone, app, clock):
    """`flask callbacks list|cancel|reschedule` work on ids and references."""
    ask_callback(phone, "CAcbo1")
    clock.set(datetime(2026, 11, 25, 20, 1, tzinfo=AMS))
    ask_callback(phone, "CAcbo2", from_=OTHER_WORKER)
    first, second = requests_(app)
    runner = app.test_cli_runner()
    out = runner.invoke(args=["callbacks", "list"])
    assert out.exit_code == 0 and first.reference in out.output and "+31 3 ****0123" in out.output
    assert WORKER not in out.output
    out = runner.invoke(
        args=["callbacks", "reschedule", second.reference, "--at", "2026-11-27T10:15"]
    )
    assert out.exit_code == 0, out.output
    assert requests_(app)[1].planned_at == datetime(2026, 11, 27, 10, 15, tzinfo=AMS)
    registry = app.extensions["callrouter"].queue("default").scheduled_job_registry
    assert len(registry.get_job_ids()) == 2
    out = runner.invoke(args=["callbacks", "cancel", first.id])
    assert out.exit_code == 0 and requests_(app)[0].state == "cancelled"
    out = runner.invoke(args=["callbacks", "cancel", first.id])
    assert out.exit_code != 0 and "only pending" in out.output
    assert runner.invoke(args=["callbacks", "cancel", "NOPE42"]).exit_code != 0
    out = runner.invoke(args=["callbacks", "list", "--state", "cancelled"])
    assert first.reference in out.output and second.reference not in out.output


def test_another_case_gets_a_request_of_its_own(phone, app, clock):
    """A worker calling again for the same line opens another case (another citizen): each
    case keeps its own request, in the order asked."""
    ask_callback(phone, "CAcbu1")
    clock.set(datetime(2026, 11, 25, 20, 30, tzinfo=AMS))
    ask_callback(phone, "CAcbu2")
    first, second = requests_(app)
    assert first.case_id and second.case_id and first.case_id != second.case_id
    assert first.requested_at < second.requested_at


def test_asking_again_on_the_same_case_updates_the_pending_request(phone, app, clock):
    """One case never holds two pending requests for one line: asking again (on the way
    back, say) updates the request, which keeps its place in the queue."""
    from callrouter import callbacks

    ask_callback(phone, "CAcbu1")
    (req,) = requests_(app)
    phone.post("/voice/incoming", CallSid="CAcbu3", From=WORKER)
    svc = app.extensions["callrouter"]
    with app.app_context(), svc.sessions.begin() as s:
        from sqlalchemy import select

        from callrouter.models import Call

        other = s.scalar(select(Call).where(Call.call_sid == "CAcbu3"))
        again, updated = callbacks.create(
            s,
            call_id=other.id,
            transfer_id=None,
            caller_org="utrecht",
            line_id=req.line_id,
            urgent=True,
            consent=False,
            reason="closed",
            worker_number=WORKER,
            at=datetime(2026, 11, 25, 20, 40, tzinfo=AMS),
            case_id=req.case_id,
        )
        assert updated and again.id == req.id
    (req2,) = requests_(app)
    assert req2.urgent and req2.requested_at == datetime(2026, 11, 25, 20, 0, tzinfo=AMS)


def test_same_urgency_keeps_order_and_one_call_per_number(phone, app, clock):
    """Two normal requests on a one-number line: the older rings first, the other waits."""
    ask_callback(phone, "CAcbs1", from_=OTHER_WORKER)
    clock.set(datetime(2026, 11, 25, 20, 1, tzinfo=AMS))
    ask_callback(phone, "CAcbs2")
    older, newer = requests_(app)
    clock.set(THURSDAY_0830)
    phone.fire_scheduled()
    phone.drain()
    (first,) = callback_calls(phone)
    assert f"cb={older.id}" in first["Url"]
    phone.post(first["Url"], CallSid=first["Sid"])
    phone.drain()
    assert len(callback_calls(phone)) == 1  # the line's only number is busy with the first
    phone.post(first["StatusCallback"], CallSid=first["Sid"], CallStatus="completed")
    phone.drain()
    second = callback_calls(phone)[1]
    assert f"cb={newer.id}" in second["Url"]


def test_two_number_line_rings_each_number_once(phone, app, clock):
    """Two due requests on a two-number line run at once, each on its own number."""
    from callrouter.models import Call

    clock.set(THURSDAY_0830)
    svc = app.extensions["callrouter"]
    ids = []
    with app.app_context():
        for i, worker in enumerate((WORKER, OTHER_WORKER)):
            with svc.sessions.begin() as s:
                s.add(
                    Call(
                        id=f"{i:032d}",
                        call_sid=f"CAtwo{i}",
                        received_at=clock.moment,
                        caller_org="utrecht",
                        urgent=False,
                        consent=False,
                    )
                )
                s.flush()
                req, _ = callbacks.create(
                    s,
                    call_id=f"{i:032d}",
                    transfer_id=None,
                    caller_org="utrecht",
                    line_id="svb-aow",
                    urgent=False,
                    consent=False,
                    reason="closed",
                    worker_number=worker,
                    at=clock.moment,
                )
                ids.append(req.id)
        for request_id in ids:
            callbacks.schedule(request_id)
    phone.drain()
    legs = callback_calls(phone)
    assert sorted(c["To"] for c in legs) == ["+31883001001", "+31883001002"]
    assert {r.number_index for r in requests_(app)} == {0, 1}


def test_sweeper_closes_attempts_whose_callbacks_were_lost(phone, app, clock):
    """An attempt left ringing or connected by lost status callbacks does not block the line."""
    from datetime import timedelta

    ask_callback(phone, "CAcbl1")
    clock.set(THURSDAY_0830)
    phone.fire_scheduled()
    phone.drain()
    assert requests_(app)[0].state == "dialling"
    clock.set(THURSDAY_0830 + timedelta(minutes=20))
    with app.app_context():
        assert callbacks.sweep()["stale"] == 1
    (req,) = requests_(app)
    assert req.state == "pending" and req.outcome == "lost"
    with app.extensions["callrouter"].sessions.begin() as s:
        s.execute(update(CallbackRequest).values(state="connected"))
    clock.set(THURSDAY_0830 + timedelta(hours=5))
    with app.app_context():
        callbacks.sweep()
    assert requests_(app)[0].state == "done"


def test_another_web_process_announces_a_request_made_a_moment_ago(
    app, environ, clock, twilio, redis_url
):
    """Two web processes (two apps on one instance folder and database): the second one has
    just looked up its pending workers; a request made on the first is still announced by the
    second on the worker's very next call, not only after the cache's few seconds."""
    from callrouter import create_app

    from conftest import Phone

    other_app = create_app(environ=environ)
    try:
        first = Phone(app, app.test_client(), twilio, redis_url)
        other = Phone(other_app, other_app.test_client(), twilio, redis_url)
        root = other.post("/voice/incoming", CallSid="CAcb40", From=WORKER)
        assert "terugbelverzoek" not in says(root)  # its cache now: nobody waits
        ask_callback(first, "CAcb41")
        root = other.post("/voice/incoming", CallSid="CAcb42", From=WORKER)
        assert "terugbelverzoek openstaan" in says(root) and "kinderbijslag" in says(root)
    finally:
        other_app.extensions["callrouter"].engine.dispose()


def test_the_stamp_moves_on_announce_only_and_within_one_clock_tick(tmp_path):
    """`add` (inside the request's transaction) leaves the stamp alone; each `announce` (after
    the commit) moves it, even twice within one tick of the file system's clock."""
    from callrouter.callbacks import PendingWorkers

    stamp = tmp_path / "instance" / "pending-callbacks.stamp"
    mine, other = PendingWorkers(stamp=stamp), PendingWorkers(stamp=stamp)
    mine.add("worker-hmac")
    assert other._stamp() is None
    mine.announce()
    first = other._stamp()
    mine.announce()
    assert first is not None and other._stamp() != first
