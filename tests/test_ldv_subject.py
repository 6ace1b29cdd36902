"""The subject's own view and erasure (AVG art. 15 and 17), and the retention of LDV records."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import String, insert, select, text

from callrouter.ldv import store as ldv_store
from callrouter.ldv import subject as subjects
from callrouter.ldv.records import record
from callrouter.models import Base, Call, CallbackRequest, Case, Consent, LdvRecord

from dashboard_helpers import csrf_of, login, make_user

NOW = datetime(2026, 11, 25, 19, 0, tzinfo=UTC)
ALICE = "+31302860111"  # a worker's desk phone
BOB = "+31302860222"


@pytest.fixture
def svc(app):
    return app.extensions["callrouter"]


def _call(svc, number: str | None, at: datetime, ended: bool = True, **extra) -> dict:
    return dict(
        id=uuid.uuid4().hex,
        call_sid="CA" + uuid.uuid4().hex,
        received_at=at,
        ended_at=at + timedelta(minutes=3) if ended else None,
        from_hmac=svc.pseudonyms.pseudonym(number) if number else None,
        from_masked=f"+31 3 ****{number[-4:]}" if number else None,
        status="completed" if ended else "in-progress",
        caller_org="utrecht",
        identified_by="number",
        urgent=False,
        consent=False,
        **extra,
    )


def _population(svc) -> dict:
    """10,000 calls of other numbers, Alice's and Bob's among them, with their case, callback
    request, consent and LDV records."""
    register = svc.directory.register
    rows = [_call(svc, f"+3120555{i:04d}", NOW - timedelta(minutes=i)) for i in range(9990)]
    alice = [_call(svc, ALICE, NOW - timedelta(days=d)) for d in (1, 2, 3)]
    alice.append(_call(svc, ALICE, NOW, ended=False))  # a call in progress
    bob = [_call(svc, BOB, NOW - timedelta(days=d)) for d in (1, 4)]
    p_alice, p_bob = svc.pseudonyms.pseudonym(ALICE), svc.pseudonyms.pseudonym(BOB)
    case_id, open_case = uuid.uuid4().hex, uuid.uuid4().hex
    with svc.engine.begin() as conn:
        conn.execute(insert(Call), rows + alice + bob)
        for cid, state in ((case_id, "closed"), (open_case, "open")):
            conn.execute(
                insert(Case),
                dict(
                    id=cid,
                    reference=str(1000000 + len(state)),
                    caller_org="utrecht",
                    call_id=alice[0]["id"],
                    worker_hmac=p_alice,
                    worker_masked="+31 3 ****0111",
                    worker_number_enc=svc.pseudonyms.encrypt(ALICE),
                    state=state,
                    opened_at=NOW - timedelta(days=1),
                    updated_at=NOW,
                ),
            )
        conn.execute(
            insert(Consent),
            dict(
                id=uuid.uuid4().hex,
                case_id=case_id,
                target_org="svb",
                choice="case",
                recorded_at=NOW - timedelta(days=1),
                recorded_by_org="utrecht",
                recorded_by_hmac=p_alice,
            ),
        )
        for state in ("done", "pending"):
            conn.execute(
                insert(CallbackRequest),
                dict(
                    id=uuid.uuid4().hex,
                    reference=f"T{state[:3].upper()}",
                    call_id=alice[1]["id"],
                    target_org="svb",
                    line_id="svb-aow" if state == "done" else "svb-kinderbijslag",
                    caller_org="utrecht",
                    reason="closed",
                    worker_number_enc=svc.pseudonyms.encrypt(ALICE),
                    worker_hmac=p_alice,
                    worker_masked="+31 3 ****0111",
                    state=state,
                    requested_at=NOW - timedelta(days=2),
                    updated_at=NOW,
                ),
            )
        records = [
            record(
                register,
                "call-received",
                trace_id=c["id"],
                at=c["received_at"],
                subject=c["from_hmac"],
            )
            for c in alice + bob + rows[:200]
        ]
        ldv_store.write(conn, records)
    return {"alice": alice, "bob": bob, "p_alice": p_alice, "p_bob": p_bob, "case": case_id}


def test_subject_view_finds_exactly_one_numbers_rows_among_10000_calls(app, svc):
    """Every row that holds Alice's number, through her pseudonym; none of Bob's."""
    pop = _population(svc)
    with svc.sessions() as s:
        held = subjects.find(s, pop["p_alice"], svc.directory, svc.settings.retention_days, NOW)
    by_kind: dict[str, set[str]] = {}
    for h in held:
        by_kind.setdefault(h.kind, set()).add(h.id)
    assert by_kind["call"] == {c["id"] for c in pop["alice"]}
    assert len(by_kind["ldv"]) == 4 and len(by_kind["callback"]) == 2
    assert len(by_kind["case"]) == 2 and len(by_kind["consent"]) == 1
    with svc.sessions() as s:
        bob = subjects.find(s, pop["p_bob"], svc.directory, svc.settings.retention_days, NOW)
        bob_ldv = {
            str(r.id)
            for r in s.scalars(select(LdvRecord).where(LdvRecord.data_subject_id == pop["p_bob"]))
        }
    assert {h.id for h in bob if h.kind == "call"} == {c["id"] for c in pop["bob"]}
    assert not ({h.id for h in held} & {h.id for h in bob}) and len(bob_ldv) == 2
    # The period each is kept: the call log's retention (90 days by default), the register's.
    call = next(h for h in held if h.kind == "call")
    assert call.kept_until == call.at + timedelta(days=svc.settings.retention_days)
    ldv_row = next(h for h in held if h.kind == "ldv")
    assert ldv_row.kept_until == ldv_row.at + timedelta(
        days=svc.directory.register.for_kind("call-received").retention_days
    )


def _columns_holding(svc, values: list[str]) -> list[tuple[str, str]]:
    """(table, column) of every text value in the database equal to one of `values`."""
    found = []
    with svc.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for col in table.columns:
                if not isinstance(col.type, String):
                    continue
                hit = conn.execute(select(col).where(col.in_(values)).limit(1)).first()
                if hit is not None:
                    found.append((table.name, col.name))
    return found


def test_erasure_leaves_only_what_open_processes_and_the_register_need(app, svc, clock):
    """`flask privacy subject --erase`: Alice's number stays only in the call in progress,
    the open callback request and case, and the LDV records; Bob's rows are untouched."""
    pop = _population(svc)
    out = app.test_cli_runner().invoke(
        args=["privacy", "subject", "--number", "030 286 0111", "--erase"]
    )
    assert out.exit_code == 0, out.output
    assert "erased: 3 call, 1 callback, 1 case, 1 consent; kept: 7" in out.output
    assert ALICE not in out.output and "0111" not in out.output
    left = _columns_holding(svc, [pop["p_alice"], "+31 3 ****0111"])
    assert sorted(left) == [
        ("callback_requests", "worker_hmac"),
        ("callback_requests", "worker_masked"),
        ("calls", "from_hmac"),
        ("calls", "from_masked"),
        ("cases", "worker_hmac"),
        ("cases", "worker_masked"),
        ("ldv_records", "data_subject_id"),
    ]
    with svc.sessions() as s:
        calls = s.scalars(select(Call).where(Call.from_hmac == pop["p_alice"])).all()
        assert [c.ended_at for c in calls] == [None]  # only the call in progress
        assert (
            s.scalar(
                select(CallbackRequest.state).where(CallbackRequest.worker_hmac == pop["p_alice"])
            )
            == "pending"
        )
        assert s.scalar(select(Case.state).where(Case.worker_hmac == pop["p_alice"])) == "open"
        bob = s.scalars(select(Call).where(Call.from_hmac == pop["p_bob"])).all()
        assert len(bob) == 2 and all(c.from_masked for c in bob)
        names = [
            r.name
            for r in s.scalars(
                select(LdvRecord)
                .where(LdvRecord.data_subject_id == pop["p_alice"])
                .order_by(LdvRecord.id)
            )
        ]
    assert names[-2:] == ["subject-viewed", "subject-erased"]
    # Asked again: nothing more to erase.
    again = app.test_cli_runner().invoke(args=["privacy", "subject", "--number", ALICE, "--erase"])
    assert "erased: nothing" in again.output


