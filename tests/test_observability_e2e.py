"""What the operator on call sees of a whole call through real processes (`gunicorn app:app`
with two workers, `python worker.py`, the sandbox as the telephone network): the JSON log, in
which no number of the directory or the call appears, and /metrics, summed over both web
workers."""

from __future__ import annotations

import json
import re
from collections import deque
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import AMSTERDAM_ID, CALLER_ID, DIRECTORY, INTERNAL, WORKER_MOBILE
from sandbox_network import service_on_network

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "observability-token-0123456789abcdef"
METRICS_TOKEN = "metrics-e2e-token-0123456789abcdef"
WORKER = "+31302864242"
AOW = "+31883001001"
FORGED = "CA" + "f0" * 16


@pytest.fixture(scope="module")
def receiver():
    """The organisation's LDV collector: a local OTLP/HTTP receiver."""
    from test_ldv_export import Receiver

    r = Receiver()
    r.start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def call(tmp_path_factory, pin_hash, receiver):
    """One warm transfer to the SVB's AOW line, accepted, talked and hung up."""
    tmp = tmp_path_factory.mktemp("observability")
    lines = tmp / "lines.yaml"
    text = DIRECTORY.format(
        internal=INTERNAL,
        pin_hash=pin_hash,
        mobile=WORKER_MOBILE,
        caller_id=CALLER_ID,
        amsterdam_id=AMSTERDAM_ID,
    )
    lines.write_text(text, encoding="utf-8")
    env = {
        "LOG_FORMAT": "json",
        "METRICS_TOKEN": METRICS_TOKEN,
        "LDV_OTLP_ENDPOINT": receiver.endpoint,
    }
    with service_on_network(tmp, lines, TOKEN, extra_env=env) as (net, _env):
        sb = net.new_call_network(None)
        for number in ("+31883001001", "+31883001002"):
            prof = sb.phone(number)
            prof.answer, prof.inputs = "answer", deque(["1"])
        worker = net.call_in(WORKER, ["31", "1"], INTERNAL)
        net.settle()
        prof = net.live(AOW)
        assert prof is not None and net.together(worker, prof.sid), sb.transcript[-6:]
        net.hang_up(prof.sid)
        net.settle()
        net.hang_up_everyone()
        net.settle()
        # A forged webhook (no signature) with the worker's number in it: refused and logged.
        forged = Request(
            net.public + "/voice/incoming",
            data=urlencode({"CallSid": FORGED, "From": WORKER}).encode(),
            headers={"I-Twilio-Idempotency-Token": "idem-forged-1"},
        )
        with pytest.raises(HTTPError) as err:
            urlopen(forged, timeout=10)
        assert err.value.code == 403
        yield net, text, tmp / "procs.log"


def _scrape(public: str, token: str | None) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urlopen(Request(public + "/metrics", headers=headers), timeout=10) as resp:
        return resp.read().decode()


def test_metrics_of_the_call(call):
    net, _, _ = call
    for token in (None, "not-the-token"):
        with pytest.raises(HTTPError) as err:
            _scrape(net.public, token)
        assert err.value.code in (401, 403)
    samples = {}
    for family in text_string_to_metric_families(_scrape(net.public, METRICS_TOKEN)):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value

    def total(name, **labels):
        return sum(
            v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls)
        )

    count = "callrouter_webhook_duration_seconds_count"
    assert total(count, route="/voice/incoming") == 2  # the call, and the forged one
    assert total(count, route="/voice/whisper") >= 1
    routes = {dict(ls)["route"]: v for (n, ls), v in samples.items() if n == count}
    assert routes["/voice/status/call"] >= 1 and routes["/voice/status/leg"] >= 2, routes
    assert routes["/voice/status/conference"] >= 2, routes
    assert total("callrouter_webhooks_rejected_total", route="/voice/incoming") == 1
    assert total("callrouter_calls_last_hour") == 1
    assert total("callrouter_transfers_last_hour", state="ended") == 1
    assert total("callrouter_legs_last_hour", status="completed") >= 1
    assert total("callrouter_queue_workers", queue="calls") >= 1  # worker.py is listening
    assert total("callrouter_up") == 2
    assert ("callrouter_callbacks", (("state", "pending"),)) in samples


def test_the_json_log_of_the_call(call):
    _, directory, log_path = call
    numbers = set(re.findall(r"\+[0-9]{8,15}", directory)) | {WORKER}
    forms = set()
    for number in numbers:
        forms |= {number, number[1:], "0" + number[3:], number[3:]}
    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    records = []
    for line in lines:
        if not line.startswith("{"):
            continue  # a process's own output before logging starts (none is expected)
        records.append(json.loads(line))
    assert len(records) >= 5 and len(records) == len(lines), [
        line for line in lines if not line.startswith("{")
    ][:5]
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record), record
        assert record["time"].endswith("Z")
    loggers = {r["logger"] for r in records}
    assert "gunicorn.error" in loggers and "rq.worker" in loggers
    refused = [r for r in records if r.get("call_sid") == FORGED]
    assert len(refused) == 1 and refused[0]["request_id"] == "idem-forged-1", refused
    assert refused[0]["level"] == "WARNING" and "X-Twilio-Signature" in refused[0]["message"]
    text = log_path.read_text()
    for form in forms:
        assert form not in text, f"{form} in the JSON log"


def test_the_grafana_dashboard_reads_only_series_that_exist(call):
    net, _, _ = call
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "callrouter.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"callrouter_[a-z_]+", expr)}
    families, samples = set(), set()
    for family in text_string_to_metric_families(_scrape(net.public, METRICS_TOKEN)):
        families.add(family.name)
        samples |= {s.name for s in family.samples}
    missing = {
        name
        for name in used
        if name not in samples and re.sub(r"_(total|bucket|count|sum)$", "", name) not in families
    }
    assert len(used) >= 12 and missing == set()


def test_the_worker_exports_the_calls_ldv_records(call, receiver):
    """`python worker.py` sends the call's LDV records to the collector by itself (a run every
    10 s): one trace, the processings of a warm transfer, no number in any attribute."""
    import time

    want = {"call-received", "caller-identified", "case-opened", "consent-recorded"}
    want.add("context-shared")
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline and not want <= {s.name for s in receiver.spans}:
        time.sleep(0.5)
    spans = receiver.spans
    assert want <= {s.name for s in spans}, sorted(s.name for s in spans)
    assert len({s.trace_id for s in spans if s.name in want}) == 1
    assert len({s.span_id for s in spans}) == len(spans)  # none twice
    values = " ".join(str(kv.value) for s in spans for kv in s.attributes)
    for number in (WORKER, AOW, INTERNAL):
        assert number[3:] not in values
