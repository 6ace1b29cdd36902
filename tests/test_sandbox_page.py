"""The sandbox page's server side without a browser: a prompt's time counts its speaking
time, the switch that holds prompts, a key that belongs to the prompt it was pressed for,
answering automatically, and the state in Dutch with one transcript per call."""

from __future__ import annotations

import threading

import pytest

from callrouter import directory as directory_mod
from callrouter.sandbox.provider import Sandbox
from callrouter.sandbox.server import WORDS_PER_SECOND, Driver, create_sandbox_app

from conftest import AMSTERDAM_ID, CALLER_ID, DIRECTORY, INTERNAL, WORKER_MOBILE

WORDS = " ".join(["woord"] * 25)


def prompts(texts: list[str]):
    """A service whose every answer is the next Gather of `texts` (timeout 2 s)."""
    answers = iter(texts)

    def fetch(method, url, params):
        text = next(answers, None)
        if text is None:
            return 200, "<Response><Hangup/></Response>"
        gather = '<Gather action="https://svc/next" timeout="2" actionOnEmptyResult="true">'
        return 200, f"<Response>{gather}<Say>{text}</Say></Gather></Response>"

    return fetch


def test_a_prompt_times_out_only_after_it_was_spoken():
    """25 words at a calm pace take 10 s before the prompt's own 2 s begin."""
    sb = Sandbox(prompts([WORDS, "Tweede vraag."]), "AC" + "0" * 32)
    driver = Driver(sb, threading.Lock())
    sid = sb.dial_in("+31302860123", INTERNAL, "https://svc/voice/incoming")
    driver.tick(0.0)
    speaking = 25 / WORDS_PER_SECOND
    driver.tick(speaking + 1.9)  # said, and 1.9 s of its timeout
    assert sb.calls[sid].gather_seq == 1
    driver.tick(speaking + 2.1)
    driver.tick(speaking + 2.2)
    assert sb.calls[sid].gather_seq == 2  # timed out: the next prompt is waiting


def test_the_hold_switch_keeps_a_prompt_waiting():
    """While a person reads (the switch on), no prompt times out; released, it gets its
    full time again."""
    sb = Sandbox(prompts(["Kort."]), "AC" + "0" * 32)
    driver = Driver(sb, threading.Lock())
    driver.hold = True
    sid = sb.dial_in("+31302860123", INTERNAL, "https://svc/voice/incoming")
    for t in range(0, 600, 30):
        driver.tick(float(t))
    assert not sb.calls[sid].ended and sb.calls[sid].verbs
    driver.hold = False
    driver.tick(601.0)
    assert sb.calls[sid].verbs  # its time starts again now
    driver.tick(604.0)
    driver.tick(604.1)
    assert not sb.calls[sid].verbs or sb.calls[sid].ended


@pytest.fixture
def page(pin_hash):
    d = directory_mod.loads(
        DIRECTORY.format(
            internal=INTERNAL,
            pin_hash=pin_hash,
            mobile=WORKER_MOBILE,
            caller_id=CALLER_ID,
            amsterdam_id=AMSTERDAM_ID,
        ),
        "lines.yaml",
    )
    app = create_sandbox_app("https://svc", "token", "AC" + "0" * 32, d)
    driver = app.extensions["callrouter.sandbox.driver"]
    driver.stop.set()  # the test moves the calls itself
    sb = app.extensions["callrouter.sandbox"]
    sb.fetch = prompts(["Kies de organisatie.", "Toets 1 voor toestemming."])
    yield app, sb, driver


def test_a_key_belongs_to_the_prompt_it_was_pressed_for(page):
    """The page sends the prompt it showed: a key for a prompt that has moved on is refused
    and never reaches the next one."""
    app, sb, driver = page
    client = app.test_client()
    sid = client.post("/sandbox/dial", data={"from": "+31302860123"}).get_json()["sid"]
    sb.run()
    state = client.get("/sandbox/state").get_json()
    (desk,) = [c for c in state["calls"] if c["sid"] == sid]
    assert desk["waiting"] and desk["gather"] == 1 and state["desk"] == sid
    stale = client.post("/sandbox/input", data={"sid": sid, "value": "3", "gather": "0"})
    assert stale.status_code == 409 and "geen vraag" in stale.get_json()["error"]
    assert (
        client.post("/sandbox/input", data={"sid": sid, "value": "3", "gather": "1"}).status_code
        == 200
    )
    sb.run()
    assert sb.calls[sid].gather_seq == 2
    late = client.post("/sandbox/input", data={"sid": sid, "value": "1", "gather": "1"})
    assert late.status_code == 409 and not sb.phone("+31302860123").inputs


def test_state_is_dutch_with_one_transcript_per_call(page):
    """Statuses in Dutch, parties by their part, lines by the call they were heard on, and
    only the lines the page has not seen yet."""
    app, sb, _ = page
    client = app.test_client()
    first = client.post("/sandbox/dial", data={"from": "+31302860123"}).get_json()["sid"]
    sb.run()
    client.post("/sandbox/hangup", data={"sid": first})
    second = client.post("/sandbox/dial", data={"from": "+31302860123"}).get_json()["sid"]
    sb.run()
    state = client.get("/sandbox/state").get_json()
    assert state["desk"] == second
    statuses = {c["sid"]: c["status"] for c in state["calls"]}
    assert statuses == {first: "beëindigd", second: "in gesprek"}
    assert {line["sid"] for line in state["lines"]} == {first, second}
    assert all(line["who"] == "Medewerker van de gemeente" for line in state["lines"])
    newer = client.get(f"/sandbox/state?since={len(state['lines'])}").get_json()
    assert newer["lines"] == []
    bad = client.post("/sandbox/clock", data={"to": "morgen"})
    assert bad.status_code == 400 and "Vul een datum en tijd in" in bad.get_json()["error"]


def test_professionals_answer_and_accept_by_themselves_when_chosen(page):
    """With the choice on, a ringing professional answers and presses 1 at the whisper."""
    app, sb, driver = page
    client = app.test_client()
    client.post("/sandbox/choices", data={"auto-professional": "1"})
    assert driver.auto == {"professional": True, "other": True}
    sb.fetch = lambda m, u, p: (
        200,
        '<Response><Gather action="/a" timeout="8"><Say>Fluister.</Say></Gather></Response>',
    )
    leg = sb.create_call({"To": "+31883001001", "From": INTERNAL, "Url": "https://svc/w"})
    driver.tick(0.0)
    driver.tick(0.1)
    assert sb.calls[leg.sid].status == "in-progress"
    assert list(sb.phone("+31883001001").inputs) == ["1"]  # the whisper: accepted
    sb.run(max_steps=1)
    assert not sb.phone("+31883001001").inputs
