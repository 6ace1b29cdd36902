"""Cases and life events through signed webhooks: one reference, a chain of warm transfers,
consent per organisation, and the way back from a professional to the worker."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from callrouter.flows import reference as refs
from callrouter.models import Call, CallbackRequest, Case, CaseStep, Consent, Transfer

from conftest import DIRECTORY, action_of, says

WORKER = "+31302860123"
SVB_STAFF = "+31883009123"
IND_STAFF = "+31887009123"

CASES_DIRECTORY = (
    DIRECTORY.replace(
        """  - id: ind
    name: IND""",
        """  - id: cak
    name: CAK
    spoken_name: het C A K
    digit: 5
    public_wait_minutes: 15
    staff_numbers: ["+3188400*"]
    lines:
      - id: cak-eigen-bijdrage
        topic: eigen bijdrage
        spoken_topic: de eigen bijdrage
        digit: 1
        keywords: [eigen bijdrage]
        numbers: ["+31884001001"]
        hours: "24/7"
  - id: ind
    name: IND""",
    )
    .replace(
        """    public_wait_minutes: 20
    lines:
      - id: svb-aow""",
        """    public_wait_minutes: 20
    staff_numbers: ["+3188300*"]
    lines:
      - id: svb-aow""",
    )
    .replace(
        """    public_wait_minutes: 25
    lines:
      - id: ind-verblijf""",
        """    public_wait_minutes: 25
    staff_numbers: ["+31887009123"]
    lines:
      - id: ind-verblijf""",
    )
    + """
life_events:
  - id: verpleeghuis
    name: Partner gaat naar een verpleeghuis
    spoken_name: opname in een verpleeghuis
    digit: 1
    keywords: [verpleeghuis, verzorgingshuis]
    steps:
      - line: svb-aow
        reason: AOW bij opname van de partner
      - line: toeslagen-algemeen
        reason: toeslagen aanpassen
      - line: cak-eigen-bijdrage
        reason: eigen bijdrage voor de zorg
  - id: kind
    name: Geboorte van een kind
    spoken_name: de geboorte van een kind
    digit: 2
    keywords: [geboorte, baby]
    steps:
      - line: svb-kinderbijslag
        reason: kinderbijslag aanvragen
      - line: toeslagen-algemeen
        reason: kindgebonden budget
