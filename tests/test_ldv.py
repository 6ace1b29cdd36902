"""The Logboek Dataverwerkingen: the register in the directory, and the records that whole
calls leave behind (fields as the standard names them, one trace per call, nothing in clear)."""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest
from call_orders import Harness, Party
from sqlalchemy import select

from callrouter import directory
from callrouter.ldv import records as ldv
from callrouter.ldv.register import KINDS
from callrouter.models import Call, Case, Consent, LdvRecord, Transfer

from conftest import (
    AMSTERDAM_ID,
    CALLER_ID,
    DIRECTORY,
    INTERNAL,
    WORKER_MOBILE,
)
from dashboard_helpers import csrf_of, login, make_token, make_user

TOESLAGEN = "+31881001001"
AOW_1 = "+31883001001"
CITIZEN = "+31612345678"
REGISTER_URL = "https://register.example.nl/verwerkingsactiviteiten"

REGISTER = f"""
processing_activities:
  - id: doorverbinden
    name: Warm doorverbinden
    purpose: De vraag van een inwoner bij de juiste professional krijgen
    legal_basis: AVG art. 6 lid 1 sub e
    retention_days: 365
    uri: {REGISTER_URL}/doorverbinden
    processings: [call-received, caller-identified, case-opened, context-shared, citizen-dialled]
  - id: toestemming
    name: Toestemming per organisatie
    purpose: Alleen delen wat de inwoner toestaat
    legal_basis: AVG art. 6 lid 1 sub a
    retention_days: 365
    uri: {REGISTER_URL}/toestemming
    processings: [consent-recorded, consent-withdrawn]
  - id: terugbellen
    name: Terugbellen
    purpose: Een gesloten lijn later verbinden
    legal_basis: AVG art. 6 lid 1 sub e
    retention_days: 180
    uri: {REGISTER_URL}/terugbellen
    processings: [callback-stored, callback-run]
  - id: toezicht
    name: Toezicht en verantwoording
    purpose: Verantwoording en rechten van betrokkenen
    legal_basis: AVG art. 5 lid 2
    retention_days: 730
    uri: urn:example:verwerkingsactiviteit:toezicht
    processings: [retention-purge, call-viewed, case-viewed, csv-exported, subject-viewed,
                  subject-erased]
"""

CHAIN = """
life_events:
  - id: verhuizing
    name: Verhuizing naar het buitenland
    spoken_name: een verhuizing naar het buitenland
    digit: 1
    keywords: [verhuizing]
    steps:
      - line: toeslagen-algemeen
        reason: toeslagen stoppen
      - line: svb-aow
        reason: AOW in het buitenland
"""


def _directory_text(pin_hash: str, extra: str = "") -> str:
    return (
        DIRECTORY.format(
            internal=INTERNAL,
            pin_hash=pin_hash,
            mobile=WORKER_MOBILE,
            caller_id=CALLER_ID,
            amsterdam_id=AMSTERDAM_ID,
        )
        + CHAIN
        + extra
    )


@pytest.fixture(scope="session")
def lines_file(tmp_path_factory, pin_hash):
    path = tmp_path_factory.mktemp("ldv") / "lines.yaml"
    path.write_text(_directory_text(pin_hash, REGISTER), encoding="utf-8")
    return path


@pytest.fixture
def harness(app, clock, redis_client):
    h = Harness(app)
    yield h
    h.close()


# --------------------------------------------------------------------------- the register


def _problems(text: str) -> list[str]:
    with pytest.raises(directory.DirectoryError) as exc:
        directory.loads(text, "lines.yaml")
    return [str(p) for p in exc.value.problems]


def test_register_is_read_with_every_kind_assigned(pin_hash):
    """The block gives each kind of processing its activity and the activity's URI."""
    d = directory.loads(_directory_text(pin_hash, REGISTER), "lines.yaml")
    assert not d.register.builtin
    assert d.register.for_kind("context-shared").uri == f"{REGISTER_URL}/doorverbinden"
    assert d.register.for_kind("subject-erased").retention_days == 730
    assert {k for a in d.register.activities for k in a.processings} == set(KINDS)


