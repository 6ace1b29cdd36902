"""Cases on the dashboard and in the API: the case page, consent withdrawal, figures, and an
agency never seeing a case it was not part of."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from callrouter.models import Case, Consent

from conftest import action_of
from dashboard_helpers import csrf_of, login, make_token, make_user
from test_cases import (
    WORKER,
    accept,
    professional_hangs_up,
    rows,
    start_chain,
    write_cases_directory,
)


@pytest.fixture(scope="module")
def lines_file(tmp_path_factory, pin_hash):
    return write_cases_directory(tmp_path_factory, pin_hash)


class dashboard:
    """The phone's own test client, used for the dashboard as well: a second client inside the
    first one's preserved request context would share its `g` (and Flask-WTF's token)."""

    def __init__(self, phone):
        self.client = phone.client

    def __enter__(self):
        self.client.delete_cookie("callrouter_session")
        return self.client

    def __exit__(self, *exc):
        self.client.delete_cookie("callrouter_session")


def chain_with_svb_and_toeslagen(phone, app, sid="CAdc1"):
    """A chain: SVB accepted with consent 'case', Toeslagen accepted without, CAK skipped."""
    root = start_chain(phone, sid)
    phone.post(action_of(root), CallSid=sid, From=WORKER, Digits="1")
    phone.drain()
    accept(phone, "+31883001001")
    root = professional_hangs_up(phone, app, sid, "+31883001001")
    phone.post(action_of(root), CallSid=sid, From=WORKER, Digits="")
    phone.drain()
    accept(phone, "+31881001001")
    root = professional_hangs_up(phone, app, sid, "+31881001001")
    root = phone.post(action_of(root), CallSid=sid, From=WORKER, Digits="7")
    assert "laatste stap" in " ".join(el.text or "" for el in root.iter("Say"))
    (case,) = rows(app, Case)
    return case


def test_case_page_shows_steps_consents_and_timeline(phone, app):
    """The case page lists each step's state, the consents and a timeline across transfers."""
    case = chain_with_svb_and_toeslagen(phone, app)
    make_user(app, "sup@utrecht.nl", "supervisor", "utrecht")
    with dashboard(phone) as c:
        login(c, "sup@utrecht.nl")
        listing = c.get("/dashboard/cases").get_data(as_text=True)
        assert case.reference[:3] in listing and f"/dashboard/cases/{case.id}" in listing
        page = c.get(f"/dashboard/cases/{case.id}").get_data(as_text=True)
    assert "afgerond" in page and "overgeslagen" in page
    assert "de zaak mag besproken worden" in page and "alleen het onderwerp" in page
    assert (
        page.index("zaak geopend")
        < page.index("doorverbinden: SVB")
        < page.index("doorverbinden: Belastingdienst/Toeslagen")
    )
    assert "+31 3 ****0123" in page and WORKER not in page
    assert page.count("resultaat: opgelost") == 2  # the worker's verdict on both steps


def test_withdrawing_consent_on_the_dashboard_is_recorded_and_audited(phone, app):
    """Intrekken records who withdrew and when; the audit log has it too."""
    from callrouter.models import AuditEntry

    case = chain_with_svb_and_toeslagen(phone, app)
    svb = [c for c in rows(app, Consent) if c.target_org == "svb"][0]
    make_user(app, "sup@utrecht.nl", "supervisor", "utrecht")
    with dashboard(phone) as c:
        login(c, "sup@utrecht.nl")
        page = c.get(f"/dashboard/cases/{case.id}").get_data(as_text=True)
        resp = c.post(
            f"/dashboard/cases/{case.id}/consents/{svb.id}/withdraw",
            data={"csrf_token": csrf_of(page)},
            follow_redirects=True,
        )
        assert "ingetrokken" in resp.get_data(as_text=True)
    (after,) = [c for c in rows(app, Consent) if c.id == svb.id]
    assert after.withdrawn_at is not None and after.withdrawn_by == "user:sup@utrecht.nl"
    audit = [a for a in rows(app, AuditEntry) if a.action == "withdraw-consent"]
    assert audit and audit[0].result == "success"


