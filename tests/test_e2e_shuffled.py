"""Life-event chains through real processes, with the callbacks out of order.

`gunicorn app:app` and `python worker.py` run as in production; the sandbox provider is the
telephone network, in its shuffle mode: it serves the REST subset on a loopback port, reaches
the webhooks over HTTP, and delivers status and conference callbacks late, out of order and
sometimes twice, as Twilio may. The worker process runs the jobs whenever it gets to them.
The scenarios are the ones a chain used to break on: the step's professional hangs up and the
worker, pressing nothing, must be taken to the next step (also past a closed one), and never be
left alone in a conference.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from callrouter import create_app
from callrouter.flows import speech
from callrouter.models import Call, CaseStep

from conftest import AMSTERDAM_ID, CALLER_ID, DIRECTORY, INTERNAL, WORKER_MOBILE
from sandbox_network import Network, service_on_network

TOKEN = "shuffle-e2e-token-0123456789abcdef"
TOESLAGEN, KINDERBIJSLAG, IND, AOW = "+31881001001", "+31883002001", "+31887001001", "+31883001001"
SEEDS = (11, 12, 13)

# Two life events: one whose middle line is closed today, one whose three lines are open.
CHAINS = """
life_events:
  - id: verhuizing
    name: Verhuizing naar het buitenland
    spoken_name: een verhuizing naar het buitenland
    digit: 1
    keywords: [verhuizing]
    steps:
      - line: toeslagen-algemeen
        reason: toeslagen stoppen
      - line: svb-kinderbijslag
        reason: kinderbijslag bij verhuizing
      - line: svb-aow
        reason: AOW in het buitenland
  - id: verblijf
    name: Verblijf en pensioen
    spoken_name: verblijf en pensioen
    digit: 2
    keywords: [verblijf]
    steps:
      - line: toeslagen-algemeen
        reason: toeslagen
      - line: ind-verblijf
        reason: verblijfsvergunning
      - line: svb-aow
        reason: AOW
"""


def _directory(pin_hash: str) -> str:
    """The tests' directory with kinderbijslag open only on a day two days away (closed today,
    whatever time the test runs) and the IND line open day and night."""
    text = DIRECTORY.format(
        internal=INTERNAL,
        pin_hash=pin_hash,
        mobile=WORKER_MOBILE,
        caller_id=CALLER_ID,
        amsterdam_id=AMSTERDAM_ID,
    )
    other_day = (datetime.now(ZoneInfo("Europe/Amsterdam")) + timedelta(days=2)).strftime("%a")
    closed = f'        hours:\n          {other_day.lower()}: "10:00-11:00"\n'
    text = text.replace('        hours:\n          mon-fri: "08:30-17:00"\n', closed, 1)
    text = text.replace('        hours:\n          sat: "10:00-11:00"\n', '        hours: "24/7"\n')
    assert closed in text and text.count('"10:00-11:00"') == 1
    return text + CHAINS


@pytest.fixture(scope="module")
def network(tmp_path_factory, pin_hash):
    tmp = tmp_path_factory.mktemp("shuffled")
    lines = tmp / "lines.yaml"
    lines.write_text(_directory(pin_hash), encoding="utf-8")
    with service_on_network(tmp, lines, TOKEN) as (net, env):
        net.service = create_app(environ=env)  # this process reads the call log only
        yield net


def _chain(net: Network, seed: int, event: str, professionals: list[str]) -> list[str]:
    """The worker (a new number per run) chooses the life event and presses nothing more;
    each step's professional accepts, talks with the worker, and hangs up."""
    sb = net.new_call_network(seed)
    for number in (TOESLAGEN, KINDERBIJSLAG, IND, AOW):
        phone = sb.phone(number)
        phone.answer, phone.inputs = "answer", deque(["1"])
    worker = net.call_in(f"+3130286{seed:04d}", ["0", event, ""], INTERNAL)
    net.settle()
    for number in professionals:
        prof = net.live(number)
        assert prof is not None, (seed, number, sb.transcript[-6:])
        assert net.together(worker, prof.sid), (seed, number, sb.transcript[-6:])
        net.hang_up(prof.sid)
        net.settle()
    heard = [text for who, text in sb.transcript if who == sb.calls[worker].label]
    net.hang_up_everyone()
    assert net.alone == [], seed
    assert [c.label for c in sb.calls.values() if not c.ended] == [], seed
    with net.service.extensions["callrouter"].sessions() as s:
        call = s.scalar(select(Call).where(Call.call_sid == worker))
        steps = s.scalars(
            select(CaseStep).where(CaseStep.case_id == call.case_id).order_by(CaseStep.position)
        ).all()
        states = [step.state for step in steps]
    assert any(speech.CHAIN_DONE in text for text in heard), (seed, heard[-4:])
    return states


@pytest.mark.parametrize("seed", SEEDS)
def test_chain_goes_on_when_each_professional_hangs_up(network, seed):
    states = _chain(network, seed, "2", [TOESLAGEN, IND, AOW])
    assert states == ["done", "done", "done"]


@pytest.mark.parametrize("seed", SEEDS)
def test_chain_goes_past_a_closed_middle_step(network, seed):
    states = _chain(network, seed, "1", [TOESLAGEN, AOW])
    assert states == ["done", "closed", "done"]
