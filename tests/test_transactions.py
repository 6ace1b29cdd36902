"""Every voice handler opens at most one transaction, and every one that keeps state exactly
one: counted as connections taken from the pool while the handler runs (the work a response
defers until after it was sent, and the jobs, are not the handler's)."""

from __future__ import annotations

from collections import defaultdict

import pytest
from call_orders import Harness
from flask import request
from sqlalchemy import event
from test_call_orders import SHAPES, lines_file, play  # noqa: F401 - the chain's directory

# Handlers that read or write the call's state: each takes exactly one connection.
STATEFUL = {
    "/voice/incoming",
    "/voice/menu",
    "/voice/event",
    "/voice/transfer",
    "/voice/whisper",
    "/voice/whisper/answer",
    "/voice/status/call",
    "/voice/status/leg",
    "/voice/status/conference",
    "/voice/conference/done",
    "/voice/handover",
    "/voice/citizen",
    "/voice/result",
    "/voice/unanswered",
    "/voice/callback",
    "/voice/callback/whisper",
    "/voice/callback/answer",
    "/voice/callback/status",
    "/voice/callback/worker-status",
    "/voice/callback/conference",
}


# A leg's or conference's event first reads whether the service holds its transfer at all (one
# connection, no write transaction: the events of unknown transfers need none), then takes
# the one transaction.
READ_FIRST = {"/voice/status/leg", "/voice/status/conference"}


@pytest.fixture
def counted(app, clock, redis_client):
    svc = app.extensions["callrouter"]
    seen: dict[str, list[int]] = defaultdict(list)
    current: list[int] = []

    @app.before_request
    def begin():
        current[:] = [0]

    @app.teardown_request
    def end(_exc):
        if current:
            seen[request.path].append(current.pop())

    def checkout(*_args):
        if current:
            current[0] += 1

    event.listen(svc.engine, "checkout", checkout)
    h = Harness(app)
    yield h, seen
    h.close()
    event.remove(svc.engine, "checkout", checkout)


def test_one_transaction_per_voice_handler(counted, clock):
    h, seen = counted
    for shape in SHAPES:
        play(h, shape, None, clock)
    voice = {path: counts for path, counts in seen.items() if path.startswith("/voice/")}
    assert STATEFUL <= set(voice), sorted(STATEFUL - set(voice))
    allowed = {p: 2 if p in READ_FIRST else 1 for p in voice}
    too_many = {p: max(c) for p, c in voice.items() if max(c) > allowed[p]}
    assert too_many == {}
    none = {p: min(c) for p, c in voice.items() if p in STATEFUL and min(c) != allowed[p]}
    assert none == {}