def test_a_call_that_lost_its_final_status_is_erasable(app, svc):
    """A call without an end after half a day lost its status callback: not in progress."""
    lost = _call(svc, ALICE, NOW - timedelta(days=2), ended=False)
    with svc.engine.begin() as conn:
        conn.execute(insert(Call), [lost, _call(svc, ALICE, NOW, ended=False)])
    with svc.sessions() as s:
        held = subjects.find(s, lost["from_hmac"], svc.directory, 90, NOW)
    assert [(h.id == lost["id"], h.erasable) for h in held] == [(True, True), (False, False)]


def test_cli_refuses_what_is_not_a_number(app):
    """A typo gives a clear error, not an empty view."""
    out = app.test_cli_runner().invoke(args=["privacy", "subject", "--number", "12ab"])
    assert out.exit_code == 1 and "not a phone number" in out.output


def test_subject_page_is_for_admins_and_keeps_the_number_out_of_urls(app, svc, clock):
    """Admins search by POST and see the rows; a supervisor gets 403; the number is never
    in a URL or a link of the page."""
    pop = _population(svc)
    make_user(app, "admin@example.nl", role="admin")
    make_user(app, "sup@utrecht.nl", org="utrecht")
    sup = app.test_client()
    login(sup, "sup@utrecht.nl")
    assert sup.get("/dashboard/privacy/subject").status_code == 403
    admin = app.test_client()
    login(admin, "admin@example.nl")
    page = admin.get("/dashboard/privacy/subject")
    assert page.status_code == 200
    res = admin.post(
        "/dashboard/privacy/subject",
        data={"number": ALICE, "csrf_token": csrf_of(page.get_data(as_text=True))},
    )
    html = res.get_data(as_text=True)
    assert res.status_code == 200 and "13 gegevens over dit nummer" in html
    assert html.count("wordt verwijderd") == 6 and html.count("blijft: ") == 7
    assert "Verwijder wat verwijderd mag worden" in html
    bad = admin.post(
        "/dashboard/privacy/subject",
        data={"number": "abc", "csrf_token": csrf_of(html)},
    )
    assert bad.status_code == 400 and "geen telefoonnummer" in bad.get_data(as_text=True)
    erased = admin.post(
        "/dashboard/privacy/subject",
        data={"number": ALICE, "erase": "1", "csrf_token": csrf_of(html)},
    )
    assert "Verwijderd: " in erased.get_data(as_text=True)
    with svc.sessions() as s:
        assert (
            s.scalar(
                select(text("count(*)")).select_from(Call).where(Call.from_hmac == pop["p_alice"])
            )
            == 1
        )