"""
)


@pytest.fixture(scope="module")
def lines_file(tmp_path_factory, pin_hash):
    """The test directory with staff numbers, a third organisation and a life event."""
    return write_cases_directory(tmp_path_factory, pin_hash)


def write_cases_directory(tmp_path_factory, pin_hash):
    from conftest import AMSTERDAM_ID, CALLER_ID, INTERNAL, WORKER_MOBILE

    path = tmp_path_factory.mktemp("cases") / "lines.yaml"
    path.write_text(
        CASES_DIRECTORY.format(
            internal=INTERNAL,
            pin_hash=pin_hash,
            mobile=WORKER_MOBILE,
            caller_id=CALLER_ID,
            amsterdam_id=AMSTERDAM_ID,
        ),
        encoding="utf-8",
    )
    return path


def rows(app, model, **where):
    svc = app.extensions["callrouter"]
    with svc.sessions() as s:
        q = select(model)
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        return s.scalars(q).all()


def the_case(app) -> Case:
    (case,) = rows(app, Case)
    return case


def leg_for(phone, number):
    return [c for c in phone.twilio.created if c["To"] == number][-1]


def accept(phone, number) -> str:
    """The professional at `number` answers, hears the whisper and accepts; the whisper."""
    leg = leg_for(phone, number)
    root = phone.post(leg["Url"], CallSid=leg["Sid"])
    whisper = says(root)
    phone.post(action_of(root), CallSid=leg["Sid"], Digits="1")
    return whisper


def professional_hangs_up(phone, app, sid, number, verdict="1"):
    """The professional leaves: their leg completes and the worker's Dial ends; the worker
    answers the question how it went (`verdict`, "" for no answer) and goes on."""
    leg = leg_for(phone, number)
    (tr,) = [t for t in rows(app, Transfer) if t.state == "connected"]
    phone.post(leg["StatusCallback"], CallSid=leg["Sid"], CallStatus="completed", SequenceNumber=5)
    root = phone.post(
        f"/voice/conference/done?tr={tr.id}",
        CallSid=sid,
        CallStatus="in-progress",
        DialCallStatus="completed",
    )
    assert "Hoe is het gegaan" in says(root)
    return phone.post(action_of(root), CallSid=sid, Digits=verdict)


def start_chain(phone, sid="CAchain1"):
    root = phone.post("/voice/incoming", CallSid=sid, From=WORKER)
    root = phone.post(action_of(root), CallSid=sid, From=WORKER, Digits="0")
    assert "Levensgebeurtenissen" in says(root) and "verpleeghuis" in says(root)
    return phone.post(action_of(root), CallSid=sid, From=WORKER, Digits="1")


def test_three_step_chain_with_an_unanswered_step(phone, app):
    """Step 1 accepted, step 2 unanswered (a callback on the case), step 3 accepted: one case,
    three transfers, the reference in every whisper, the worker never dials again."""
    root = start_chain(phone)
    text = says(root)
    case = the_case(app)
    spoken_ref = refs.spoken(case.reference)
    assert refs.is_valid(case.reference) and spoken_ref in text
    assert "drie organisaties" in text and "de S V B" in text and "het C A K" in text
    assert "Stap 1 van 3" in text
    root = phone.post(action_of(root), CallSid="CAchain1", From=WORKER, Digits="1")
    phone.drain()
    w1 = accept(phone, "+31883001001")
    assert (
        spoken_ref in w1
        and "Stap 1 van 3, levensgebeurtenis: opname in een verpleeghuis" in w1
        and "AOW bij opname van de partner" in w1
    )
    root = professional_hangs_up(phone, app, "CAchain1", "+31883001001")
    assert "Stap 2 van 3" in says(root) and "Belastingdienst Toeslagen" in says(root)
    root = phone.post(action_of(root), CallSid="CAchain1", From=WORKER, Digits="")
    phone.drain()
    leg2 = leg_for(phone, "+31881001001")
    phone.post(
        leg2["StatusCallback"], CallSid=leg2["Sid"], CallStatus="no-answer", SequenceNumber=2
    )
    phone.drain()  # the hunt group is exhausted: the worker is brought back
    sid, upd = phone.twilio.updates[-1]
    assert sid == "CAchain1" and "/voice/unanswered" in upd["Url"]
    root = phone.post(upd["Url"], CallSid="CAchain1", From=WORKER)
    text = says(root)
    assert "Stap 2" in text and "terugbelverzoek" in text and "Stap 3 van 3" in text
    root = phone.post(action_of(root), CallSid="CAchain1", From=WORKER, Digits="1")
    phone.drain()
    w3 = accept(phone, "+31884001001")
    assert spoken_ref in w3 and "Stap 3 van 3" in w3
    root = professional_hangs_up(phone, app, "CAchain1", "+31884001001")
    assert "laatste stap" in says(root)
    transfers = rows(app, Transfer)
    assert len(transfers) == 3 and {t.case_id for t in transfers} == {case.id}
    assert sorted(t.step for t in transfers) == [0, 1, 2]
    steps = sorted(rows(app, CaseStep), key=lambda st: st.position)
    assert [st.state for st in steps] == ["done", "unanswered", "done"]
    (cb,) = rows(app, CallbackRequest)
    # When the callback rings the professional, the whisper names the case too.
    with app.app_context():
        from callrouter.voice.callback import _whisper

        svc = app.extensions["callrouter"]
        with svc.sessions() as s:
            assert spoken_ref in _whisper(s.get(CallbackRequest, cb.id), 1, s)
    assert cb.case_id == case.id and cb.line_id == "toeslagen-algemeen"
    assert steps[1].callback_id == cb.id
    assert len(rows(app, Call)) == 1


def test_a_step_can_be_skipped_and_the_chain_stopped(phone, app):
    """7 skips a step (the next one is offered), 0 stops the rest of the chain."""
    root = start_chain(phone, "CAchain2")
    root = phone.post(action_of(root), CallSid="CAchain2", From=WORKER, Digits="7")
    assert "Stap 1 is overgeslagen" in says(root) and "Stap 2 van 3" in says(root)
    root = phone.post(action_of(root), CallSid="CAchain2", From=WORKER, Digits="0")
    assert "gestopt" in says(root)
    steps = sorted(rows(app, CaseStep), key=lambda st: st.position)
    assert [st.state for st in steps] == ["skipped", "stopped", "stopped"]
    assert rows(app, Transfer) == []


def test_next_organisation_from_the_star_menu(phone, app):
    """In a conversation, * then 4 leaves it (ended for the professional) and starts the next
    step in the same call."""
    root = start_chain(phone, "CAchain3")
    phone.post(action_of(root), CallSid="CAchain3", From=WORKER, Digits="")
    phone.drain()
    accept(phone, "+31883001001")
    (tr,) = rows(app, Transfer)
    root = phone.post(
        f"/voice/conference/done?tr={tr.id}", CallSid="CAchain3", CallStatus="in-progress"
    )
    assert "Toets 4 voor de volgende organisatie" in says(root)
    root = phone.post(action_of(root), CallSid="CAchain3", Digits="4")
    assert "Hoe is het gegaan" in says(root)
    root = phone.post(action_of(root), CallSid="CAchain3", Digits="")  # no answer: go on
    assert "Stap 2 van 3" in says(root)
    phone.drain()
    prof = leg_for(phone, "+31883001001")
    assert (prof["Sid"], "/voice/worker-left") in [
        (sid, u["Url"][len("https://callrouter.example.test") :]) for sid, u in phone.twilio.updates
    ]
    steps = sorted(rows(app, CaseStep), key=lambda st: st.position)
    assert [st.state for st in steps] == ["done", "pending", "pending"]


def test_consent_per_organisation_is_whispered_and_recorded(phone, app):
    """Consent 'the case may be discussed' for the SVB and none for Toeslagen: different
    whispers, two consent records naming case, organisation, choice and recorder."""
    root = start_chain(phone, "CAchain4")
    phone.post(action_of(root), CallSid="CAchain4", From=WORKER, Digits="1")
    phone.drain()
    w1 = accept(phone, "+31883001001")
    root = professional_hangs_up(phone, app, "CAchain4", "+31883001001")
    phone.post(action_of(root), CallSid="CAchain4", From=WORKER, Digits="")
    phone.drain()
    w2 = accept(phone, "+31881001001")
    assert "geeft toestemming om de zaak te bespreken" in w1
    assert "geen toestemming" in w2 and "geeft toestemming" not in w2
    consents = {c.target_org: c for c in rows(app, Consent)}
    case = the_case(app)
    assert consents["svb"].choice == "case" and consents["toeslagen"].choice == "none"
    assert all(
        c.case_id == case.id and c.recorded_by_org == "utrecht" and c.recorded_by_hmac
        for c in consents.values()
    )
    by_org = {t.target_org: t for t in rows(app, Transfer)}
    assert by_org["svb"].consent_level == "case" and by_org["toeslagen"].consent_level == "none"


def test_withdrawn_consent_is_respected_by_a_later_transfer(phone, app):
    """After the citizen withdraws consent for an organisation, a later transfer of the case
    to it shares nothing beyond the topic, whatever is keyed."""
    from datetime import UTC, datetime

    from callrouter import cases

    root = start_chain(phone, "CAchain5")
    phone.post(action_of(root), CallSid="CAchain5", From=WORKER, Digits="2")
    phone.drain()
    accept(phone, "+31883001001")
    (consent,) = rows(app, Consent)
    assert consent.choice == "contact"
    svc = app.extensions["callrouter"]
    with svc.sessions.begin() as s:
        assert cases.withdraw(s, consent.id, "user:sup@utrecht.nl", datetime.now(UTC))
    (tr,) = rows(app, Transfer)
    root = phone.post(
        f"/voice/conference/done?tr={tr.id}", CallSid="CAchain5", CallStatus="in-progress"
    )
    phone.post(action_of(root), CallSid="CAchain5", Digits="3")  # back to the conversation
    # A new call of the same worker: the SVB again, on a new case: consent applies anew.
    # The same case's later transfer to the SVB (the worker asks the chain's step again):
    case = the_case(app)
    with svc.sessions.begin() as s:
        step = cases.step_at(s, case.id, 0)
        cases.set_step(s, step.id, "pending", datetime.now(UTC))
        for t in s.scalars(select(Transfer)):
            t.state = "ended"
    call = rows(app, Call)[0]
    root = phone.post(
        "/voice/transfer?line=svb-aow&pos=0", CallSid=call.call_sid, From=WORKER, Digits="2"
    )
    phone.drain()
    whisper = accept(phone, "+31883001001")
    assert "geen toestemming" in whisper
    later = [t for t in rows(app, Transfer) if t.state != "ended"][0]
    assert later.consent_level == "none"
    records = sorted(rows(app, Consent), key=lambda c: c.recorded_at)
    assert [c.choice for c in records] == ["contact", "none"]
    assert records[0].withdrawn_at is not None and records[0].withdrawn_by


def test_a_closed_step_becomes_a_callback_and_the_chain_moves_on(phone, app, clock):
    """At night the kinderbijslag line is closed: step 1 becomes a callback request on the case
    (said with its time) and step 2 is offered at once; saying the event selects it."""
    root = phone.post("/voice/incoming", CallSid="CAchain6", From=WORKER)
    root = phone.post(
        action_of(root), CallSid="CAchain6", From=WORKER, SpeechResult="de geboorte van een baby"
    )
    text = says(root)
    assert "twee organisaties" in text and "Stap 1" in text and "gesloten" in text
    assert "terugbelverzoek" in text and "morgen om 8 uur 30" in text
    assert "Stap 2 van 2" in text and "Belastingdienst Toeslagen" in text
    case = the_case(app)
    (cb,) = rows(app, CallbackRequest)
    assert cb.case_id == case.id and cb.line_id == "svb-kinderbijslag" and cb.reason == "closed"
    steps = sorted(rows(app, CaseStep), key=lambda st: st.position)
    assert [st.state for st in steps] == ["closed", "pending"]
    assert steps[0].callback_id == cb.id and case.life_event == "kind"


def test_a_single_transfer_opens_a_case_too(phone, app):
    """Choosing a line opens a case: the worker hears its reference, the whisper names it."""
    root = phone.post("/voice/incoming", CallSid="CAcase1", From=WORKER)
    root = phone.post(action_of(root), CallSid="CAcase1", From=WORKER, Digits="31")
    case = the_case(app)
    assert refs.spoken(case.reference) in says(root)
    root = phone.post(action_of(root), CallSid="CAcase1", From=WORKER, Digits="*")
    assert refs.spoken(case.reference) in says(root)  # heard again on request
    phone.post(action_of(root), CallSid="CAcase1", From=WORKER, Digits="")
    phone.drain()
    assert refs.spoken(case.reference) in accept(phone, "+31883001001")
    (call,) = rows(app, Call)
    assert call.case_id == case.id and case.worker_masked == "+31 3 ****0123"


# --------------------------------------------------------------------------- the way back


def open_case_with_svb(phone, app) -> Case:
    root = phone.post("/voice/incoming", CallSid="CAopen1", From=WORKER)
    root = phone.post(action_of(root), CallSid="CAopen1", From=WORKER, Digits="31")
    phone.post(action_of(root), CallSid="CAopen1", From=WORKER, Digits="1")
    return the_case(app)


def test_way_back_connects_the_professional_to_the_worker(phone, app):
    """A professional of the SVB keys the case reference and the worker's phone rings with a
    whisper naming the SVB and the case; on accepting, both meet in one conference."""
    case = open_case_with_svb(phone, app)
    phone.drain()
    phone.twilio.created.clear()
    root = phone.post("/voice/incoming", CallSid="CAback1", From=SVB_STAFF)
    assert "zaaknummer" in says(root) and "de S V B" in says(root)
    root = phone.post(action_of(root), CallSid="CAback1", From=SVB_STAFF, Digits=case.reference)
    assert root.find("Dial/Conference") is not None
    phone.drain()
    (leg,) = phone.twilio.created
    assert leg["To"] == WORKER
    root = phone.post(leg["Url"], CallSid=leg["Sid"])
    assert "De S V B belt over zaak " + refs.spoken(case.reference) in says(root)
    root = phone.post(action_of(root), CallSid=leg["Sid"], Digits="1")
    conf = root.find("Dial/Conference")
    back = [t for t in rows(app, Transfer) if t.direction == "to-worker"][0]
    assert conf.text == back.id and back.case_id == case.id and back.state == "connected"
    call = rows(app, Call, call_sid="CAback1")[0]
    assert call.identified_by == "staff" and call.case_id == case.id


def test_wrong_check_digit_is_asked_again(phone, app):
    """A reference with a wrong check digit is caught and asked again."""
    case = open_case_with_svb(phone, app)
    wrong = case.reference[:6] + str((int(case.reference[6]) + 1) % 10)
    root = phone.post("/voice/incoming", CallSid="CAback2", From=SVB_STAFF)
    root = phone.post(action_of(root), CallSid="CAback2", From=SVB_STAFF, Digits=wrong)
    assert "klopt niet" in says(root) and root.find("Gather") is not None
    root = phone.post(action_of(root), CallSid="CAback2", From=SVB_STAFF, Digits=case.reference)
    assert root.find("Dial/Conference") is not None


def test_unknown_and_foreign_cases_sound_the_same(phone, app):
    """A case that did not involve the caller's organisation and one that does not exist get
    the very same answer."""
    case = open_case_with_svb(phone, app)
    root = phone.post("/voice/incoming", CallSid="CAback3", From=IND_STAFF)
    foreign = phone.post(action_of(root), CallSid="CAback3", From=IND_STAFF, Digits=case.reference)
    nobody = refs.new_reference("999999" if case.reference[:6] != "999999" else "999998")
    root = phone.post("/voice/incoming", CallSid="CAback4", From=IND_STAFF)
    missing = phone.post(action_of(root), CallSid="CAback4", From=IND_STAFF, Digits=nobody)
    from xml.etree import ElementTree as ET

    assert ET.tostring(foreign) == ET.tostring(missing)
    assert "niet bekend" in says(missing)
    assert [t for t in rows(app, Transfer) if t.direction == "to-worker"] == []


def test_unreachable_worker_becomes_a_callback_on_the_case(phone, app):
    """The worker does not answer the way back: a callback request on the case, professional
    line first, then the worker."""
    case = open_case_with_svb(phone, app)
    phone.drain()
    root = phone.post("/voice/incoming", CallSid="CAback5", From=SVB_STAFF)
    phone.post(action_of(root), CallSid="CAback5", From=SVB_STAFF, Digits=case.reference)
    phone.drain()
    leg = leg_for(phone, WORKER)
    phone.post(leg["StatusCallback"], CallSid=leg["Sid"], CallStatus="no-answer", SequenceNumber=2)
    phone.drain()
    sid, upd = phone.twilio.updates[-1]
    assert sid == "CAback5"
    root = phone.post(upd["Url"], CallSid="CAback5", From=SVB_STAFF)
    assert "niet bereikbaar" in says(root) and "terugbelverzoek" in says(root)
    (cb,) = [c for c in rows(app, CallbackRequest) if c.case_id == case.id]
    assert cb.line_id == "svb-aow" and cb.caller_org == "utrecht" and cb.state == "pending"
    assert cb.worker_masked == "+31 3 ****0123"


# --------------------------------------------------------------------------- directory


@pytest.mark.parametrize(
    "mutation,where,message",
    [
        ("line: svb-aow\n        reason: AOW", "life_events[0].steps[0].line", "unknown line id"),
        ("digit: 1\n    keywords", "life_events[2].digit", "already used"),
        ("id: verpleeghuis\n    name: Tweede", "life_events[2].id", "duplicate life event id"),
        ("steps: []", "life_events[2].steps", "non-empty list"),
    ],
)
def test_broken_life_events_name_file_line_and_key(mutation, where, message, tmp_path):
    """Unknown line ids, duplicate ids or keys and empty chains are errors with a place."""
    from callrouter import directory as directory_mod

    base = CASES_DIRECTORY.format(
        internal="+31880100100",
        pin_hash="$argon2id$x",
        mobile="+31687654321",
        caller_id="+31880100200",
        amsterdam_id="+31205550199",
    )
    second = (
        "  - id: tweede\n    name: Tweede\n    digit: 2\n    steps:\n"
        "      - line: svb-aow\n        reason: AOW\n"
    )
    if mutation.startswith("line: svb-aow"):
        text = base.replace(
            "      - line: svb-aow\n        reason: AOW bij",
            "      - line: svb-oud\n        reason: AOW bij",
        )
    elif mutation.startswith("digit"):
        text = base + second.replace("digit: 2", "digit: 1")
    elif mutation.startswith("id: verpleeghuis"):
        text = base + second.replace("id: tweede", "id: verpleeghuis")
    else:
        text = base + "  - id: leeg\n    name: Leeg\n    steps: []\n"
    path = tmp_path / "lines.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(directory_mod.DirectoryError) as exc:
        directory_mod.load(path)
    problems = [str(p) for p in exc.value.problems]
    hit = [p for p in problems if where in p and message in p]
    assert hit, problems
    line_no = int(hit[0][len(str(path)) + 1 :].split(":")[0])
    assert hit[0].startswith(f"{path}:")
    shown = text.splitlines()[line_no - 1]
    key = where.rsplit(".", 1)[-1]
    assert shown.strip().lstrip("- ").startswith(key + ":"), shown


def test_staff_number_that_is_a_front_desk_number_is_refused(tmp_path):
    """A number cannot be both a worker's and a professional's."""
    from callrouter import directory as directory_mod

    text = CASES_DIRECTORY.format(
        internal="+31880100100",
        pin_hash="$argon2id$x",
        mobile="+31687654321",
        caller_id="+31880100200",
        amsterdam_id="+31205550199",
    ).replace('staff_numbers: ["+31887009123"]', 'staff_numbers: ["+31205550100"]')
    with pytest.raises(directory_mod.DirectoryError) as exc:
        directory_mod.loads(text, "lines.yaml")
    assert any("staff_numbers" in str(p) and "amsterdam" in str(p) for p in exc.value.problems)


def test_retention_closes_old_cases_and_removes_the_worker_number(phone, app):
    """After 30 days a case closes (the way back finds nothing); past the retention period its
    worker number is gone."""
    from datetime import timedelta

    from callrouter import retention

    case = open_case_with_svb(phone, app)
    with app.app_context():
        counts = retention.purge(case.opened_at + timedelta(days=31))
    (after,) = rows(app, Case)
    assert after.state == "closed" and after.worker_hmac is not None and counts["cases"] == 0
    root = phone.post("/voice/incoming", CallSid="CAback9", From=SVB_STAFF)
    root = phone.post(action_of(root), CallSid="CAback9", From=SVB_STAFF, Digits=case.reference)
    assert "niet bekend" in says(root)
    with app.app_context():
        counts = retention.purge(case.opened_at + timedelta(days=91))
    (after,) = rows(app, Case)
    assert counts["cases"] == 1 and after.worker_hmac is None
    assert after.worker_number_enc is None and after.worker_masked is None


def test_way_back_records_are_a_trace_of_their_own_linked_to_the_case(phone, app):
    """The professional's call on the way back has its own trace; the context it shares
    with the worker links to the case's trace (the opening call's case-opened record)."""
    from callrouter.ldv import records as ldv
    from callrouter.models import LdvRecord

    case = open_case_with_svb(phone, app)
    phone.drain()
    root = phone.post("/voice/incoming", CallSid="CAback9", From=SVB_STAFF)
    phone.post(action_of(root), CallSid="CAback9", From=SVB_STAFF, Digits=case.reference)
    phone.drain()
    leg = leg_for(phone, WORKER)
    phone.post(leg["Url"], CallSid=leg["Sid"])
    back = rows(app, Call, call_sid="CAback9")[0]
    records = rows(app, LdvRecord, trace_id=back.id)
    assert sorted(r.name for r in records) == [
        "call-received",
        "caller-identified",
        "context-shared",
    ]
    shared = next(r for r in records if r.name == "context-shared")
    assert shared.links == [[case.call_id, ldv.case_span(case.call_id, case.id)]]
    assert shared.attributes["callrouter.direction"] == "to-worker"
    identified = next(r for r in records if r.name == "caller-identified")
    assert identified.attributes["callrouter.identified_by"] == "staff"
    opened = rows(app, LdvRecord, name="case-opened")
    assert [r.span_id for r in opened] == [ldv.case_span(case.call_id, case.id)]
