"""The service's request class reads URL-encoded forms in one step: the same form as
Werkzeug's parser for any body, the same limits, and Werkzeug's own parser for the rest."""

from __future__ import annotations

import io
from urllib.parse import quote, urlencode

import flask
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge

from callrouter.request import Request

LIMIT = 4096
app = flask.Flask(__name__)
app.config["MAX_CONTENT_LENGTH"] = LIMIT


def environ(body: bytes, ctype="application/x-www-form-urlencoded", length: str | None = None):
    env = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/voice/incoming",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "CONTENT_TYPE": ctype,
        "CONTENT_LENGTH": str(len(body)) if length is None else length,
    }
    if not env["CONTENT_LENGTH"]:
        del env["CONTENT_LENGTH"]
    return env


def both(body: bytes, **kw):
    """(ours, Werkzeug's): each the form's lists, or the exception's type."""
    out = []
    with app.app_context():
        for cls in (Request, flask.Request):
            try:
                req = cls(environ(body, **kw))
                out.append((list(req.form.lists()), list(req.files.lists())))
            except Exception as exc:  # compared, not swallowed
                out.append(type(exc))
    return out


pairs = st.lists(st.tuples(st.text(max_size=12), st.text(max_size=24)), max_size=8).map(
    lambda ps: urlencode(ps).encode()
)
raw = st.binary(max_size=200)
escapes = st.lists(
    st.sampled_from(["a", "=", "&", "+", "%", "%2", "%2B", "%zz", "%C3%A9", "%FF", ";", " "]),
    max_size=30,
).map(lambda parts: "".join(parts).encode())


@settings(max_examples=300, deadline=None)
@given(st.one_of(pairs, raw, escapes))
def test_the_same_form_as_werkzeug_for_any_body(body):
    ours, theirs = both(body)
    assert ours == theirs


@pytest.mark.parametrize(
    "ctype",
    [
        "application/x-www-form-urlencoded; charset=utf-8",
        "Application/X-WWW-Form-Urlencoded",
        "multipart/form-data; boundary=x",
        "text/plain",
        "",
    ],
)
def test_the_same_form_for_other_content_types(ctype):
    body = ("CallSid=CA1&From=%2B31612345678&Digits=" + quote("1#")).encode()
    ours, theirs = both(body, ctype=ctype)
    assert ours == theirs


def test_a_twilio_webhook_body_is_read():
    body = b"CallSid=CA123&From=%2B31302860001&SpeechResult=toeslagen+huur&Digits="
    ours, _ = both(body)
    assert ours[0] == [
        ("CallSid", ["CA123"]),
        ("From", ["+31302860001"]),
        ("SpeechResult", ["toeslagen huur"]),
        ("Digits", [""]),
    ]


def test_a_body_over_the_limit_is_refused_before_it_is_read():
    stream = io.BytesIO(b"a=" + b"x" * LIMIT)
    env = environ(b"", length=str(LIMIT + 2))
    env["wsgi.input"] = stream
    with app.app_context(), pytest.raises(RequestEntityTooLarge):
        Request(env).form  # noqa: B018
    assert stream.tell() == 0


def test_a_body_shorter_than_its_length_is_a_disconnected_client():
    with app.app_context(), pytest.raises(ClientDisconnected):
        Request(environ(b"a=1", length="40")).form  # noqa: B018


def test_without_a_length_werkzeug_decides():
    """No Content-Length (and no server that ends the stream): Werkzeug reads nothing."""
    ours, theirs = both(b"a=1", length="")
    assert ours == theirs == ([], [])


def test_the_app_uses_it(app):
    assert app.request_class is Request