# --------------------------------------------------------------------------- retention


def test_retention_deletes_records_past_their_activity_period_and_records_the_purge(app, svc):
    """A record past its activity's period goes; a younger one stays; the purge is recorded.
    While an export is configured, a record the collector has not acknowledged stays."""
    register = svc.directory.register
    days = register.for_kind("call-received").retention_days
    old, young, unsent = (uuid.uuid4().hex for _ in range(3))
    rows = [
        record(register, "call-received", trace_id=t, at=NOW - timedelta(days=d))
        for t, d in ((old, days + 1), (young, days - 1), (unsent, days + 2))
    ]
    with svc.engine.begin() as conn:
        ldv_store.write(conn, rows)
        conn.execute(
            LdvRecord.__table__.update()
            .where(LdvRecord.trace_id.in_([old, young]))
            .values(exported_at=NOW)
        )
    assert ldv_store.purge(svc.engine, register, NOW, keep_unsent=True) == 1
    from callrouter import retention

    with app.app_context():
        counts = retention.purge(NOW)
    assert counts["ldv_records"] == 1  # the unsent one: no export is configured here
    with svc.sessions() as s:
        left = s.scalars(select(LdvRecord.trace_id)).all()
        purges = s.scalars(select(LdvRecord).where(LdvRecord.name == "retention-purge")).all()
    assert young in left and old not in left and unsent not in left
    assert [(r.attributes, r.data_subject_id) for r in purges] == [
        ({"callrouter.purged.table": "ldv_records", "callrouter.purged.rows": 1}, None)
    ]
