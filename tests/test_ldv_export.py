"""The OTLP export of the Logboek Dataverwerkingen: records reach a real OTLP/HTTP receiver as
spans, once each, and the outbox keeps whatever the collector did not acknowledge."""

from __future__ import annotations

import dataclasses
import gzip
import socket
import threading
import time
import uuid
import zlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from sqlalchemy import select

from callrouter.ldv import export, kinds, records, store
from callrouter.models import LdvRecord

WORKER_HMAC = "5e" * 16
AT = datetime(2026, 11, 25, 19, 0, 0, 123456, tzinfo=UTC)


class Receiver:
    """An OTLP/HTTP trace receiver on a fixed local port; it can be stopped and started."""

    def __init__(self):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.requests: list[list[tuple[dict, str, Span]]] = []  # (resource, scope, span)
        self.delay = 0.0  # seconds before each answer
        self.redirect = False  # answer 302 (to the same address) instead of taking the spans
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/traces"

    @property
    def spans(self) -> list[Span]:
        with self._lock:
            return [span for request in self.requests for _, _, span in request]

    def received(self, body: bytes, encoding: str) -> bytes:
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        request = ExportTraceServiceRequest.FromString(body)
        got = [
            (attributes(rs.resource.attributes), ss.scope.name, span)
            for rs in request.resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
        ]
        time.sleep(self.delay)
        with self._lock:
            self.requests.append(got)
        return ExportTraceServiceResponse().SerializeToString()

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.redirect:
                    self.send_response(302)
                    self.send_header("Location", receiver.endpoint)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                answer = receiver.received(body, self.headers.get("Content-Encoding", ""))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = None


def attributes(kvs) -> dict:
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in kvs}


@pytest.fixture
def receiver():
    r = Receiver()
    r.start()
    yield r
    r.stop()


@pytest.fixture
def environ(environ, receiver):
    return {**environ, "LDV_OTLP_ENDPOINT": receiver.endpoint}


@pytest.fixture
def svc(app):
    return app.extensions["callrouter"]


