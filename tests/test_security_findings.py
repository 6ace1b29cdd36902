"""The findings of an outside security probe (issue 22), each shown fixed."""

from __future__ import annotations

import base64
import os
import re
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from callrouter.dashboard.dates import EARLIEST, LATEST

from dashboard_helpers import add_call, csrf_of, login, make_token, make_user

HEADERS = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options")


@pytest.fixture
def admin(app):
    make_user(app, "beheer@example.nl", "admin")
    client = app.test_client()
    assert login(client, "beheer@example.nl").status_code == 302
    return client


# --------------------------------------------------------------- unmatched paths


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        ("GET", "/api/v1/nope", 404, "not_found"),
        ("GET", "/api/v1/transfers/x/y", 404, "not_found"),
        ("DELETE", "/api/v1/transfers", 405, "method_not_allowed"),
        ("GET", "/api/v1", 404, "not_found"),
    ],
)
def test_unmatched_api_paths_answer_json_with_the_apis_headers(app, method, path, status, error):
    resp = app.test_client().open(path, method=method)
    assert resp.status_code == status
    assert resp.is_json and resp.get_json()["error"] == error
    assert all(h in resp.headers for h in HEADERS)
    assert resp.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("method", "path", "status", "words"),
    [
        ("GET", "/dashboard/nope", 404, "Niet gevonden"),
        ("GET", "/dashboard/calls/x/y/z", 404, "Niet gevonden"),
        ("PUT", "/dashboard/calls", 405, "Niet toegestaan"),
    ],
)
def test_unmatched_dashboard_paths_answer_its_page_with_its_headers(
    app, method, path, status, words
):
    resp = app.test_client().open(path, method=method)
    assert resp.status_code == status and resp.mimetype == "text/html"
    assert words in resp.get_data(as_text=True)
    assert all(h in resp.headers for h in HEADERS)
    if status == 405:
        assert "GET" in resp.headers["Allow"]


def test_unmatched_voice_paths_still_refuse_unsigned_requests(app):
    assert app.test_client().post("/voice/nope").status_code == 403


def test_other_unmatched_paths_keep_flasks_answer(app):
    resp = app.test_client().get("/nope")
    assert resp.status_code == 404 and "Content-Security-Policy" not in resp.headers


# --------------------------------------------------------------- access logs


def test_no_number_in_the_access_log_of_a_whole_call_with_hold_music(tmp_path, lines_file):
    """gunicorn with its access log on (as `make run` has it), worker.py, the sandbox as the
    network: a transfer with wait music, the professional on hold while the worker adds the
    citizen, the hand-over. No form of any number reaches the access log or the processes'
    output: Twilio's parameters travel in POST bodies, never in a query string."""
    from collections import deque

    from conftest import INTERNAL
    from sandbox_network import service_on_network

    worker, professional, citizen = "+31302860123", "+31883001001", "+31612345678"
    access_log = tmp_path / "access.log"
    token = "access-log-token-0123456789abcdef"
    extra = ("--access-logfile", str(access_log))
    with service_on_network(tmp_path, lines_file, token, extra) as (net, _env):
        public = net.public
        sb = net.new_call_network(None)
        sb.phone(professional).inputs = deque(["1"])
        sb.phone(worker).inputs = deque(["31", ""])
        with net.lock:
            sid = sb.dial_in(
                worker,
                INTERNAL,
                public + "/voice/incoming",
                status_callback=public + "/voice/status/call",
            )
        net.settle()
        prof = net.live(professional)
        assert prof is not None and net.together(sid, prof.sid)
        with net.lock:
            assert sb.press_star(sid)  # the * menu: the professional waits, on hold
        net.settle(time_out_prompts=False)
        sb.phone(worker).inputs.extend(["1", "0612345678#"])  # add the citizen
        sb.phone(citizen).answer = "answer"
        net.settle()
        assert net.together(sid, prof.sid, net.live(citizen).sid)
        sb.phone(worker).inputs.append("2")  # hand over
        with net.lock:
            assert sb.press_star(sid)
        net.settle()
        net.hang_up_everyone()
    logged = access_log.read_text()
    heard = " ".join(text for _, text in sb.transcript)
    assert "/voice/wait" in logged and "/voice/hold" in logged, logged[-2000:]
    assert "ogenblik" in heard or "wacht" in heard  # the wait and hold messages were played
    output = logged + (tmp_path / "procs.log").read_text()
    for number in (worker, professional, citizen):
        for form in (number, number[1:], "0" + number[3:], number[3:], "%2B" + number[1:]):
            assert form not in output, f"{form} in the access log or the processes' output"


# --------------------------------------------------------------- dates at the calendar's edges