def test_directory_without_register_gets_the_builtin_one(pin_hash):
    """A directory written before the register existed still loads: URNs of callrouter's own."""
    d = directory.loads(_directory_text(pin_hash), "lines.yaml")
    assert d.register.builtin
    assert all(d.register.for_kind(k).uri.startswith("urn:callrouter:") for k in KINDS)
    assert "processing register: built in" in directory.summary(d)


@pytest.mark.parametrize(
    "uri, why",
    [
        ("register/doorverbinden", "not an absolute URI"),
        ("https:///doorverbinden", "needs a host"),
        ("https://register.example.nl/door verbinden", "no spaces"),
    ],
)
def test_register_refuses_a_uri_that_is_not_absolute(pin_hash, uri, why):
    """A relative or malformed URI is refused, naming file, line and key."""
    text = _directory_text(pin_hash, REGISTER.replace(f"{REGISTER_URL}/doorverbinden", uri))
    problems = _problems(text)
    line = text.splitlines().index(f"    uri: {uri}") + 1
    assert any(
        p.startswith(f"lines.yaml:{line}: processing_activities[0].uri:") and why in p
        for p in problems
    ), problems


def test_register_refuses_unknown_missing_and_twice_assigned_kinds(pin_hash):
    """An unknown processing, one listed twice and one listed nowhere are each reported."""
    text = _directory_text(
        pin_hash,
        REGISTER.replace("citizen-dialled]", "citizen-dialed]").replace(
            "[consent-recorded, consent-withdrawn]", "[consent-recorded, case-opened]"
        ),
    )
    problems = " | ".join(_problems(text))
    assert (
        "processing_activities[0].processings[4]: unknown processing 'citizen-dialed'" in problems
    )
    assert "processing_activities[1].processings[1]: 'case-opened' is already listed" in problems
    assert "no activity lists the processing(s) consent-withdrawn, citizen-dialled" in problems


