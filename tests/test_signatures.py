"""Every voice webhook checks X-Twilio-Signature against PUBLIC_BASE_URL, and fails closed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from callrouter import signatures
from callrouter.models import Call, Event

from conftest import PUBLIC, TOKEN, WORKER

PARAMS = {
    "CallSid": "CAsig0001",
    "From": WORKER,
    "To": "+31880100100",
    "Digits": "31",
    "CallStatus": "ringing",
}


def voice_routes(app):
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("voice."):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                out.append((rule.rule, method))
    return out


def _count(app, model):
    with app.extensions["callrouter"].sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def _send(client, path, method, signature=None, data=None, headers=None):
    h = dict(headers or {})
    if signature is not None:
        h["X-Twilio-Signature"] = signature
    if method == "GET":
        return client.get(path, headers=h)
    return client.post(path, data=data or PARAMS, headers=h)


def test_every_voice_route_is_enumerated(app):
    """The route list covers the entry points and all steps (guards against a missed route)."""
    paths = {p for p, _ in voice_routes(app)}
    assert {"/voice/incoming", "/voice/fallback", "/voice/whisper", "/voice/status/leg"} <= paths
    assert len(paths) >= 20


def test_unsigned_and_tampered_requests_rejected_everywhere(app):
    """Each voice route answers 403 to no signature, a wrong one, and tampered params."""
    client = app.test_client()
    for path, method in voice_routes(app):
        url = PUBLIC + path + "?tr=" + "a" * 32
        good = signatures.sign(TOKEN, url, PARAMS if method == "POST" else None)
        target = path + "?tr=" + "a" * 32
        assert _send(client, target, method).status_code == 403, path
        assert _send(client, target, method, "AAAA" + good[4:]).status_code == 403, path
        tampered_url = path + "?tr=" + "b" * 32
        assert _send(client, tampered_url, method, good).status_code == 403, path
        if method == "POST":
            bad = dict(PARAMS, Digits="99")
            assert _send(client, target, method, good, data=bad).status_code == 403, path
    assert _count(app, Call) == 0 and _count(app, Event) == 0


def test_signature_uses_public_base_url_not_host(app):
    """A signature made for the Host header the request claims is not accepted."""
    client = app.test_client()
    forged = signatures.sign(TOKEN, "http://localhost/voice/incoming", PARAMS)
    assert _send(client, "/voice/incoming", "POST", forged).status_code == 403
    right = signatures.sign(TOKEN, PUBLIC + "/voice/incoming", PARAMS)
    resp = _send(
        client,
        "/voice/incoming",
        "POST",
        right,
        headers={"Host": "evil.example", "X-Forwarded-Proto": "http"},
    )
    assert resp.status_code == 200


def test_secondary_token_accepted_during_rotation(phone):
    """A request signed with the secondary auth token passes (token rotation)."""
    from conftest import TOKEN_2

    resp = phone.raw_post("/voice/incoming", token=TOKEN_2, **PARAMS)
    assert resp.status_code == 200
    resp = phone.raw_post("/voice/incoming", token="some-other-token", **PARAMS)
    assert resp.status_code == 403


def test_validator_raising_fails_closed(app, monkeypatch):
    """If the validator itself raises, the request is refused with 403, never a 500."""

    def boom(*_a, **_k):
        raise RuntimeError("validator exploded")

    sig = signatures.sign(TOKEN, PUBLIC + "/voice/incoming", PARAMS)
    monkeypatch.setattr(signatures.RequestValidator, "validate", boom)
    monkeypatch.setattr(signatures, "expected_signature", boom)
    client = app.test_client()
    assert _send(client, "/voice/incoming", "POST", sig).status_code == 403
    assert _count(app, Call) == 0


# twilio-python's own validator test vectors (tests/unit/test_request_validator.py, 9.11.0).
GOLDEN_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}
GOLDEN = [
    ("https://mycompany.com", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
    ("https://mycompany.com:1234", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
    ("http://mycompany.com:1234", "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="),
    ("https://mycompany.com", "kvajT1Ptam85bY51eRf/AJRuM3w="),
    ("http://mycompany.com", "0ZXoZLH/DfblKGATFgpif+LLRf4="),
]
GOLDEN_DUP = [
    ("Sid", "CA123"),
    ("SidAccount", "AC123"),
    ("Digits", "5678"),
    ("Digits", "1234"),
    ("Digits", "1234"),
]


@pytest.fixture
def golden_app(environ):
    """The app with the vectors' token and host, and the vectors' path mounted on a real
    voice handler (its endpoint is in the voice blueprint, so the same check runs)."""
    from callrouter import create_app
    from callrouter.voice import status

    def make(base):
        env = dict(environ, TWILIO_AUTH_TOKEN="12345", PUBLIC_BASE_URL=base)
        env.pop("TWILIO_AUTH_TOKEN_SECONDARY")
        app = create_app(environ=env)
        app.add_url_rule(
            "/myapp.php", endpoint="voice.golden", view_func=status.status_call, methods=["POST"]
        )
        return app

    return make


@pytest.mark.parametrize("base,expected", GOLDEN)
def test_twilio_golden_vectors_pass_through_a_route(golden_app, base, expected):
    """twilio-python's golden signatures are accepted by a real voice handler."""
    client = golden_app(base).test_client()
    resp = client.post(
        "/myapp.php?foo=1&bar=2", data=GOLDEN_PARAMS, headers={"X-Twilio-Signature": expected}
    )
    assert resp.status_code == 200 and b"<Response" in resp.data
    resp = client.post(
        "/myapp.php?foo=1&bar=3", data=GOLDEN_PARAMS, headers={"X-Twilio-Signature": expected}
    )
    assert resp.status_code == 403


def test_twilio_golden_vector_repeated_params(golden_app):
    """Repeated parameters (sorted, de-duplicated) validate as twilio-python's vector says."""
    client = golden_app("https://mycompany.com").test_client()
    resp = client.post(
        "/myapp.php?foo=1&bar=2",
        data=MultiDict(GOLDEN_DUP),
        headers={"X-Twilio-Signature": "IK+Dwps556ElfBT0I3Rgjkr1wJU="},
    )
    assert resp.status_code == 200


@settings(max_examples=300, deadline=None)
@given(
    url=st.text(max_size=40),
    items=st.lists(st.tuples(st.text(max_size=8), st.text(max_size=12)), max_size=10),
    token=st.text(min_size=1, max_size=32),
    algorithm=st.sampled_from(["HMAC_SHA1", "HMAC_SHA256", "hmac_sha256"]),
)
def test_the_one_pass_signature_is_the_sdks(url, items, token, algorithm):
    """`expected_signature` gives what twilio-python's compute_signature gives, for any form
    (repeated names and values included) and both algorithms."""
    form = MultiDict(items)
    sdk = signatures.RequestValidator(token).compute_signature(url, form, algorithm)
    assert signatures.expected_signature(token, url, form, algorithm) == sdk
    plain = dict(items)
    assert signatures.expected_signature(token, url, plain, algorithm) == (
        signatures.RequestValidator(token).compute_signature(url, plain, algorithm)
    )


def test_an_unknown_algorithm_is_refused_like_the_sdk():
    with pytest.raises(ValueError):
        signatures.expected_signature("t", "https://x", {}, "HMAC_MD5")
    with pytest.raises(ValueError):
        signatures.RequestValidator("t").compute_signature("https://x", {}, "HMAC_MD5")
