"""The cases' reads for the dashboard and the API: the scoped case list, a case's detail and
its consents, each within the asker's case scope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select

from callrouter import cases as cases_mod
from callrouter.dashboard.labels import CALLBACK_STATES, CONSENT_CHOICES, OUTCOMES, RESULTS
from callrouter.dashboard.paging import PAGE_SIZE, before, encode_cursor
from callrouter.dashboard.scopes import case_scope
from callrouter.models import CallbackRequest, Case, CaseStep, Consent, Transfer


def cases_page(
    session,
    org: str | None,
    since=None,
    until=None,
    organisation=None,
    life_event=None,
    cursor=None,
    limit: int = PAGE_SIZE,
):
    q = select(Case).where(case_scope(org))
    if since:
        q = q.where(Case.opened_at >= since)
    if until:
        q = q.where(Case.opened_at < until)
    if organisation:
        q = q.where(or_(Case.caller_org == organisation, cases_mod.involves(organisation)))
    if life_event:
        q = q.where(Case.life_event == life_event)
    if cursor:
        q = q.where(before(Case.opened_at, Case.id, cursor))
    rows = session.scalars(q.order_by(Case.opened_at.desc(), Case.id.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1].opened_at, rows[-1].id) if more else None)


@dataclass
class CaseDetail:
    case: Case
    steps: list[CaseStep]
    transfers: list[Transfer]
    consents: list[Consent]
    callbacks: list[CallbackRequest]
    timeline: list[tuple[datetime, str, str]]


def step_state(step: CaseStep, transfers: list[Transfer]) -> str:
    """A step's state as it is now: one still "ringing" or "connected" whose transfer has
    ended (its final callbacks settled the transfer, not the step) reads as that end."""
    if step.state not in ("ringing", "connected") or not step.transfer_id:
        return step.state
    tr = next((t for t in transfers if t.id == step.transfer_id), None)
    if tr is None or tr.state != "ended":
        return step.state
    return "done" if tr.accepted_at is not None else "unanswered"


def case_parts(session, ids: list[str]) -> dict[str, dict]:
    """Steps, consents, transfers and callbacks of several cases (for lists and the API)."""
    out: dict[str, dict] = {
        i: {"steps": [], "consents": [], "transfers": [], "callbacks": []} for i in ids
    }
    if not ids:
        return out
    for model, key, order in (
        (CaseStep, "steps", CaseStep.position),
        (Consent, "consents", Consent.recorded_at),
        (Transfer, "transfers", Transfer.created_at),
        (CallbackRequest, "callbacks", CallbackRequest.requested_at),
    ):
        for row in session.scalars(select(model).where(model.case_id.in_(ids)).order_by(order)):
            out[row.case_id][key].append(row)
    return out


def case_detail(session, org: str | None, case_id: str, directory) -> CaseDetail | None:
    case = session.scalar(select(Case).where(Case.id == case_id, case_scope(org)))
    if case is None:
        return None
    parts = case_parts(session, [case.id])[case.id]

    def org_name(org_id):
        o = directory.organisation(org_id)
        return o.name if o else (org_id or "")

    timeline: list[tuple[datetime, str, str]] = [(case.opened_at, "zaak geopend", "")]
    for t in parts["transfers"]:
        who = org_name(t.target_org) if t.direction is None else org_name(t.caller_org)
        what = "doorverbinden" if t.direction is None else "teruggebeld door"
        detail = OUTCOMES.get(t.outcome or "", t.outcome or t.state)
        if t.result:
            detail += f"; resultaat: {RESULTS.get(t.result, t.result)}"
            if t.right_org:
                detail += f", had moeten zijn: {org_name(t.right_org)}"
        timeline.append((t.created_at, f"{what}: {who}", detail))
        if t.accepted_at:
            timeline.append((t.accepted_at, f"aangenomen: {who}", ""))
    for c in parts["consents"]:
        timeline.append(
            (
                c.recorded_at,
                f"toestemming voor {org_name(c.target_org)}",
                CONSENT_CHOICES.get(c.choice, c.choice),
            )
        )
        if c.withdrawn_at:
            timeline.append(
                (c.withdrawn_at, f"toestemming ingetrokken voor {org_name(c.target_org)}", "")
            )
    for cb in parts["callbacks"]:
        timeline.append(
            (
                cb.requested_at,
                f"terugbelverzoek {cb.reference}",
                CALLBACK_STATES.get(cb.state, cb.state),
            )
        )
    timeline.sort(key=lambda item: item[0])
    return CaseDetail(
        case, parts["steps"], parts["transfers"], parts["consents"], parts["callbacks"], timeline
    )


def consent_in_scope(session, org: str | None, case_id: str, consent_id: str) -> Consent | None:
    return session.scalar(
        select(Consent)
        .join(Case, Case.id == Consent.case_id)
        .where(Consent.id == consent_id, Consent.case_id == case_id, case_scope(org))
    )
