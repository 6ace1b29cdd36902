"""Arbitrary signed webhooks: never a 5xx, always a TwiML <Response>."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callrouter.signatures import sign

from conftest import PUBLIC, TOKEN

FIELDS = [
    "CallSid",
    "From",
    "To",
    "Digits",
    "SpeechResult",
    "CallStatus",
    "SequenceNumber",
    "StatusCallbackEvent",
    "ConferenceSid",
    "CallDuration",
    "ErrorUrl",
    "Confidence",
]
PATHS = [
    "/voice/incoming",
    "/voice/fallback",
    "/voice/menu",
    "/voice/topic?org=svb",
    "/voice/topic?org=zzz",
    "/voice/transfer?line=svb-aow",
    "/voice/transfer?line=x",
    "/voice/intake/code?try=1",
    "/voice/intake/pin?try=2&code=0344",
    "/voice/whisper?tr={}&leg={}".format("a" * 32, "b" * 32),
    "/voice/whisper/answer?tr=zz",
    "/voice/conference/done?tr=" + "c" * 32,
    "/voice/handover?tr=",
    "/voice/citizen?tr=1",
    "/voice/unanswered?tr=" + "d" * 32,
    "/voice/callback?line=svb-aow&reason=closed",
    "/voice/status/call",
    "/voice/status/leg?tr=1&leg=2",
    "/voice/status/conference?tr=" + "e" * 32,
    "/voice/retry",
    "/voice/again",
    "/voice/menu?try=abc",
    "/voice/menu?try=99999999999999999999",
    f"/voice/callback/whisper?cb={'f' * 32}&att=1",
    f"/voice/callback/answer?cb={'f' * 32}&att=x&n=2",
    f"/voice/callback/status?cb={'f' * 32}&att=1",
    "/voice/callback/worker-status",
    "/voice/callback/conference?cb=1",
    "/voice/callback/worker-unreachable",
    "/voice/conversation-ended",
    "/voice/worker-left",
    f"/voice/citizen?tr={'c' * 32}",
    f"/voice/handover?tr={'c' * 32}",
    f"/voice/menu?try=0&cb={'f' * 32}",
    "/voice/event?try=0",
    "/voice/event?try=x",
    "/voice/wayback?org=svb&try=0",
    "/voice/wayback?org=nope",
    f"/voice/result?tr={'c' * 32}&then=chain",
    "/voice/result?tr=1&then=x",
    f"/voice/result/right?tr={'c' * 32}&then=bye",
    "/voice/transfer?line=svb-aow&pos=0",
    "/voice/transfer?line=svb-aow&pos=99999",
    "/voice/conversation-ended?tr=" + "c" * 32,
    "/voice/callback?line=svb-aow&reason=closed&pos=1",
]

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
values = st.one_of(
    text,
    st.sampled_from(
        [
            "",
            "CA123",
            "+31302860123",
            "completed",
            "1",
            "31",
            "#",
            "*",
            "-1",
            "participant-leave",
            "9" * 30,
        ]
    ),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from(PATHS),
    params=st.dictionaries(st.sampled_from(FIELDS + ["Junk", "x"]), values, max_size=8),
)
def test_signed_garbage_never_breaks_a_call(app, caplog, path, params):
    """Whatever a signed webhook carries, the answer is 200 with a TwiML <Response>, and no
    handler failed on the way (the error handler would hide that behind calm TwiML)."""
    caplog.clear()
    client = app.test_client()
    sig = sign(TOKEN, PUBLIC + path, params)
    resp = client.post(path, data=params, headers={"X-Twilio-Signature": sig})
    assert resp.status_code == 200, (path, params, resp.data[:200])
    root = ET.fromstring(resp.data)
    assert root.tag == "Response"
    failures = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert failures == [], (path, params, failures)
