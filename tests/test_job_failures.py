"""A REST request that fails in a job: a passing failure fails the job (RQ retries it and keeps
it in its failed registry), a permanent one (4xx) is recorded as the outcome - never both."""

from __future__ import annotations

import pytest
import requests
import responses
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from urllib3.exceptions import NewConnectionError

from callrouter import jobs
from callrouter.models import Leg, Transfer
from callrouter.twilio_adapter import TelephonyError, TwilioAdapter

from conftest import ACCOUNT, API, TOKEN
from test_voice_transfer import rows, start_transfer

FIRST, SECOND = "+31883001001", "+31883001002"  # the hunt group of line 31


def _retries(app) -> list[str]:
    """The jobs RQ will run again (a retry with an interval waits in the scheduled registry;
    the transfer's watchdog waits there too, and is left out)."""
    queue = app.extensions["callrouter"].queue("calls")
    ids = ScheduledJobRegistry(queue=queue).get_job_ids()
    return [job_id for job_id in ids if not job_id.startswith("watchdog-")]


def _run_retries(phone, app) -> None:
    """Run the retries now (as RQ's scheduler does when their time comes), not the watchdog."""
    queue = app.extensions["callrouter"].queue("calls")
    registry = ScheduledJobRegistry(queue=queue)
    for job_id in _retries(app):
        registry.remove(job_id)
        queue.enqueue_job(queue.fetch_job(job_id))
    phone.drain()


def _failed(app) -> int:
    return FailedJobRegistry(queue=app.extensions["callrouter"].queue("calls")).count


def test_passing_failure_fails_the_job_and_the_retry_places_the_call(phone, app):
    start_transfer(phone, "31", "", sid="CAjf1")
    phone.twilio.create_failures = [429]  # too many requests: not acted on, may be repeated
    phone.drain()
    assert phone.twilio.created == []
    assert len(_retries(app)) == 1  # RQ runs it again
    assert rows(app, Leg) == []  # the row of the failed request is gone: the retry rings
    _run_retries(phone, app)
    assert [c["To"] for c in phone.twilio.created] == [FIRST]
    (leg,) = rows(app, Leg)
    assert leg.position == 0 and leg.call_sid == phone.twilio.created[0]["Sid"]
    assert _failed(app) == 0 and _retries(app) == []


@pytest.mark.parametrize("status", [500, 503, 400])
def test_a_new_call_that_may_exist_is_not_requested_again(phone, app, status):
    """After a 5xx the provider may have made the call all the same: a second request would
    ring a second phone. The number counts as failed and the hunt moves on (as after a 4xx)."""
    start_transfer(phone, "31", "", sid=f"CAjf2{status}")
    phone.twilio.create_failures = [status]
    phone.drain()
    assert _retries(app) == [] and _failed(app) == 0
    assert [c["To"] for c in phone.twilio.created] == [SECOND]
    legs = sorted(rows(app, Leg), key=lambda leg: leg.position)
    assert [(leg.position, leg.outcome) for leg in legs] == [(0, "failed"), (1, None)]


def test_each_number_of_the_hunt_has_its_own_retries(phone, app):
    """The first number is refused, the second is rate-limited once: the retry rings the
    second number (not the first again)."""
    start_transfer(phone, "31", "", sid="CAjf3")
    phone.twilio.create_failures = [400, 429]
    phone.drain()
    assert phone.twilio.created == [] and len(_retries(app)) == 1
    _run_retries(phone, app)
    assert [c["To"] for c in phone.twilio.created] == [SECOND]
    legs = sorted(rows(app, Leg), key=lambda leg: leg.position)
    assert [(leg.position, leg.outcome) for leg in legs] == [(0, "failed"), (1, None)]
    assert legs[1].call_sid == phone.twilio.created[0]["Sid"]