def test_agency_never_sees_a_case_it_was_not_part_of(phone, app):
    """The IND, not in the chain, gets no row and a 404 for the case, its consent, its call,
    in the call log, export and API; the SVB, a step of the chain, sees all of it."""
    case = chain_with_svb_and_toeslagen(phone, app)
    svb_consent = [c for c in rows(app, Consent) if c.target_org == "svb"][0]
    make_user(app, "sup@ind.nl", "supervisor", "ind")
    make_user(app, "sup@svb.nl", "supervisor", "svb")
    ind_token = make_token(app, "ind-bi", "ind")
    svb_token = make_token(app, "svb-bi", "svb")
    with dashboard(phone) as c:
        login(c, "sup@ind.nl")
        assert case.id not in c.get("/dashboard/cases").get_data(as_text=True)
        assert c.get(f"/dashboard/cases/{case.id}").status_code == 404
        page = c.get("/dashboard/cases").get_data(as_text=True)
        resp = c.post(
            f"/dashboard/cases/{case.id}/consents/{svb_consent.id}/withdraw",
            data={"csrf_token": csrf_of(page)},
        )
        assert resp.status_code == 404
        for path in (
            "/dashboard/calls",
            "/dashboard/calls.csv",
            "/dashboard/calls?caller=utrecht",
            "/dashboard/callbacks?state=all",
        ):
            body = c.get(path).get_data(as_text=True)
            assert case.id not in body and case.reference not in body, path
        call_id = rows(app, Case)[0].call_id
        assert c.get(f"/dashboard/calls/{call_id}").status_code == 404
        api = c.get("/api/v1/cases", headers={"Authorization": f"Bearer {ind_token}"})
        assert api.status_code == 200 and api.get_json()["data"] == []
        api = c.get(
            "/api/v1/cases?organisation=utrecht", headers={"Authorization": f"Bearer {ind_token}"}
        )
        assert api.get_json()["data"] == []
        api = c.get("/api/v1/transfers", headers={"Authorization": f"Bearer {ind_token}"})
        assert api.get_json()["data"] == []
    (withdrawn,) = [c for c in rows(app, Consent) if c.id == svb_consent.id]
    assert withdrawn.withdrawn_at is None
    with dashboard(phone) as c:
        login(c, "sup@svb.nl")
        assert c.get(f"/dashboard/cases/{case.id}").status_code == 200
        # The chain's call reached the SVB in a step: its call log shows it.
        assert call_id in c.get("/dashboard/calls").get_data(as_text=True)
        api = c.get("/api/v1/cases", headers={"Authorization": f"Bearer {svb_token}"})
        (data,) = api.get_json()["data"]
        assert data["reference"] == case.reference
        assert {s["organisation"] for s in data["steps"]} == {"svb", "toeslagen", "cak"}
        assert {x["organisation"]: x["choice"] for x in data["consents"]} == {
            "svb": "case",
            "toeslagen": "none",
        }


def test_figures_count_life_events_chains_and_multi_organisation_cases(phone, app):
    """Life events used, chain completion and the share of cases with several organisations."""
    chain_with_svb_and_toeslagen(phone, app)
    root = phone.post("/voice/incoming", CallSid="CAdc9", From=WORKER)
    root = phone.post(action_of(root), CallSid="CAdc9", From=WORKER, Digits="31")
    from callrouter import clock
    from callrouter.dashboard import queries

    svc = app.extensions["callrouter"]
    today = clock.now().astimezone(svc.directory.tz).date()
    with svc.sessions() as s:
        cf = queries.case_figures(
            s,
            None,
            queries.day_start(today, svc.directory.tz),
            queries.day_start(today, svc.directory.tz) + timedelta(days=1),
        )
    assert cf.cases == 2 and cf.multi_org == 1 and cf.life_events == [("verpleeghuis", 1)]
    assert (cf.chains, cf.chains_complete, cf.chain_steps, cf.chain_steps_done) == (1, 0, 3, 2)
    make_user(app, "beheer@x.nl", "admin")
    with dashboard(phone) as c:
        login(c, "beheer@x.nl")
        body = c.get("/dashboard/figures").get_data(as_text=True)
    section = re.search(r'id="case-figures">(.*?)</dl>', body, re.S).group(1)
    assert "Partner gaat naar een verpleeghuis: 1" in section and "0 van 1" in section