def test_lines_check_names_a_bad_register_uri(tmp_path, pin_hash):
    """`callrouter lines check` refuses the file and says where."""
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / "lines.yaml"
    path.write_text(
        _directory_text(pin_hash, REGISTER.replace("urn:example:", "example:/ /")), "utf-8"
    )
    out = subprocess.run(
        [str(Path(sys.executable).parent / "callrouter"), "lines", "check", str(path)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1
    assert "processing_activities[3].uri" in out.stderr and str(path) in out.stderr


# --------------------------------------------------------------------------- the records

HEX32, HEX16 = re.compile(r"^[0-9a-f]{32}$"), re.compile(r"^[0-9a-f]{16}$")
PHONE_DIGITS = re.compile(r"\d{7,}")


def _records(app, *, trace: str | None = None) -> list[LdvRecord]:
    svc = app.extensions["callrouter"]
    with svc.sessions() as s:
        q = select(LdvRecord).order_by(LdvRecord.start_time, LdvRecord.id)
        if trace is not None:
            q = q.where(LdvRecord.trace_id == trace)
        return list(s.scalars(q))


def assert_standard_fields(app, rows: list[LdvRecord]) -> None:
    """Names and types of the LDV standard, every activity in the register, nothing in clear."""
    register = app.extensions["callrouter"].directory.register
    for r in rows:
        assert HEX32.match(r.trace_id) and HEX16.match(r.span_id), r.name
        assert r.parent_span_id is None or HEX16.match(r.parent_span_id)
        assert r.name in KINDS and r.status in ("Ok", "Unset", "Error")
        assert isinstance(r.start_time, datetime) and r.start_time.tzinfo is not None
        assert r.end_time >= r.start_time
        assert register.by_uri(r.processing_activity_id) is not None, r.processing_activity_id
        assert r.name in register.by_uri(r.processing_activity_id).processings
        if r.data_subject_id is not None:
            assert isinstance(r.data_subject_id, str) and r.data_subject_id_type in (
                ldv.SUBJECT_NUMBER,
                ldv.SUBJECT_CASE,
            )
        assert all(isinstance(k, str) and k.startswith("callrouter.") for k in r.attributes)
        assert r.resource["service.name"] == "callrouter"


def assert_nothing_in_clear(rows: list[LdvRecord], numbers: list[str], names: list[str]) -> None:
    text = json.dumps(
        [
            [getattr(r, c.name) for c in LdvRecord.__table__.columns if c.name != "start_time"]
            for r in rows
        ],
        default=str,
    )
    for number in numbers:
        for form in (number, number[1:], "0" + number[3:], number[3:]):
            assert form not in text, form
    for name in names:
        assert name not in text, name
    # A keyed pseudonym is hex; a phone number would be a run of plain digits.
    assert not PHONE_DIGITS.search(re.sub(r"[0-9a-f]{16,}", "", text)), text


def _chain_call(h: Harness, clock, seed=None) -> tuple[str, list[str]]:
    from test_call_orders import START

    clock.set(START)
    me = h.worker_number()
    h.start([Party(TOESLAGEN, keys=["1"]), Party(AOW_1, keys=["1"])], seed)
    w = h.dial_in(me, ["0", "1", "1", ""])
    h.settle()
    for number in (TOESLAGEN, AOW_1):
        prof = h.live(number)
        assert prof is not None and h.together(w, prof.sid), number
        h.hang_up(prof.sid)
        h.settle()
    h.hang_up_everyone()
    return me, [w]


def test_chain_of_two_organisations_is_one_trace_of_standard_records(app, harness, clock):
    """A life event over Toeslagen and the SVB: one trace, every record of the standard's
    shape, each processing once, and no number or name in clear anywhere in them."""
    me, sids = _chain_call(harness, clock)
    assert harness.errors.seen == []
    svc = app.extensions["callrouter"]
    with svc.sessions() as s:
        call = s.scalar(select(Call).where(Call.call_sid == sids[0]))
        transfers = s.scalars(select(Transfer).where(Transfer.call_id == call.id)).all()
    assert sorted(t.target_org for t in transfers) == ["svb", "toeslagen"]
    rows = _records(app)
    assert {r.trace_id for r in rows} == {call.id}  # one trace: the call's
    assert_standard_fields(app, rows)
    names = sorted(r.name for r in rows)
    assert names == sorted(
        ["call-received", "caller-identified", "case-opened"]
        + ["consent-recorded"] * 2
        + ["context-shared"] * 2
    )
    root = next(r for r in rows if r.name == "call-received")
    assert root.parent_span_id is None
    assert all(r.parent_span_id == root.span_id for r in rows if r is not root)
    pseudonym = svc.pseudonyms.pseudonym(me)
    assert root.data_subject_id == pseudonym and root.data_subject_id_type == ldv.SUBJECT_NUMBER
    shared = {
        r.attributes["callrouter.organisation"]: r for r in rows if r.name == "context-shared"
    }
    assert set(shared) == {"svb", "toeslagen"}
    assert all(r.data_subject_id == call.case_id for r in shared.values())
    assert_nothing_in_clear(
        rows,
        [me, TOESLAGEN, AOW_1, CITIZEN, INTERNAL],
        ["Gemeente Utrecht", "Belastingdienst", "verhuizing naar het buitenland"],
    )


def test_records_do_not_depend_on_the_order_of_webhooks(app, harness, clock):
    """Callbacks out of order and twice, jobs at random moments: the same records, once."""
    _chain_call(harness, clock)
    reference = sorted(r.name for r in _records(app))
    for seed in (3, 17, 4242):
        me, sids = _chain_call(harness, clock, seed)
        svc = app.extensions["callrouter"]
        with svc.sessions() as s:
            call_id = s.scalar(select(Call.id).where(Call.call_sid == sids[0]))
        assert sorted(r.name for r in _records(app, trace=call_id)) == reference, seed


def test_handover_records_the_citizen_dialled_by_pseudonym(app, harness, clock):
    """The citizen's number keyed by the worker: a record whose subject is its pseudonym."""
    from test_call_orders import START, handover

    clock.set(START)
    harness.start([Party(TOESLAGEN, keys=["1"]), Party(CITIZEN)], None)
    handover(harness, harness.worker_number())
    rows = [r for r in _records(app) if r.name == "citizen-dialled"]
    svc = app.extensions["callrouter"]
    assert len(rows) == 1
    assert rows[0].data_subject_id == svc.pseudonyms.pseudonym(CITIZEN)
    assert rows[0].data_subject_id_type == ldv.SUBJECT_NUMBER
    assert_standard_fields(app, rows)
    assert_nothing_in_clear(rows, [CITIZEN], [])


def test_callback_records_stored_and_run_in_the_asking_calls_trace(app, harness, clock):
    """A callback request and its attempt are recorded in the trace of the call that asked."""
    from test_call_orders import START, callback_leg

    clock.set(START)
    me = harness.worker_number()
    harness.start([Party(TOESLAGEN, answer="no-answer")], None)
    callback_leg(harness, me, clock)
    rows = _records(app)
    stored = [r for r in rows if r.name == "callback-stored"]
    run = [r for r in rows if r.name == "callback-run"]
    assert len(stored) == 1 and len(run) == 1
    assert run[0].trace_id == stored[0].trace_id and run[0].parent_span_id == stored[0].span_id
    pseudonym = app.extensions["callrouter"].pseudonyms.pseudonym(me)
    assert stored[0].data_subject_id == run[0].data_subject_id == pseudonym
    # The professional who answers the callback hears whose request it is: context shared.
    (told,) = [r for r in rows if r.attributes.get("callrouter.callback_id")]
    assert told.name == "context-shared" and told.parent_span_id == run[0].span_id
    assert_standard_fields(app, rows)


def test_pin_identification_is_recorded(app, phone, clock):
    """A caller identified by code and PIN gets its caller-identified record then."""
    from conftest import UNKNOWN

    phone.post("/voice/incoming", CallSid="CApin1", From=UNKNOWN)
    phone.post("/voice/intake/code", CallSid="CApin1", From=UNKNOWN, Digits="0344#")
    root = phone.post(
        "/voice/intake/pin?try=0&code=0344", CallSid="CApin1", From=UNKNOWN, Digits="2222#"
    )
    assert "U belt namens" in " ".join(el.text or "" for el in root.iter("Say"))
    rows = _records(app)
    assert [r.name for r in rows] == ["call-received", "caller-identified"]
    assert rows[1].attributes == {
        "callrouter.caller_org": "utrecht",
        "callrouter.identified_by": "pin",
    }
    assert rows[0].data_subject_id == rows[1].data_subject_id


# --------------------------------------------------------------------------- the dashboard


def test_supervisor_looks_and_exports_are_recorded(app, harness, clock):
    """Opening a call, a case, a CSV export and a withdrawal: each its record, the subject's
    pseudonym or case (never the supervisor, who is in the audit log), linked to the call."""
    me, sids = _chain_call(harness, clock)
    svc = app.extensions["callrouter"]
    with svc.sessions() as s:
        call = s.scalar(select(Call).where(Call.call_sid == sids[0]))
        consent = s.scalars(select(Consent).where(Consent.choice != "none")).first()
    make_user(app, "admin@example.nl", role="admin")
    client = app.test_client()
    login(client, "admin@example.nl")
    assert client.get(f"/dashboard/calls/{call.id}").status_code == 200
    page = client.get(f"/dashboard/cases/{call.case_id}")
    assert page.status_code == 200
    assert client.get("/dashboard/calls.csv").status_code == 200
    if consent is not None:
        client.post(
            f"/dashboard/cases/{call.case_id}/consents/{consent.id}/withdraw",
            data={"csrf_token": csrf_of(page.get_data(as_text=True))},
        )
    rows = [r for r in _records(app) if r.trace_id != call.id]
    by_name = {r.name: r for r in rows}
    assert {"call-viewed", "case-viewed", "csv-exported"} <= set(by_name)
    assert by_name["call-viewed"].data_subject_id == svc.pseudonyms.pseudonym(me)
    assert by_name["call-viewed"].links == [[call.id, ldv.root_span(call.id)]]
    assert by_name["case-viewed"].data_subject_id == call.case_id
    assert by_name["csv-exported"].data_subject_id is None
    if consent is not None:
        assert by_name["consent-withdrawn"].case_id == call.case_id
    assert_standard_fields(app, rows)
    assert_nothing_in_clear(rows, [me], ["admin@example.nl"])


def test_traceparent_of_each_transfer_on_the_api_and_the_case_page(app, harness, clock):
    """The receiving organisation sees the transfer's W3C traceparent: the record of the
    context shared with it, in the call's trace."""
    _, sids = _chain_call(harness, clock)
    svc = app.extensions["callrouter"]
    with svc.sessions() as s:
        call = s.scalar(select(Call).where(Call.call_sid == sids[0]))
        svb = s.scalar(select(Transfer).where(Transfer.target_org == "svb"))
        case = s.get(Case, call.case_id)
    shared = next(
        r
        for r in _records(app)
        if r.name == "context-shared" and r.attributes["callrouter.organisation"] == "svb"
    )
    expected = f"00-{call.id}-{shared.span_id}-01"
    assert ldv.parse_traceparent(expected) == (call.id, shared.span_id)
    token = make_token(app, "svb-systems", org="svb")
    auth = {"Authorization": f"Bearer {token}"}
    body = app.test_client().get("/api/v1/transfers", headers=auth).get_json()
    assert [t["traceparent"] for t in body["data"]] == [expected]
    cases = app.test_client().get("/api/v1/cases", headers=auth).get_json()["data"]
    assert [t["traceparent"] for t in cases[0]["transfers"] if t["id"] == svb.id] == [expected]
    assert cases[0]["traceparent"] == ldv.case_traceparent(case.call_id, case.id)
    make_user(app, "sup@svb.nl", org="svb")
    client = app.test_client()
    login(client, "sup@svb.nl")
    assert expected in client.get(f"/dashboard/cases/{case.id}").get_data(as_text=True)


def test_flask_ldv_trace_prints_the_chain_of_a_case(app, harness, clock):
    """`flask ldv trace REFERENCE`: the case's records as a tree under the call's root."""
    _, sids = _chain_call(harness, clock)
    svc = app.extensions["callrouter"]
    with svc.sessions() as s:
        call = s.scalar(select(Call).where(Call.call_sid == sids[0]))
        case = s.get(Case, call.case_id)
    out = app.test_cli_runner().invoke(args=["ldv", "trace", case.reference])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].startswith(f"case {case.reference} (open)")
    assert f"trace {call.id}" in lines
    root = next(i for i, ln in enumerate(lines) if " call-received " in ln)
    assert lines[root].startswith("  2") and all(ln.startswith("    ") for ln in lines[root + 1 :])
    assert sum(" context-shared " in ln for ln in lines) == 2
    missing = app.test_cli_runner().invoke(args=["ldv", "trace", "0000000"])
    assert missing.exit_code == 1 and "no case" in missing.output


def test_a_retried_incoming_webhook_writes_its_records_once(app, phone):
    """Twilio retries /voice/incoming: the call is recorded once, and so are its records."""
    from conftest import WORKER

    for _ in range(3):
        phone.post("/voice/incoming", CallSid="CAretry1", From=WORKER)
    rows = _records(app)
    assert [r.name for r in rows] == ["call-received", "caller-identified"]
    with app.extensions["callrouter"].sessions() as s:
        assert [c.id for c in s.scalars(select(Call))] == [rows[0].trace_id]


def test_a_whole_call_reaches_an_otlp_receiver_once_even_across_its_restart(app, harness, clock):
    """The chain call's records arrive at a local OTLP receiver (protobuf decoded) as the
    same spans; with the receiver stopped during a second call, none is lost or sent twice."""
    from test_ldv_export import Receiver

    from callrouter.ldv import export

    svc = app.extensions["callrouter"]
    receiver = Receiver()
    harness.mock.add_passthru(f"http://127.0.0.1:{receiver.port}")  # a real HTTP receiver
    receiver.start()
    try:
        _chain_call(harness, clock)
        assert export.export_pending(svc.engine, receiver.endpoint) == len(_records(app))
        receiver.stop()
        _chain_call(harness, clock)
        assert export.export_pending(svc.engine, receiver.endpoint, timeout=1.0) == 0
        receiver.start()
        assert export.export_pending(svc.engine, receiver.endpoint) > 0
        assert export.export_pending(svc.engine, receiver.endpoint) == 0
    finally:
        receiver.stop()
    rows = _records(app)
    got = [span.span_id.hex() for span in receiver.spans]
    assert sorted(got) == sorted(r.span_id for r in rows)  # each once, none missing
    by_span = {span.span_id.hex(): span for span in receiver.spans}
    for r in rows:
        span = by_span[r.span_id]
        assert span.trace_id.hex() == r.trace_id and span.name == r.name
        attrs = {kv.key: kv.value.string_value for kv in span.attributes}
        assert attrs["dpl.core.processing_activity_id"] == r.processing_activity_id
        assert attrs.get("dpl.core.data_subject_id") == r.data_subject_id
    assert len({r.trace_id for r in rows}) == 2  # two calls, a trace each
