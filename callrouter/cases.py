"""Cases: one reference for a citizen's question, its chain of steps and its consents.

A case is opened when a worker's call makes its first choice in the menu (a line, or a life
event whose steps are then written at once). Every transfer, callback request and consent of
the case points to it. The functions here take an open ORM session and never commit: the
webhook that calls them commits at its boundary.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from callrouter.directory import Directory, LifeEvent, Line
from callrouter.flows import reference as refs
from callrouter.models import Case, CaseStep, Consent
from callrouter.privacy import Pseudonymiser, mask

OPEN_STEP_STATES = ("pending", "ringing", "connected")
DONE_STEP_STATES = ("done", "unanswered", "closed", "skipped", "stopped")
REFERENCE_DRAWS = 20  # a taken reference is drawn again, at most this often


def case_values(
    *,
    reference: str,
    call_id: str,
    caller_org: str | None,
    worker_number: str | None,
    pseudonyms: Pseudonymiser,
    at: datetime,
    life_event: str | None = None,
) -> dict:
    """The row of a new open case (the ORM and the webhook's hot path write the same)."""
    return dict(
        id=uuid.uuid4().hex,
        reference=reference,
        caller_org=caller_org,
        call_id=call_id,
        life_event=life_event,
        worker_hmac=pseudonyms.pseudonym(worker_number),
        worker_masked=mask(worker_number),
        worker_number_enc=pseudonyms.encrypt(worker_number) if worker_number else None,
        state="open",
        opened_at=at,
        updated_at=at,
    )


def step_values(
    case_id: str,
    position: int,
    line: Line,
    at: datetime,
    reason: str | None = None,
    state: str = "pending",
) -> dict:
    return dict(
        id=uuid.uuid4().hex,
        case_id=case_id,
        position=position,
        line_id=line.id,
        target_org=line.organisation_id,
        reason=reason,
        state=state,
        updated_at=at,
    )


def open_case(
    s,
    *,
    call_id: str,
    caller_org: str | None,
    worker_number: str | None,
    pseudonyms: Pseudonymiser,
    at: datetime,
    life_event: str | None = None,
    token: str | None = None,
) -> Case:
    """A new open case with a fresh, unique reference (`token`: six digits, for tests)."""
    for attempt in range(REFERENCE_DRAWS):
        case = Case(
            **case_values(
                reference=refs.new_reference(token if attempt == 0 else None),
                call_id=call_id,
                caller_org=caller_org,
                worker_number=worker_number,
                pseudonyms=pseudonyms,
                at=at,
                life_event=life_event,
            )
        )
        try:
            with s.begin_nested():
                s.add(case)
            return case
        except IntegrityError:  # the reference is taken (one in a million): draw again
            continue
    raise RuntimeError(f"no free case reference after {REFERENCE_DRAWS} draws")


def add_step(
    s, case: Case, line: Line, at: datetime, reason: str | None = None, state: str = "pending"
) -> CaseStep:
    position = (
        s.scalar(select(func.count()).select_from(CaseStep).where(CaseStep.case_id == case.id)) or 0
    )
    step = CaseStep(**step_values(case.id, position, line, at, reason, state))
    s.add(step)
    s.flush()
    return step


def start_chain(
    s, case: Case, event: LifeEvent, directory: Directory, at: datetime
) -> list[CaseStep]:
    steps = []
    for item in event.steps:
        line = directory.line(item.line_id)
        if line is not None:
            steps.append(add_step(s, case, line, at, item.reason))
    return steps


def steps_of(s, case_id: str) -> list[CaseStep]:
    return list(
        s.scalars(select(CaseStep).where(CaseStep.case_id == case_id).order_by(CaseStep.position))
    )


def step_at(s, case_id: str, position: int) -> CaseStep | None:
    return s.scalar(
        select(CaseStep).where(CaseStep.case_id == case_id, CaseStep.position == position)
    )


def last_step_for_line(s, case_id: str, line_id: str) -> CaseStep | None:
    """The case's latest step on `line_id` (a line may come back in a chain)."""
    return s.scalar(
        select(CaseStep)
        .where(CaseStep.case_id == case_id, CaseStep.line_id == line_id)
        .order_by(CaseStep.position.desc())
        .limit(1)
    )


def next_pending(s, case_id: str) -> CaseStep | None:
    return s.scalar(
        select(CaseStep)
        .where(CaseStep.case_id == case_id, CaseStep.state == "pending")
        .order_by(CaseStep.position)
        .limit(1)
    )


def set_step(
    s, step_id: str, state: str, at: datetime, only_from: tuple[str, ...] = (), **values
) -> bool:
    """Move a step to `state` (optionally only from the given states); True if it moved."""
    q = update(CaseStep).where(CaseStep.id == step_id)
    if only_from:
        q = q.where(CaseStep.state.in_(only_from))
    return bool(s.execute(q.values(state=state, updated_at=at, **values)).rowcount)


def stop_rest(s, case_id: str, at: datetime) -> int:
    return s.execute(
        update(CaseStep)
        .where(CaseStep.case_id == case_id, CaseStep.state == "pending")
        .values(state="stopped", updated_at=at)
    ).rowcount


def withdrawn(s, case_id: str, org_id: str) -> bool:
    """True when a consent for this organisation on this case has been withdrawn."""
    return bool(
        s.scalar(
            select(
                exists().where(
                    Consent.case_id == case_id,
                    Consent.target_org == org_id,
                    Consent.withdrawn_at.is_not(None),
                )
            )
        )
    )


def record_consent(
    s,
    case: Case,
    org_id: str,
    choice: str,
    *,
    by_org: str | None,
    by_hmac: str | None,
    transfer_id: str | None,
    at: datetime,
) -> Consent:
    consent = Consent(
        id=uuid.uuid4().hex,
        case_id=case.id,
        target_org=org_id,
        choice=choice,
        recorded_at=at,
        recorded_by_org=by_org,
        recorded_by_hmac=by_hmac,
        transfer_id=transfer_id,
    )
    s.add(consent)
    return consent


def withdraw(s, consent_id: str, by: str, at: datetime) -> bool:
    return bool(
        s.execute(
            update(Consent)
            .where(Consent.id == consent_id, Consent.withdrawn_at.is_(None))
            .values(withdrawn_at=at, withdrawn_by=by[:120])
        ).rowcount
    )


def involves(org_id: str):
    """SQL condition: the case involved organisation `org_id` (a step or a consent). Aliases,
    so that it also correlates correctly inside a query that selects steps or consents."""
    step, consent = aliased(CaseStep), aliased(Consent)
    return or_(
        exists().where(step.case_id == Case.id, step.target_org == org_id),
        exists().where(consent.case_id == Case.id, consent.target_org == org_id),
    )


def find_for_staff(s, reference: str, org_id: str) -> Case | None:
    """The open case with this reference, if it involved the calling organisation; None for
    any other reference, so that a case of others sounds exactly like a missing one."""
    return s.scalar(
        select(Case).where(Case.reference == reference, Case.state == "open", involves(org_id))
    )


def line_for_org(s, case_id: str, org_id: str) -> str | None:
    """The line of the organisation's (first) step on the case."""
    return s.scalar(
        select(CaseStep.line_id)
        .where(CaseStep.case_id == case_id, CaseStep.target_org == org_id)
        .order_by(CaseStep.position)
        .limit(1)
    )
