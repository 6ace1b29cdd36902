"""The sandbox: whole calls without a Twilio account, through the real service over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from callrouter.sandbox.script import RealCredentials, Runner, refuse_real_credentials

from conftest import WORKER

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["in-order", "shuffled"])
def runner(request, environ):
    """The sandbox as the project's fake delivers callbacks (in order), and shuffled as
    Twilio may (a fixed seed per test, so that a failure replays)."""
    env = {k: v for k, v in environ.items() if not k.startswith("TWILIO")}
    seed = None if request.param == "in-order" else zlib.crc32(request.node.name.encode())
    r = Runner(environ=env, shuffle=seed)
    yield r
    r.close()


def said(outcome, who_prefix: str) -> str:
    return " ".join(text for who, text in outcome.transcript if who.startswith(who_prefix))


def test_warm_transfer_with_handover(runner):
    """Menu, whisper, accept, citizen added, worker leaves: everyone hears their part."""
    out = runner.call(WORKER, ["31", ""], answer="accept", then="handover:+31612345678")
    assert out.call_outcome == "connected" and out.transfer_outcomes == ["connected"]
    worker = said(out, "medewerker")
    assert "Welkom bij de professionallijn" in worker and "overgedragen" in worker
    professional = said(out, "lijn +31883001001")
    assert "Gemeente Utrecht belt" in professional and "U wordt nu verbonden" in professional
    legs = [c for c in runner.sandbox.calls.values() if c.to == "+31612345678"]
    assert len(legs) == 1 and legs[0].from_ == "+31880100200"


def test_every_professional_declines_then_callback_offer(runner):
    """Both numbers decline: the worker is brought back and offered a callback."""
    out = runner.call(WORKER, ["31", "", "1"], answer="decline")
    worker = said(out, "medewerker")
    assert "niet gelukt" in worker and "terugbelverzoek is genoteerd" in worker
    assert out.call_outcome == "callback-requested" and out.callbacks == ["pending"]
    professionals = [c for c in runner.sandbox.calls.values() if c.direction != "inbound"]
    assert [c.to for c in professionals] == ["+31883001001", "+31883001002"]


def test_busy_line(runner):
    """A busy hunt group ends in the callback offer; hanging up leaves no callback."""
    out = runner.call(WORKER, ["11", ""], answer="busy")
    assert "niet gelukt" in said(out, "medewerker") and out.callbacks == []
    assert out.transfer_outcomes == ["busy"]


def test_refuses_real_credentials():
    """The sandbox never runs with real Twilio credentials configured."""
    with pytest.raises(RealCredentials):
        refuse_real_credentials({"TWILIO_ACCOUNT_SID": "AC" + "1" * 32})
    refuse_real_credentials({})  # no credentials: fine
    refuse_real_credentials(
        {
            "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
            "TWILIO_API_BASE_URL": "http://127.0.0.1:9/sandbox/api",
        }
    )


def _cli(environ, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO", "CALLROUTER"))}
    env.update({k: v for k, v in environ.items() if not k.startswith("TWILIO")})
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "sandbox", "call", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_prints_transcript_and_exit_code(environ):
    """`flask sandbox call` prints a readable transcript; a wrong outcome exits non-zero."""
    ok = _cli(environ, "--from", WORKER, "--press", "3", "1", "--answer", "accept")
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "[medewerker] Welkom" in ok.stdout and "-- outcome: connected" in ok.stdout
    bad = _cli(
        environ,
        "--from",
        WORKER,
        "--press",
        "3",
        "1",
        "--answer",
        "no-answer",
        "--expect",
        "connected",
    )
    assert bad.returncode == 1 and "expected outcome connected" in bad.stderr
    shuffled = _cli(
        environ,
        "--from",
        WORKER,
        "--press",
        "3",
        "1",
        "--answer",
        "accept",
        "--shuffle-callbacks",
        "--seed",
        "7",
    )
    assert shuffled.returncode == 0, shuffled.stderr[-2000:]
    assert "-- outcome: connected" in shuffled.stdout
    assert "callbacks shuffled with seed 7" in shuffled.stdout


def test_shuffled_callbacks_replay_with_their_seed():
    """The same seed delivers the same callbacks in the same order; another seed differs."""
    from callrouter.sandbox.provider import Sandbox

    def order(seed):
        seen = []

        def fetch(method, url, params):
            seen.append((url, params.get("CallStatus")))
            return 200, "<Response/>"

        box = Sandbox(fetch, "AC" + "0" * 32, shuffle=seed, duplicates=0.3)
        for n in range(4):
            box.create_call(
                {
                    "To": f"+3188300100{n}",
                    "From": "+31880100200",
                    "Url": "https://svc/whisper",
                    "StatusCallback": f"https://svc/s{n}",
                    "StatusCallbackEvent": "initiated ringing answered completed",
                }
            )
        box.run()
        return seen

    first = order(3)
    assert first == order(3)
    assert first != order(4)
    in_order = order(None)
    assert sorted(set(first)) == sorted(set(in_order)) and first != in_order


def test_dial_number_with_whisper_url_bridges_after_the_whisper():
    """<Dial><Number url> rings the number, plays its whisper to the callee, then bridges;
    the caller's Dial action follows when the callee hangs up."""
    from callrouter.sandbox.provider import Sandbox

    docs = {
        "https://svc/in": '<Response><Dial action="https://svc/after"><Number '
        'url="https://svc/whisper">+31883001001</Number></Dial></Response>',
        "https://svc/whisper": "<Response><Say>Fluister</Say></Response>",
        "https://svc/after": "<Response><Say>Einde</Say><Hangup/></Response>",
    }
    seen = []

    def fetch(method, url, params):
        seen.append(url)
        return 200, docs[url]

    box = Sandbox(fetch, "AC" + "0" * 32)
    sid = box.dial_in("+31302860123", "+31880100100", "https://svc/in")
    box.run()
    child = next(c for c in box.calls.values() if c.to == "+31883001001")
    assert ("lijn +31883001001", "Fluister") in box.transcript
    assert child.conference is not None and box.calls[sid].conference == child.conference
    box.hang_up(child.sid)
    box.run()
    assert seen[-1] == "https://svc/after" and ("medewerker", "Einde") in box.transcript
    assert box.calls[sid].ended