# The edges are always tried (hypothesis' explicit examples), then random dates.
EDGES = [date.min, date.max, EARLIEST, LATEST, EARLIEST - timedelta(days=1), LATEST + timedelta(1)]
MOMENT_EDGES = [
    datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-14))),
    datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),
    datetime.combine(EARLIEST, datetime.min.time(), tzinfo=timezone(timedelta(hours=14))),
    datetime.combine(LATEST, datetime.max.time(), tzinfo=timezone(timedelta(hours=-14))),
]
DAYS = st.dates()
OFFSETS = st.sampled_from([timezone(timedelta(hours=h)) for h in (-14, -12, 0, 12, 14)])
MOMENTS = st.one_of(
    st.sampled_from([datetime(9999, 12, 31, 23, 59, 59), datetime(1, 1, 1)]),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
).flatmap(lambda m: OFFSETS.map(lambda tz: m.replace(tzinfo=tz)))
FUZZ = settings(
    max_examples=int(os.environ.get("CALLROUTER_DATE_EXAMPLES", "12")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PAGES = [
    (path, key)
    for path in ("/dashboard/calls", "/dashboard/calls.csv", "/dashboard/cases")
    for key in ("from", "to")
] + [(path, key) for path in ("/dashboard/figures", "/dashboard/network") for key in ("from", "to")]


def _each(values, *names):
    """Hypothesis' explicit examples: each value (a tuple for several names) is tried."""

    def decorate(test):
        for value in values:
            test = example(**dict(zip(names, value if len(names) > 1 else (value,), strict=True)))(
                test
            )
        return test

    return decorate


def _cursor(moment: datetime) -> str:
    raw = f"{moment.isoformat()}|{'a' * 32}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _expect_page(resp, in_window: bool) -> None:
    if in_window:
        assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    else:
        assert resp.status_code == 400 and "Kies een datum tussen" in resp.get_data(as_text=True)
        assert "Content-Security-Policy" in resp.headers


@pytest.mark.parametrize(("path", "key"), PAGES)
def test_pages_answer_dates_at_the_calendars_edges(admin, path, key):
    @FUZZ
    @given(day=DAYS)
    @_each(EDGES, "day")
    def check(day):
        resp = admin.get(path, query_string={key: day.isoformat()})
        _expect_page(resp, EARLIEST <= day <= LATEST)

    check()


@pytest.mark.parametrize("path", ["/dashboard/calls", "/dashboard/callbacks", "/dashboard/cases"])
def test_page_cursors_at_the_calendars_edges(admin, path):
    @FUZZ
    @given(moment=MOMENTS)
    @_each(MOMENT_EDGES, "moment")
    def check(moment):
        resp = admin.get(path, query_string={"cursor": _cursor(moment)})
        _expect_page(resp, EARLIEST <= moment.date() <= LATEST)

    check()


@pytest.mark.parametrize("path", ["/api/v1/transfers", "/api/v1/callbacks", "/api/v1/cases"])
@pytest.mark.parametrize("key", ["since", "until", "cursor"])
def test_the_api_answers_dates_at_the_calendars_edges(app, path, key):
    token = make_token(app, "edges")
    client = app.test_client()

    @FUZZ
    @given(moment=MOMENTS, date_only=st.booleans())
    @_each([(m, d) for m in MOMENT_EDGES for d in (True, False)], "moment", "date_only")
    def check(moment, date_only):
        if key == "cursor":
            value = _cursor(moment)
        else:
            value = moment.date().isoformat() if date_only else moment.isoformat()
        resp = client.get(
            path, query_string={key: value}, headers={"Authorization": f"Bearer {token}"}
        )
        if EARLIEST <= moment.date() <= LATEST:
            assert resp.status_code == 200, resp.get_json()
        else:
            assert resp.status_code == 400 and resp.get_json()["error"] == "bad_request"
            assert key in resp.get_json()["message"]

    check()


def test_reschedule_to_the_end_of_time_is_refused(app, admin):
    ids = add_call(app, outcome="callback-requested", callback_state="pending")
    page = admin.get("/dashboard/callbacks").get_data(as_text=True)
    for at, status in (("9999-12-31T23:00", 400), ("0001-01-01T09:00", 400)):
        resp = admin.post(
            f"/dashboard/callbacks/{ids['callback']}/reschedule",
            data={"csrf_token": csrf_of(page), "at": at},
        )
        assert resp.status_code == status and "Kies een datum" in resp.get_data(as_text=True)


# --------------------------------------------------------------- logins


def _client_at(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _logins(app, action: str = "login") -> list:
    from sqlalchemy import select

    from callrouter.models import AuditEntry

    with app.extensions["callrouter"].sessions() as s:
        q = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        return list(s.scalars(q))


def test_parallel_wrong_passwords_check_no_more_than_the_limit(tmp_path, environ):
    """40 wrong passwords at once against one account, through gunicorn with four workers:
    each check takes its attempt atomically first, so at most MAX_FAILED_LOGINS passwords
    are checked (counted in the audit log) and the account is locked."""
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from callrouter import create_app
    from callrouter.dashboard import auth

    from procs import Stack, free_port

    service = create_app(environ=environ)  # migrates the database the workers share
    make_user(service, "sup@utrecht.nl", "supervisor", "utrecht")
    port = free_port()
    procs = Stack(dict(environ), tmp_path / "procs.log")
    try:
        procs.web(port, workers=4)
        base = f"http://127.0.0.1:{port}/dashboard/login"

        def attempt(i: int) -> int:
            with requests.Session() as http:
                token = csrf_of(http.get(base, timeout=30).text)
                form = {"email": "sup@utrecht.nl", "password": f"wrong-{i}", "csrf_token": token}
                return http.post(base, data=form, timeout=60).status_code

        with ThreadPoolExecutor(40) as pool:
            statuses = list(pool.map(attempt, range(40)))
    finally:
        procs.stop()
    assert statuses == [401] * 40
    entries = _logins(service)
    checked = [e for e in entries if e.detail["reason"] in ("invalid", "lockout")]
    assert len(entries) == 40 and len(checked) <= auth.MAX_FAILED_LOGINS
    assert [e.detail["reason"] for e in checked].count("lockout") == 1
    service.extensions["callrouter"].engine.dispose()


def test_known_and_unknown_accounts_get_the_same_answers(app):
    """Wrong passwords for an account that exists and for one that does not: the same status
    and the same words at every try, the lockout of the real one included."""
    make_user(app, "sup@utrecht.nl", "supervisor", "utrecht")
    answers = {}
    for email in ("sup@utrecht.nl", "niemand@utrecht.nl"):
        client, seen = app.test_client(), []
        for _ in range(7):
            resp = login(client, email, "wrong-password-123")
            error = re.search(r'id="login-error">([^<]*)<', resp.get_data(as_text=True))
            seen.append((resp.status_code, error and error.group(1)))
        answers[email] = seen
    assert answers["sup@utrecht.nl"] == answers["niemand@utrecht.nl"]
    assert all(error for _, error in answers["sup@utrecht.nl"])
    assert len(_logins(app, "lockout")) == 1  # the real account is locked all the same


def test_failed_logins_are_throttled_per_client_address(app):
    """After THROTTLE_PER_ADDRESS failures from one address (any accounts, real or not), that
    address gets no further password check, not even a right one; others still log in."""
    from callrouter.dashboard import auth

    make_user(app, "sup@utrecht.nl", "supervisor", "utrecht")
    attacker = app.test_client()
    for i in range(auth.THROTTLE_PER_ADDRESS):
        login(attacker, f"guess{i}@utrecht.nl", "wrong-password-123")
    assert login(attacker, "sup@utrecht.nl").status_code == 401
    assert _logins(app)[-1].detail["reason"] == "throttled"
    # The count lasts for the window from the first failure, then starts again.
    redis = app.extensions["callrouter"].redis
    (key,) = redis.keys("callrouter:login-fail:*")
    assert 0 < redis.ttl(key) <= auth.THROTTLE_WINDOW.total_seconds()
    assert int(redis.get(key)) == auth.THROTTLE_PER_ADDRESS + 1
    # The account itself is not locked: its owner, elsewhere, logs in.
    owner = _client_at(app, "192.0.2.7")
    assert login(owner, "sup@utrecht.nl").status_code == 302


@pytest.mark.parametrize("proxies", ["0", "1"])
def test_the_client_address_comes_from_the_configured_proxy_depth(environ, proxies):
    """With CALLROUTER_PROXIES=1 the audit log and the throttle see the address the proxy
    forwards; without it (the default) a forwarded header is ignored, as anyone could send it."""
    from callrouter import create_app

    app = create_app(environ=dict(environ, CALLROUTER_PROXIES=proxies))
    make_user(app, "sup@utrecht.nl", "supervisor", "utrecht")
    client = _client_at(app, "10.0.0.2")
    headers = {"X-Forwarded-For": "198.51.100.23"}
    page = client.get("/dashboard/login", headers=headers).get_data(as_text=True)
    form = {"email": "sup@utrecht.nl", "password": "wrong-123456", "csrf_token": csrf_of(page)}
    client.post("/dashboard/login", data=form, headers=headers)
    (entry,) = _logins(app)
    assert entry.origin == ("198.51.100.23" if proxies == "1" else "10.0.0.2")
    app.extensions["callrouter"].engine.dispose()
