"""The findings of an outside security probe (issue 22), each shown fixed."""

from __future__ import annotations

import pytest

HEADERS = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options")


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

    from callrouter import redis_conn
    from callrouter.sandbox import SANDBOX_ACCOUNT

    from conftest import INTERNAL
    from procs import Stack, clean_env, free_port
    from sandbox_network import Network

    token = "access-log-token-0123456789abcdef"
    worker, professional, citizen = "+31302860123", "+31883001001", "+31612345678"
    web_port = free_port()
    public = f"http://127.0.0.1:{web_port}"
    instance = tmp_path / "instance"
    env = clean_env(
        CALLROUTER_LINES=str(lines_file),
        CALLROUTER_INSTANCE=str(instance),
        TWILIO_ACCOUNT_SID=SANDBOX_ACCOUNT,
        TWILIO_AUTH_TOKEN=token,
        PUBLIC_BASE_URL=public,
        SECRET_KEY="access-log-secret-key-0123456789",
    )
    net = Network(public, redis_conn.connect(None, instance), token)
    env["TWILIO_API_BASE_URL"] = net.api_base
    access_log = tmp_path / "access.log"
    procs = Stack(env, tmp_path / "procs.log")
    try:
        procs.web(web_port, extra=("--access-logfile", str(access_log)))
        procs.worker()
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
    finally:
        procs.stop()
        net.server.shutdown()
        redis_conn.stop_embedded(instance)
    logged = access_log.read_text()
    heard = " ".join(text for _, text in sb.transcript)
    assert "/voice/wait" in logged and "/voice/hold" in logged, logged[-2000:]
    assert "ogenblik" in heard or "wacht" in heard  # the wait and hold messages were played
    output = logged + (tmp_path / "procs.log").read_text()
    for number in (worker, professional, citizen):
        for form in (number, number[1:], "0" + number[3:], number[3:], "%2B" + number[1:]):
            assert form not in output, f"{form} in the access log or the processes' output"
