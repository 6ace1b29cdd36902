"""The menu's choice of an open line, written on the hot connection (`store.choices`): the same
rows and the same TwiML as the ORM path it replaced, on SQLite and PostgreSQL; and TwiML
prepared once with slots reads as the SDK's own."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import select

from callrouter import twiml
from callrouter.flows import reference as refs
from callrouter.models import Call, Case, CaseStep
from callrouter.voice import menu

from conftest import WORKER, action_of, says

CALL_FIELDS = (
    "caller_org",
    "identified_by",
    "target_org",
    "line_id",
    "selected_by",
    "selected_term",
)
CASE_FIELDS = ("caller_org", "life_event", "worker_hmac", "worker_masked", "state")
STEP_FIELDS = ("position", "line_id", "target_org", "reason", "state")


def _choose(phone, sid: str, *answers: dict) -> list[ET.Element]:
    root = phone.post("/voice/incoming", CallSid=sid, From=WORKER)
    out = []
    for answer in answers:
        out.append(phone.post("/voice/menu?try=0", CallSid=sid, From=WORKER, **answer))
    return [root, *out]


def _written(app, sid: str) -> dict:
    svc = app.extensions["callrouter"]
    with svc.sessions() as s:
        call = s.scalar(select(Call).where(Call.call_sid == sid))
        case = s.get(Case, call.case_id)
        steps = s.scalars(
            select(CaseStep).where(CaseStep.case_id == case.id).order_by(CaseStep.position)
        ).all()
        return {
            "call": {f: getattr(call, f) for f in CALL_FIELDS},
            "menu_done": call.menu_done_at is not None,
            "case": {f: getattr(case, f) for f in CASE_FIELDS},
            "case_of_call": case.call_id == call.id,
            "worker_number": svc.pseudonyms.decrypt(case.worker_number_enc),
            "worker_is_caller": case.worker_hmac == call.from_hmac,
            "reference_ok": refs.is_valid(case.reference),
            "steps": [{f: getattr(st, f) for f in STEP_FIELDS} for st in steps],
        }, case.reference


def _heard(root: ET.Element, reference: str) -> tuple[str, str]:
    return says(root).replace(refs.spoken(reference), "<reference>"), action_of(root)


ANSWERS = [
    ({"Digits": "31"},),  # organisation and topic keyed
    ({"SpeechResult": "de aow"},),  # said
    ({"Digits": "31"}, {"Digits": "11"}),  # a second line (open too) on the same case
]


@pytest.mark.parametrize("answers", ANSWERS)
def test_the_hot_path_writes_what_the_orm_path_wrote(phone, app, monkeypatch, answers):
    hot = _choose(phone, "CAhot1", *answers)
    written_hot, ref_hot = _written(app, "CAhot1")
    monkeypatch.setattr(menu, "_open_line_chosen", lambda step: None)  # the ORM path only
    orm = _choose(phone, "CAorm1", *answers)
    written_orm, ref_orm = _written(app, "CAorm1")
    assert written_hot == written_orm
    assert written_hot["worker_number"] == WORKER and written_hot["reference_ok"]
    assert [_heard(r, ref_hot) for r in hot[1:]] == [_heard(r, ref_orm) for r in orm[1:]]
    assert "<reference>" in _heard(hot[1], ref_hot)[0]  # the new case's reference is heard
    if len(answers) == 2:
        assert [st["position"] for st in written_hot["steps"]] == [0, 1]
        assert "<reference>" not in _heard(hot[2], ref_hot)[0]  # not again


def test_a_withdrawn_consent_is_said_on_the_hot_path(phone, app):
    from datetime import UTC, datetime

    from callrouter import cases

    _choose(phone, "CAhot2", {"Digits": "31"})
    svc = app.extensions["callrouter"]
    with svc.sessions.begin() as s:
        call = s.scalar(select(Call).where(Call.call_sid == "CAhot2"))
        consent = cases.record_consent(
            s,
            s.get(Case, call.case_id),
            "svb",
            "contact",
            by_org="utrecht",
            by_hmac=call.from_hmac,
            transfer_id=None,
            at=datetime.now(UTC),
        )
        s.flush()
        cases.withdraw(s, consent.id, "user:sup@utrecht.nl", datetime.now(UTC))
    root = phone.post("/voice/menu?try=0", CallSid="CAhot2", From=WORKER, Digits="31")
    assert "ingetrokken" in says(root)


def test_an_unknown_call_is_sent_to_the_start(phone):
    root = phone.post("/voice/menu?try=0", CallSid="CAnever", From=WORKER, Digits="31")
    assert root.find("Redirect").text.endswith("/voice/incoming")


@pytest.mark.parametrize("value", ["plain", 'a "quoted" <b> & c', "Zaak één-twee"])
def test_a_prepared_document_reads_as_the_sdks(value):
    r = twiml.Renderer(lambda p: "https://x.test" + p)

    def build(opened: str, pos: str) -> str:
        return r.ask(f"/voice/transfer?line=a&pos={pos}", "Welkom.", opened, num_digits=2)

    prepared = twiml.prepare(build(twiml.slot("opened"), twiml.slot("pos")))
    filled = twiml.fill(prepared, {"opened": value, "pos": "7"})
    direct = build(value, "7")
    assert ET.tostring(ET.fromstring(filled)) == ET.tostring(ET.fromstring(direct))