def test_when_the_retries_are_used_up_the_number_fails_and_the_hunt_moves_on(phone, app):
    """RQ's three retries fail too: the worker is not left waiting for the watchdog."""
    start_transfer(phone, "31", "", sid="CAjf4")
    phone.twilio.create_failures = [429] * 4  # the first run and RQ's three retries
    phone.drain()
    for _ in range(3):
        _run_retries(phone, app)
    assert [c["To"] for c in phone.twilio.created] == [SECOND]
    legs = sorted(rows(app, Leg), key=lambda leg: leg.position)
    assert [(leg.position, leg.outcome) for leg in legs] == [(0, "failed"), (1, None)]
    assert _retries(app) == [] and _failed(app) == 0


def test_passing_failure_outside_rq_is_recorded(phone, app):
    """Without an RQ job around it (Redis down: the work runs after the response) nothing
    would retry it, so the failure is the leg's outcome and the hunt moves on."""
    start_transfer(phone, "31", "", sid="CAjf5")
    (tr,) = rows(app, Transfer)
    phone.twilio.create_failures = [429]
    with app.app_context():
        assert jobs.place_leg(tr.id, 0) is None
    phone.drain()  # the next number's job
    assert [c["To"] for c in phone.twilio.created] == [SECOND]
    legs = sorted(rows(app, Leg), key=lambda leg: leg.position)
    assert [leg.outcome for leg in legs] == ["failed", None]


def test_cancelling_a_leg_retries_a_passing_failure(phone, app):
    start_transfer(phone, "31", "", sid="CAjf6")
    phone.drain()
    (leg,) = rows(app, Leg)
    (tr,) = rows(app, Transfer)
    phone.twilio.fail_update, phone.twilio.fail_status = 1, 503
    with app.app_context():
        jobs.dispatch(jobs.cancel_legs, tr.id)
    phone.drain()
    assert len(_retries(app)) == 1 and phone.twilio.updates == []
    _run_retries(phone, app)
    assert phone.twilio.updates == [(leg.call_sid, {"Status": "canceled"})]
    assert _failed(app) == 0


# --------------------------------------------------------------------------- the adapter


def _adapter() -> TwilioAdapter:
    return TwilioAdapter(ACCOUNT, TOKEN, API)


CALLS = f"{API}/2010-04-01/Accounts/{ACCOUNT}/Calls.json"
CALL = f"{API}/2010-04-01/Accounts/{ACCOUNT}/Calls/CA{'1' * 32}.json"
NEW = dict(
    to="+31883001001", from_="+31302860000", url="https://x/y", status_callback="https://x/s"
)


@pytest.mark.parametrize(
    ("status", "update", "create"),
    [(429, True, True), (500, True, False), (503, True, False), (400, False, False)],
)
def test_adapter_tells_passing_from_permanent_answers(status, update, create):
    """An update may be repeated after any passing failure; a new call only after 429."""
    body = {"code": 1, "status": status, "message": "x"}
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, CALL, status=status, json=body)
        rsps.add(responses.POST, CALLS, status=status, json=body)
        with pytest.raises(TelephonyError) as updating:
            _adapter().update_call("CA" + "1" * 32, status="canceled")
        with pytest.raises(TelephonyError) as creating:
            _adapter().create_call(**NEW, timeout=15)
    assert updating.value.status == creating.value.status == status
    assert (updating.value.transient, creating.value.transient) == (update, create)


def test_adapter_repeats_no_new_call_that_may_exist():
    """A read timeout may come after the provider created the call: not to be repeated. A
    connection that was never made is; an update may always be repeated."""
    refused = requests.exceptions.ConnectionError(NewConnectionError(None, "refused"))
    cases = [
        (CALLS, requests.exceptions.ReadTimeout("read"), False),
        (CALLS, requests.exceptions.ConnectTimeout("connect"), True),
        (CALLS, refused, True),
        (CALL, requests.exceptions.ReadTimeout("read"), True),
    ]
    for url, exc, transient in cases:
        with responses.RequestsMock() as rsps:
            rsps.add(responses.POST, url, body=exc)
            with pytest.raises(TelephonyError) as info:
                if url == CALLS:
                    _adapter().create_call(**NEW, timeout=15)
                else:
                    _adapter().update_call("CA" + "1" * 32, url="https://x/z")
        assert info.value.transient is transient, (url, exc)
