"""Helpers of the dashboard tests: accounts, logging in through the real form, call log rows.

Rows are written with the models (as the voice handlers leave them), so that a test can build
a call log of any shape quickly; `test_dashboard.py` also checks a call made through the real
webhooks.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from callrouter.dashboard import auth
from callrouter.models import Call, CallbackRequest, Leg, Transfer
from callrouter.privacy import mask

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_user(
    app, email: str, role: str = "supervisor", org: str | None = None, password: str = PASSWORD
) -> None:
    svc = app.extensions["callrouter"]
    with svc.sessions.begin() as s:
        auth.create_user(s, svc.directory, email, password, role, org)


def make_token(app, name: str, org: str | None = None) -> str:
    svc = app.extensions["callrouter"]
    with svc.sessions.begin() as s:
        return auth.create_token(s, svc.directory, name, org)


def csrf_of(html: str) -> str:
    m = _CSRF.search(html)
    assert m, "no CSRF token in the page"
    return m.group(1)


def login(client, email: str, password: str = PASSWORD):
    page = client.get("/dashboard/login")
    return client.post(
        "/dashboard/login",
        data={
            "email": email,
            "password": password,
            "csrf_token": csrf_of(page.get_data(as_text=True)),
        },
    )


def add_call(
    app,
    *,
    caller: str | None = "utrecht",
    target: str | None = "svb",
    line: str | None = "svb-aow",
    outcome: str | None = "connected",
    at: datetime | None = None,
    urgent: bool = False,
    consent: bool = False,
    number: str = "+31302860123",
    tta: float | None = 12.0,
    minutes_saved: float | None = 20.0,
    transfer: bool = True,
    professional: str = "+31883001001",
    callback_state: str | None = None,
    active: bool = False,
) -> dict:
    """One inbound call with (optionally) a transfer, a professional leg and a callback."""
    svc = app.extensions["callrouter"]
    at = at or datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    ids = {"call": uuid.uuid4().hex}
    with svc.sessions.begin() as s:
        s.add(
            Call(
                id=ids["call"],
                call_sid="CA" + uuid.uuid4().hex,
                caller_org=caller,
                identified_by="number",
                from_hmac=svc.pseudonyms.pseudonym(number),
                from_masked=mask(number),
                received_at=at,
                menu_done_at=at + timedelta(seconds=8),
                target_org=target,
                line_id=line,
                selected_by="digits",
                urgent=urgent,
                consent=consent,
                outcome=outcome,
                status="in-progress" if active else "completed",
                ended_at=None if active else at + timedelta(minutes=5),
                duration_s=None if active else 300,
            )
        )
        if transfer and target and line:
            ids["transfer"] = uuid.uuid4().hex
            accepted = at + timedelta(seconds=10 + (tta or 0)) if tta is not None else None
            s.add(
                Transfer(
                    id=ids["transfer"],
                    call_id=ids["call"],
                    caller_org=caller,
                    target_org=target,
                    line_id=line,
                    urgent=urgent,
                    consent=consent,
                    state=("connected" if accepted else "dialling") if active else "ended",
                    outcome=None if active else outcome,
                    hunt_position=0,
                    created_at=at + timedelta(seconds=9),
                    ringing_at=at + timedelta(seconds=10),
                    accepted_at=accepted,
                    ended_at=None if active else at + timedelta(minutes=5),
                    time_to_answer_s=tta,
                    duration_s=None if active or accepted is None else 280.0,
                    minutes_saved=minutes_saved,
                )
            )
            s.flush()
            s.add(
                Leg(
                    id=uuid.uuid4().hex,
                    transfer_id=ids["transfer"],
                    kind="professional",
                    position=0,
                    call_sid="CA" + uuid.uuid4().hex,
                    number_hmac=svc.pseudonyms.pseudonym(professional),
                    number_masked=mask(professional),
                    status="in-progress" if active else "completed",
                    outcome="accepted" if accepted else "no-answer",
                    created_at=at + timedelta(seconds=9),
                    answered_at=accepted,
                    accepted_at=accepted,
                    ended_at=None if active else at + timedelta(minutes=5),
                )
            )
        if callback_state and target and line:
            ids["callback"] = uuid.uuid4().hex
            ids["reference"] = "R" + uuid.uuid4().hex[:5].upper()
            s.flush()
            s.add(
                CallbackRequest(
                    id=ids["callback"],
                    reference=ids["reference"],
                    call_id=ids["call"],
                    transfer_id=ids.get("transfer"),
                    caller_org=caller,
                    target_org=target,
                    line_id=line,
                    urgent=urgent,
                    consent=consent,
                    reason="closed",
                    worker_number_enc=svc.pseudonyms.encrypt(number),
                    worker_hmac=svc.pseudonyms.pseudonym(number),
                    worker_masked=mask(number),
                    state=callback_state,
                    requested_at=at + timedelta(seconds=30),
                    planned_at=at + timedelta(days=1),
                    attempts=0,
                    max_attempts=3,
                    updated_at=at + timedelta(seconds=30),
                )
            )
    return ids
