"""Every sentence of `speech`, rendered as callers hear it: capitals where sentences begin (also
after a spoken name such as "de S V B"), and on the way back each role hears its own words."""

from __future__ import annotations

import inspect
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from callrouter import directory as directory_mod
from callrouter import twiml
from callrouter.directory import Caller, Directory, LifeEvent, Line, Organisation
from callrouter.flows import speech

from conftest import AMSTERDAM_ID, CALLER_ID, DIRECTORY, INTERNAL, WORKER_MOBILE, says

NOW = datetime(2026, 11, 25, 20, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))
LOWER_START = re.compile(r"(^|[.?!]\s+)[a-zà-ÿ]")


@pytest.fixture(scope="module")
def d(pin_hash) -> Directory:
    text = DIRECTORY.format(
        internal=INTERNAL,
        pin_hash=pin_hash,
        mobile=WORKER_MOBILE,
        caller_id=CALLER_ID,
        amsterdam_id=AMSTERDAM_ID,
    ) + (
        "life_events:\n  - id: kind\n    name: Geboorte\n"
        "    spoken_name: de geboorte van een kind\n"
        "    digit: 1\n    steps:\n      - line: svb-aow\n        reason: de a o w\n"
    )
    return directory_mod.loads(text, "lines.yaml")


def _argument(name: str, annotation, d: Directory):
    """A value for one parameter of a speech function, by its type (or its name)."""
    svb = d.organisation("svb")
    kinds = {
        Directory: d,
        Organisation: svb,
        Line: d.line("svb-aow"),
        Caller: d.caller("utrecht"),
        LifeEvent: d.life_events[0],
    }
    for kind, value in kinds.items():
        if kind.__name__ in str(annotation):
            return value
    if "datetime" in str(annotation):
        return NOW + timedelta(hours=13) if name != "now" else NOW
    if "bool" in str(annotation):
        return True
    if "int" in str(annotation):
        return 1
    if name == "step":
        return (1, 3, "de geboorte van een kind", "de a o w")
    if name in ("reference",):
        return "1234567"
    return "de S V B" if "name" in name else "de a o w"


def _rendered(text: str) -> list[str]:
    doc = twiml.Renderer(lambda p: "https://x.test" + p).say(text)
    return [el.text or "" for el in ET.fromstring(doc).iter("Say")]


def _every_sentence(d: Directory) -> list[tuple[str, str]]:
    out = []
    for name, value in vars(speech).items():
        if name.startswith("_") or name in ("sentences",):
            continue
        if isinstance(value, str) and value.strip() and name.isupper():
            out.append((name, value))
        elif inspect.isfunction(value) and value.__module__ == speech.__name__:
            sig = inspect.signature(value)
            args = {
                p.name: _argument(p.name, p.annotation, d)
                for p in sig.parameters.values()
                if p.default is inspect.Parameter.empty
            }
            result = value(**args)
            if isinstance(result, str) and " " in result:
                out.append((name, result))
    return out


def test_every_sentence_begins_with_a_capital(d):
    """Each text of `speech`, as the TwiML says it, has no sentence in lower case."""
    texts = _every_sentence(d)
    assert len(texts) > 60  # the constants and the functions, not a handful
    bad = [
        (name, said)
        for name, text in texts
        for said in _rendered(text)
        if LOWER_START.search(said) and not said.startswith("@@")
    ]
    assert bad == []


def test_the_worker_whisper_names_the_organisation_with_a_capital(d):
    """The way back's whisper: "Professionallijn. De S V B belt over zaak ..."."""
    (said,) = _rendered(speech.worker_whisper(d.organisation("svb"), "1234567"))
    assert said.startswith("Professionallijn. De S V B belt over zaak")


def test_a_prepared_document_capitalises_a_value_that_begins_a_sentence():
    """A slot filled per request gets its capitals as the renderer would give them."""
    r = twiml.Renderer(lambda p: "https://x.test" + p)
    prepared = twiml.prepare(r.say(twiml.slot("a") + " Toets 1."))
    assert "<Say" in twiml.fill(prepared, {"a": "de S V B belt. het U W V ook."})
    assert "De S V B belt. Het U W V ook." in twiml.fill(
        prepared, {"a": "de S V B belt. het U W V ook."}
    )


# --------------------------------------------------------------------------- roles


def test_the_way_back_caller_waits_for_the_worker_not_for_a_professional(phone):
    """The professional calling back hears that the worker is being reached."""
    root = phone.post("/voice/wait?tr=x&to=worker")
    assert "medewerker van de gemeente" in says(root) and "een professional" not in says(root)
    assert "een professional" in says(phone.post("/voice/wait?tr=x"))


@pytest.mark.parametrize(
    "who, hears",
    [
        (None, "De medewerker van de gemeente heeft het gesprek beëindigd"),
        ("citizen", "De inwoner heeft het gesprek beëindigd"),
        ("professional", "De professional heeft het gesprek beëindigd"),
    ],
)
def test_who_left_is_named_for_the_one_who_stays(phone, who, hears):
    """The party left alone hears who ended the conversation."""
    path = "/voice/worker-left" + (f"?who={who}" if who else "")
    assert hears in says(phone.post(path))


def test_the_worker_on_the_way_back_hears_the_professional_left(app, twilio, clock):
    """On the way back the worker is the conference's professional: when the calling
    professional hangs up, the worker hears that the professional ended it."""
    import uuid

    from callrouter import jobs
    from callrouter.models import Call, Leg, Transfer

    svc = app.extensions["callrouter"]
    now = NOW
    with svc.sessions.begin() as s:
        call = Call(id=uuid.uuid4().hex, call_sid="CAback", received_at=now, status="in-progress")
        s.add(call)
        s.flush()
        tr = Transfer(
            id=uuid.uuid4().hex,
            call_id=call.id,
            target_org="utrecht",
            line_id="svb-aow",
            state="connected",
            created_at=now,
            direction="to-worker",
        )
        s.add(tr)
        s.flush()
        s.add(
            Leg(
                id=uuid.uuid4().hex,
                transfer_id=tr.id,
                kind="professional",
                position=0,
                call_sid="CAworkerleg",
                number_hmac="x",
                number_masked="+31 6 ****4321",
                status="in-progress",
                outcome="accepted",
                created_at=now,
                accepted_at=now,
            )
        )
        tr_id = tr.id
    with app.app_context():
        jobs.end_conference(tr_id)
    (sid, form) = twilio.updates[-1]
    assert sid == "CAworkerleg" and form["Url"].endswith("/voice/worker-left?who=professional")
