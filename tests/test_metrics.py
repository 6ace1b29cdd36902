"""The /metrics endpoint: who may read it, and that its series say what happened."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from callrouter import create_app, metrics_state, multiproc
from callrouter.models import Call, CallbackRequest, Leg, Transfer

from conftest import WORKER
from test_voice_transfer import _connected, start_transfer

METRICS_TOKEN = "metrics-token-0123456789abcdefghij"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def environ(environ):
    return {**environ, "METRICS_TOKEN": METRICS_TOKEN}


def scrape(client, token: str = METRICS_TOKEN) -> dict:
    """{(sample name, ((label, value), ...)): value} of one scrape."""
    resp = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.data[:200]
    assert resp.mimetype == "text/plain"
    out = {}
    for family in text_string_to_metric_families(resp.get_data(as_text=True)):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_the_endpoint_wants_the_token(app):
    client = app.test_client()
    resp = client.get("/metrics")
    assert resp.status_code == 401 and "Bearer" in resp.headers["WWW-Authenticate"]
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert client.get("/metrics", headers={"Authorization": METRICS_TOKEN}).status_code == 401
    assert value(scrape(client), "callrouter_up", store="database") == 1


def test_the_endpoint_is_off_without_a_token(environ):
    app = create_app(environ={k: v for k, v in environ.items() if k != "METRICS_TOKEN"})
    resp = app.test_client().get("/metrics", headers={"Authorization": "Bearer anything"})
    assert resp.status_code == 404 and b"METRICS_TOKEN" in resp.data
    app.extensions["callrouter"].engine.dispose()


def test_a_short_token_stops_start_up(environ):
    from callrouter.settings import SettingsError

    with pytest.raises(SettingsError, match="METRICS_TOKEN"):
        create_app(environ={**environ, "METRICS_TOKEN": "short"})


def test_webhooks_are_timed_per_route_and_forgeries_counted(phone, app):
    client = app.test_client()
    before = scrape(client)
    count = "callrouter_webhook_duration_seconds_count"
    phone.post("/voice/incoming", CallSid="CAmetrics1", From=WORKER)
    phone.post("/voice/incoming", CallSid="CAmetrics2", From=WORKER)
    forged = client.post("/voice/incoming", data={"CallSid": "CAx", "From": WORKER})
    assert forged.status_code == 403
    phone.raw_post("/voice/no-such-route", CallSid="CAmetrics3")
    phone.post("/voice/fallback", CallSid="CAmetrics4", ErrorCode="11200")
    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta(count, route="/voice/incoming") == 3  # the forged one was answered too
    assert delta(count, route="unmatched") == 1
    assert delta("callrouter_webhooks_rejected_total", route="/voice/incoming") == 1
    assert delta("callrouter_fallback_hits_total") == 1
    # Every observation is in a bucket of its route; a caller's path never becomes a label.
    assert delta("callrouter_webhook_duration_seconds_bucket", route="/voice/incoming", le="+Inf")
    assert not [k for k in after if ("route", "/voice/no-such-route") in k[1]]


def test_a_failed_handler_is_counted(phone, app, monkeypatch):
    from callrouter.voice import intake

    def broken(*_args, **_kwargs):
        raise RuntimeError("simulated")

    monkeypatch.setattr(intake, "menu_prompt", broken)
    client = app.test_client()
    before = value(scrape(client), "callrouter_webhook_errors_total", route="/voice/incoming")
    root = phone.post("/voice/incoming", CallSid="CAmetricsErr", From=WORKER)
    assert root.find("Gather") is not None  # the caller heard the Dutch error prompt
    after = value(scrape(client), "callrouter_webhook_errors_total", route="/voice/incoming")
    assert after - before == 1


def test_the_call_log_in_figures(phone, app):
    """After a connected transfer and a line nobody answers, each series equals the rows."""
    _connected(phone, app, "CAmetrics5")
    start_transfer(phone, "31", "9", sid="CAmetrics6")
    phone.drain()
    for leg in phone.twilio.created[1:]:
        phone.post(leg["StatusCallback"], CallSid=leg["Sid"], CallStatus="no-answer")
        phone.drain()
    samples = scrape(app.test_client())
    svc = app.extensions["callrouter"]
    with svc.sessions() as s:
        calls = s.execute(select(Call.outcome, func.count()).group_by(Call.outcome)).all()
        transfers = s.execute(
            select(Transfer.state, Transfer.outcome, func.count()).group_by(
                Transfer.state, Transfer.outcome
            )
        ).all()
        legs = s.execute(select(Leg.status, func.count()).group_by(Leg.status)).all()
        callbacks = dict(
            s.execute(
                select(CallbackRequest.state, func.count()).group_by(CallbackRequest.state)
            ).all()
        )
    assert len(transfers) >= 2 and sum(n for *_, n in legs) >= 2
    for outcome, n in calls:
        assert value(samples, "callrouter_calls_last_hour", outcome=outcome or "none") == n
    for state, outcome, n in transfers:
        labels = {"state": state, "outcome": outcome or "none"}
        assert value(samples, "callrouter_transfers_last_hour", **labels) == n
    for status, n in legs:
        assert value(samples, "callrouter_legs_last_hour", status=status) == n
    for state in ("pending", "dialling", "failed", "done"):
        assert value(samples, "callrouter_callbacks", state=state) == callbacks.get(state, 0)
    assert value(samples, "callrouter_queue_jobs", queue="calls", state="failed") == 0
    assert value(samples, "callrouter_up", store="redis") == 1


def test_a_scrape_leaves_rqs_clean_up_to_the_workers(app, monkeypatch):
    """Counting a registry with RQ's clean-up would retry abandoned jobs from the web
    process (a second retry beside a worker's: a leg dialled twice)."""
    from rq import registry

    def cleanup(*_args, **_kwargs):
        raise AssertionError("a scrape ran RQ's clean-up")

    for cls in (
        registry.StartedJobRegistry,
        registry.ScheduledJobRegistry,
        registry.FailedJobRegistry,
    ):
        monkeypatch.setattr(cls, "cleanup", cleanup)
    assert value(scrape(app.test_client()), "callrouter_up", store="redis") == 1


def test_job_counts_are_shared_through_redis(app):
    svc = app.extensions["callrouter"]
    svc.redis.delete(metrics_state.COUNTERS)
    with app.app_context():
        metrics_state.count(svc.redis, "reconcile_repairs", {"calls": 2, "legs": 0})
        metrics_state.count(svc.redis, "reconcile_repairs", {"calls": 1, "transfers": 4})
        metrics_state.count(svc.redis, "retention_purged", {"cases": 3})
    samples = scrape(app.test_client())
    assert value(samples, "callrouter_reconcile_repairs_total", kind="calls") == 3
    assert value(samples, "callrouter_reconcile_repairs_total", kind="transfers") == 4
    assert ("callrouter_reconcile_repairs_total", (("kind", "legs"),)) not in samples
    assert value(samples, "callrouter_retention_purged_total", kind="cases") == 3
    with pytest.raises(ValueError):
        metrics_state.count(svc.redis, "made_up", {"x": 1})


def test_a_store_down_is_a_zero_not_an_error(environ):
    """Redis unreachable: the scrape still answers, with callrouter_up{store="redis"} 0."""
    app = create_app(environ={**environ, "REDIS_URL": "redis://127.0.0.1:1/0"})
    samples = scrape(app.test_client())
    assert value(samples, "callrouter_up", store="redis") == 0
    assert value(samples, "callrouter_up", store="database") == 1
    assert ("callrouter_callbacks", (("state", "pending"),)) in samples
    with app.app_context():  # a job's count is lost, the job goes on
        metrics_state.count(app.extensions["callrouter"].redis, "retention_purged", {"calls": 1})
    app.extensions["callrouter"].engine.dispose()


def test_the_multiprocess_folder(tmp_path, monkeypatch):
    for name in (multiproc.ENV, "CALLROUTER_METRICS_MASTER"):  # restored after the test
        monkeypatch.setenv(name, "-")
        monkeypatch.delenv(name)
    # As in gunicorn's master: prometheus_client not imported yet (restored after the test).
    monkeypatch.delitem(sys.modules, "prometheus_client.values")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / "metrics" / f"web-{dead.pid}"
    stale.mkdir(parents=True)
    (stale / "counter_1.db").write_bytes(b"x")
    folder = multiproc.prepare(tmp_path, pid=os.getpid())
    assert folder == tmp_path / "metrics" / f"web-{os.getpid()}"
    assert os.environ[multiproc.ENV] == str(folder) and not stale.exists()
    (folder / "counter_2.db").write_bytes(b"x")
    # gunicorn reading its settings again (HUP) keeps the running workers' files ...
    assert multiproc.prepare(tmp_path, pid=os.getpid()) == folder
    assert (folder / "counter_2.db").exists()
    # ... a new master that inherited it (a binary upgrade) takes a folder of its own ...
    upgraded = multiproc.prepare(tmp_path, pid=os.getpid() + 1)
    assert upgraded == tmp_path / "metrics" / f"web-{os.getpid() + 1}"
    assert (folder / "counter_2.db").exists()
    # ... and a folder the operator set is used, emptied of an earlier run's files.
    monkeypatch.delenv("CALLROUTER_METRICS_MASTER")
    monkeypatch.setenv(multiproc.ENV, str(folder))
    assert multiproc.prepare(tmp_path, pid=os.getpid() + 2) == folder
    assert not (folder / "counter_2.db").exists()


def test_prepare_refuses_after_prometheus_was_imported(tmp_path):
    code = (
        "import prometheus_client\n"
        "from pathlib import Path\n"
        "from callrouter import multiproc\n"
        f"multiproc.prepare(Path({str(tmp_path)!r}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != multiproc.ENV}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode != 0 and "before its multiprocess folder" in done.stderr


def test_gunicorn_settings_do_not_import_prometheus(tmp_path):
    """gunicorn.conf.py runs in the master before the workers import the application."""
    code = (
        "import runpy, sys\n"
        "runpy.run_path('gunicorn.conf.py')\n"
        "assert 'prometheus_client' not in sys.modules\n"
        "import os; print(os.environ['PROMETHEUS_MULTIPROC_DIR'])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != multiproc.ENV}
    env["CALLROUTER_INSTANCE"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(tmp_path / "metrics" / "web-"))
