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


@pytest.mark.parametrize("status", [503, 429])
def test_passing_failure_fails_the_job_and_the_retry_places_the_call(phone, app, status):
    start_transfer(phone, "31", "", sid="CAjf1")
    phone.twilio.fail_create, phone.twilio.fail_status = 1, status
    phone.drain()
    assert phone.twilio.created == []
    assert len(_retries(app)) == 1  # RQ runs it again
    assert rows(app, Leg) == []  # the row of the failed request is gone: the retry rings
    _run_retries(phone, app)
    assert [c["To"] for c in phone.twilio.created] == [FIRST]
    (leg,) = rows(app, Leg)
    assert leg.position == 0 and leg.call_sid == phone.twilio.created[0]["Sid"]
    assert _failed(app) == 0 and _retries(app) == []


def test_failure_that_does_not_pass_ends_in_rqs_failed_registry(phone, app):
    start_transfer(phone, "31", "", sid="CAjf2")
    phone.twilio.fail_create, phone.twilio.fail_status = 10, 503
    phone.drain()
    for _ in range(3):  # RQ's three retries
        _run_retries(phone, app)
    assert _failed(app) == 1 and _retries(app) == [] and phone.twilio.created == []
    (tr,) = rows(app, Transfer)
    assert tr.state == "dialling"  # the transfer's watchdog ends it; nothing recorded twice
    assert rows(app, Leg) == []


def test_permanent_failure_is_the_legs_outcome_and_the_hunt_moves_on(phone, app):
    start_transfer(phone, "31", "", sid="CAjf3")
    phone.twilio.fail_create, phone.twilio.fail_status = 1, 400
    phone.drain()
    assert _retries(app) == [] and _failed(app) == 0
    assert [c["To"] for c in phone.twilio.created] == [SECOND]
    legs = sorted(rows(app, Leg), key=lambda leg: leg.position)
    assert [(leg.position, leg.outcome) for leg in legs] == [(0, "failed"), (1, None)]


def test_passing_failure_outside_rq_is_recorded(phone, app):
    """Without an RQ job around it (Redis down: the work runs after the response) nothing
    would retry it, so the failure is the leg's outcome and the hunt moves on."""
    start_transfer(phone, "31", "", sid="CAjf4")
    (tr,) = rows(app, Transfer)
    phone.twilio.fail_create, phone.twilio.fail_status = 1, 503
    with app.app_context():
        sid = jobs.place_leg(tr.id, 0)
    assert [c["To"] for c in phone.twilio.created] == [SECOND]
    assert sid == phone.twilio.created[0]["Sid"]
    legs = sorted(rows(app, Leg), key=lambda leg: leg.position)
    assert [leg.outcome for leg in legs] == ["failed", None]


def test_cancelling_a_leg_retries_a_passing_failure(phone, app):
    start_transfer(phone, "31", "", sid="CAjf5")
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
    ("status", "transient"), [(429, True), (500, True), (503, True), (400, False), (404, False)]
)
def test_adapter_tells_passing_from_permanent_answers(status, transient):
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, CALL, status=status, json={"code": 1, "status": status})
        with pytest.raises(TelephonyError) as info:
            _adapter().update_call("CA" + "1" * 32, status="canceled")
    assert info.value.status == status and info.value.transient is transient


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
