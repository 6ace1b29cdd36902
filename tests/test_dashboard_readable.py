"""What a supervisor reads on a call's and a case's page: the people in the call with their
real part and time, the call's duration, a timeline in Dutch with the raw provider events
folded away, and steps that say how they ended."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from callrouter.models import Call, Case, CaseStep, Event, Leg, Transfer

from dashboard_helpers import add_call, login, make_user

AT = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def _admin(app):
    make_user(app, "beheer@example.nl", role="admin")
    client = app.test_client()
    login(client, "beheer@example.nl")
    return client


def _handover_call(app) -> dict:
    """A connected call whose worker added the citizen, who talked four minutes; the
    provider gave no duration; raw conference events were received."""
    ids = add_call(app, at=AT)
    svc = app.extensions["callrouter"]
    with svc.sessions.begin() as s:
        s.get(Call, ids["call"]).duration_s = None
        s.add(
            Leg(
                id=uuid.uuid4().hex,
                transfer_id=ids["transfer"],
                kind="citizen",
                position=0,
                call_sid="CA" + uuid.uuid4().hex,
                number_hmac="x",
                number_masked="+31 6 ****5678",
                status="completed",
                outcome="declined",  # what the transfer model leaves on a citizen's leg
                created_at=AT + timedelta(seconds=30),
                answered_at=AT + timedelta(seconds=40),
                left_at=AT + timedelta(seconds=280),
                ended_at=AT + timedelta(seconds=281),
            )
        )
        s.add(
            Event(
                source="conference",
                sid="CF" + "0" * 32,
                event="participant-join:CA" + "1" * 32,
                sequence=1,
                call_id=ids["call"],
                transfer_id=ids["transfer"],
                received_at=AT + timedelta(seconds=41),
            )
        )
    return ids


def test_call_page_shows_the_people_their_part_and_time(app):
    """The citizen in the call for four minutes is "in het gesprek" for 4 min 00 s, never
    "geweigerd"; the call lasted 5 min 00 s (from its end: the provider gave no duration)."""
    ids = _handover_call(app)
    html = _admin(app).get(f"/dashboard/calls/{ids['call']}").get_data(as_text=True)
    people = html[html.index('id="people"') : html.index("</table>", html.index('id="people"'))]
    rows = re.findall(r"<tr class=\"utrecht-table__row\">(.*?)</tr>", people, re.S)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", r, re.S) for r in rows]
    citizen = next(c for c in cells if c and c[0].strip() == "inwoner")
    assert citizen[2].strip() == "in het gesprek" and citizen[3].strip() == "4 min 00 s"
    assert "geweigerd" not in people
    assert "<dt>Duur</dt><dd>5 min 00 s</dd>" in html


def test_raw_provider_events_are_folded_out_of_the_timeline(app):
    """The timeline speaks Dutch sentences; the provider's events sit in a closed <details>."""
    ids = _handover_call(app)
    html = _admin(app).get(f"/dashboard/calls/{ids['call']}").get_data(as_text=True)
    timeline = html[html.index('id="timeline"') : html.index("</ol>", html.index('id="timeline"'))]
    assert "participant" not in timeline and "melding" not in timeline and "CA1111" not in timeline
    raw = html[html.index('id="raw-events"') :]
    assert raw.startswith('id="raw-events">') and "<summary>Meldingen van de telefonie" in raw
    assert "conferentie" in raw  # there, for whoever needs them


def test_a_step_reads_as_its_transfer_ended(app):
    """A step left "connected" after its transfer ended shows how it ended, on the case page
    and in the list of cases."""
    ids = add_call(app, at=AT)
    svc = app.extensions["callrouter"]
    case_id = uuid.uuid4().hex
    with svc.sessions.begin() as s:
        s.add(
            Case(
                id=case_id,
                reference="1234566",
                caller_org="utrecht",
                call_id=ids["call"],
                state="open",
                opened_at=AT,
                updated_at=AT,
            )
        )
        s.add(
            CaseStep(
                id=uuid.uuid4().hex,
                case_id=case_id,
                position=0,
                line_id="svb-aow",
                target_org="svb",
                state="connected",
                transfer_id=ids["transfer"],
                updated_at=AT,
            )
        )
        tr = s.get(Transfer, ids["transfer"])
        tr.case_id = case_id
        assert tr.state == "ended" and tr.accepted_at is not None
    client = _admin(app)
    page = client.get(f"/dashboard/cases/{case_id}").get_data(as_text=True)
    steps = page[page.index('id="steps"') : page.index("</table>", page.index('id="steps"'))]
    assert "afgerond" in steps and "in gesprek" not in steps
    listing = client.get("/dashboard/cases?since=2026-11-01&until=2026-11-30").get_data(
        as_text=True
    )
    assert "SVB (afgerond)" in listing