def ns(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000


def write_call(svc, at: datetime = AT) -> list[dict]:
    """The records of one call (a root, children, a linked trace of its own, an error, a
    processing without subject), written as the webhooks write them; their rows."""
    register = svc.directory.register
    call, case = uuid.uuid4().hex, uuid.uuid4().hex
    s = timedelta(seconds=1)
    rows = [
        records.record(register, "call-received", trace_id=call, at=at, subject=WORKER_HMAC),
        kinds.case_opened(
            register,
            call_id=call,
            case_id=case,
            worker_hmac=WORKER_HMAC,
            caller_org="utrecht",
            life_event=None,
            at=at + s,
        ),
        kinds.consent_withdrawn(
            register, case_id=case, opening_call_id=call, consent_id="c1", org="svb", at=at + 2 * s
        ),
        kinds.callback_stored(
            register,
            call_id=call,
            request_id="r1",
            case_id=case,
            worker_hmac=WORKER_HMAC,
            org="svb",
            line="svb-aow",
            reason="closed",
            at=at + 3 * s,
        ),
        kinds.callback_run(
            register,
            call_id=call,
            request_id="r1",
            attempt=2,
            case_id=case,
            worker_hmac=WORKER_HMAC,
            org="svb",
            line="svb-aow",
            at=at + 4 * s,
        ),
        records.record(
            register,
            "citizen-dialled",
            trace_id=call,
            key="leg-1",
            at=at + 5 * s,
            end=at + 9 * s + timedelta(microseconds=7),
            subject="7a" * 16,
            status=records.ERROR,
        ),
        kinds.dashboard(register, "csv-exported", at=at + 6 * s),
    ]
    with svc.engine.begin() as conn:
        assert store.write(conn, rows) == len(rows)
    return rows


def unexported(svc) -> list[str]:
    with svc.sessions() as s:
        return list(s.scalars(select(LdvRecord.span_id).where(LdvRecord.exported_at.is_(None))))


def span_ids(spans) -> Counter:
    return Counter(span.span_id.hex() for span in spans)


def test_records_arrive_as_spans_with_their_fields(svc, receiver):
    """Each record arrives as one span: ids, parent, name, status, times, dpl.core attributes,
    links, resource and scope as stored; all are then marked exported."""
    rows = write_call(svc)
    assert export.run(svc, budget=60) == len(rows)
    got = {span.span_id.hex(): (res, scope, span) for res, scope, span in receiver.requests[0]}
    assert len(receiver.requests) == 1 and set(got) == {r["span_id"] for r in rows}
    codes = {"Ok": Status.STATUS_CODE_OK, "Error": Status.STATUS_CODE_ERROR}
    for row in rows:
        resource, scope, span = got[row["span_id"]]
        assert span.trace_id == bytes.fromhex(row["trace_id"])
        assert span.parent_span_id == bytes.fromhex(row["parent_span_id"] or "")
        assert (span.name, span.kind) == (row["name"], Span.SPAN_KIND_INTERNAL)
        assert span.status.code == codes[row["status"]]
        assert span.start_time_unix_nano == ns(row["start_time"])
        assert span.end_time_unix_nano == ns(row["end_time"])
        expected = dict(row["attributes"])
        expected["dpl.core.processing_activity_id"] = row["processing_activity_id"]
        if row["data_subject_id"]:
            expected["dpl.core.data_subject_id"] = row["data_subject_id"]
            expected["dpl.core.data_subject_id_type"] = row["data_subject_id_type"]
        assert attributes(span.attributes) == expected
        links = [[link.trace_id.hex(), link.span_id.hex()] for link in span.links]
        assert links == (row["links"] or [])
        assert resource == records.SERVICE and scope == "callrouter.ldv"
    assert got[rows[0]["span_id"]][2].parent_span_id == b""  # the call's root
    assert "dpl.core.data_subject_id" not in attributes(got[rows[-1]["span_id"]][2].attributes)
    assert got[rows[2]["span_id"]][2].links  # the withdrawal's link to the case's trace
    assert unexported(svc) == []


def test_a_collector_that_is_down_loses_nothing(svc, receiver):
    """Receiver stopped: nothing is acknowledged or marked; started again, every record
    arrives exactly once (over several batches), and a further run sends nothing."""
    first = write_call(svc)
    assert export.run(svc, budget=60, batch=3) == len(first)
    receiver.stop()
    later = write_call(svc) + write_call(svc)
    began = time.monotonic()
    assert export.run(svc, budget=60, batch=3, timeout=1.0) == 0
    assert time.monotonic() - began < 5
    assert sorted(unexported(svc)) == sorted(r["span_id"] for r in later)
    receiver.start()  # the same port
    assert export.run(svc, budget=60, batch=3) == len(later)
    counts = span_ids(receiver.spans)
    assert set(counts) == {r["span_id"] for r in first + later}
    assert set(counts.values()) == {1}
    assert unexported(svc) == []
    n = len(receiver.requests)
    assert export.run(svc, budget=60, batch=3) == 0
    assert len(receiver.requests) == n


def test_a_redirect_is_no_acknowledgement(svc, receiver):
    """A collector that answers 302 has not taken the spans: nothing is marked exported."""
    rows = write_call(svc)
    receiver.redirect = True
    assert export.run(svc, budget=60) == 0
    assert receiver.spans == [] and len(unexported(svc)) == len(rows)
    receiver.redirect = False
    assert export.run(svc, budget=60) == len(rows) and unexported(svc) == []


def test_records_added_between_runs_go_in_the_next_run_only(svc, receiver):
    """A second run sends only the records written since the first."""
    first = write_call(svc)
    assert export.run(svc, budget=60) == len(first)
    assert span_ids(receiver.spans) == Counter(r["span_id"] for r in first)
    n = len(receiver.requests)
    second = write_call(svc, AT + timedelta(minutes=5))
    assert export.run(svc, budget=60) == len(second)
    assert span_ids(s for req in receiver.requests[n:] for _, _, s in req) == Counter(
        r["span_id"] for r in second
    )


def test_two_runs_at_once_send_each_record_once(svc, receiver):
    """Two runs started together (threads): the lock lets one send, the other skips."""
    rows = write_call(svc) + write_call(svc)
    receiver.delay = 0.3  # the first run is still sending when the second one starts
    barrier = threading.Barrier(2)
    results: list[int | None] = []

    def one_run():
        barrier.wait()
        results.append(export.run(svc, budget=60, batch=5))

    threads = [threading.Thread(target=one_run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert None in results and sum(r or 0 for r in results) == len(rows)
    assert span_ids(receiver.spans) == Counter(r["span_id"] for r in rows)
    assert unexported(svc) == []


def test_the_job_runs_and_schedules_one_next_run(app, svc, receiver):
    """The RQ job exports and leaves one scheduled next run, whoever schedules it."""
    rows = write_call(svc)
    while time.time() % export.EVERY > export.EVERY - 2:  # both in the same 10-second slot
        time.sleep(0.1)
    with app.app_context():
        assert export.run_and_reschedule() == len(rows)
        export.schedule()
    ids = svc.queue("default").scheduled_job_registry.get_job_ids()
    assert len(ids) == 1 and ids[0].startswith("ldv-export-")
    assert unexported(svc) == []


def test_no_endpoint_no_export(app, svc):
    """Without LDV_OTLP_ENDPOINT nothing is sent and nothing is scheduled."""
    svc.settings = dataclasses.replace(svc.settings, ldv_otlp_endpoint=None)
    write_call(svc)
    with app.app_context():
        assert export.run_and_reschedule() is None
    assert svc.queue("default").scheduled_job_registry.get_job_ids() == []
    assert len(unexported(svc)) == 7


def test_after_a_failed_run_the_next_waits(app, svc, receiver):
    """A collector that is down: the next run is scheduled a minute later, not in 10 s, so
    that the worker's calls queue does not wait behind retries; a good run ends the wait."""
    write_call(svc)
    receiver.stop()
    with app.app_context():
        assert export.run_and_reschedule(timeout=1.0) == 0
    registry = svc.queue("default").scheduled_job_registry
    (job_id,) = registry.get_job_ids()
    due = registry.get_scheduled_time(job_id)
    assert due.timestamp() - time.time() >= export.BACKOFF - export.EVERY
    receiver.start()
    svc.redis.delete(export.BACKOFF_KEY)  # the wait has passed
    with app.app_context():
        assert export.run_and_reschedule() == 7
    assert not svc.redis.exists(export.BACKOFF_KEY)


def test_a_run_stops_at_its_budget_and_the_next_goes_on(svc, receiver):
    """A run sends batches for `budget` seconds at most (the worker serves transfer legs
    between jobs); the next run sends the rest, each record once."""
    rows = write_call(svc) + write_call(svc)
    receiver.delay = 0.4
    first = export.run(svc, batch=2, budget=0.5)
    assert first is not None and 0 < first < len(rows)
    rest = 0
    while n := export.run(svc, batch=2, budget=60):
        rest += n
    assert first + rest == len(rows)
    assert span_ids(receiver.spans) == Counter(r["span_id"] for r in rows)
