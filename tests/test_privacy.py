"""No phone number in clear in the call log tables or the application log."""

from __future__ import annotations

import logging

from sqlalchemy import inspect, text

from conftest import ALL_NUMBERS, UNKNOWN
from test_voice_intake import _enter
from test_voice_transfer import _connected, action_of, start_transfer


def _forms(number: str) -> list[str]:
    national = "0" + number[3:]
    return [number, number[1:], national, number[3:]]


def test_no_number_in_database_or_log(phone, app, caplog):
    """After whole calls (transfer, hunt, citizen added, callback, PIN intake), scan it all."""
    caplog.set_level(logging.DEBUG)
    tr, _ = _connected(phone, app, "CApriv1")
    root = phone.post(
        f"/voice/conference/done?tr={tr.id}", CallSid="CApriv1", CallStatus="in-progress"
    )
    root = phone.post(action_of(root), CallSid="CApriv1", Digits="1")
    phone.post(action_of(root), CallSid="CApriv1", Digits="0612345678#")
    start_transfer(phone, "31", "9", sid="CApriv2")
    phone.drain()
    for leg in phone.twilio.created[1:]:
        phone.post(
            leg["StatusCallback"],
            CallSid=leg["Sid"],
            CallStatus="busy",
            From=leg["To"],
            To=leg["To"],
            Called=leg["To"],
        )
        phone.drain()
    root = phone.post("/voice/unanswered?tr=" + "0" * 32, CallSid="CApriv2")
    _enter(phone, "CApriv3", "0344", "9999")
    _enter(phone, "CApriv4", "0344", "2222", from_=UNKNOWN)

    svc = app.extensions["callrouter"]
    dump = []
    with svc.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f"SELECT * FROM {table}")):
                dump.append(" ".join(str(v) for v in row))
    assert len(dump) > 10
    database = "\n".join(dump)
    log_text = "\n".join(r.getMessage() + str(r.args) for r in caplog.records)
    assert "rq.worker" in {r.name for r in caplog.records}  # the jobs' log is included
    for number in ALL_NUMBERS:
        for form in _forms(number):
            assert form not in database, f"{form} in the database"
            assert form not in log_text, f"{form} in the log"


def test_dutch_fast_mask_equals_the_general_one():
    """The shortcut for Dutch E.164 numbers masks exactly as phonenumbers' parse does."""
    import random

    import phonenumbers

    from callrouter import privacy

    rng = random.Random(7)
    numbers = [f"+31{rng.choice('123456789')}{rng.randrange(10**8):08d}" for _ in range(2000)]
    for number in numbers + ["+31612345678", "+31880100100", "+31900123456"]:
        parsed = phonenumbers.parse(number, "NL")
        national = str(parsed.national_number)
        general = f"+{parsed.country_code} {national[0]} ****{national[-4:]}"
        assert privacy.mask(number) == general, number
