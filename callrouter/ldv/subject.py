"""The subject's own view (AVG art. 15) and erasure (art. 17) for one phone number: every row
held about it, found through its keyed pseudonym (never a plain hash), with the period each
is kept; erasure removes what no open process and no retention rule still needs, and
records that it did.

What is kept on erasure, and why: a call still in progress, an open callback request (it
must still ring the worker), an open case (the way back to the worker, at most 30 days),
and the LDV records (the accountability the register keeps for its own period).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from callrouter.callbacks import OPEN as OPEN_CALLBACK
from callrouter.ldv import kinds
from callrouter.ldv import store as ldv_store
from callrouter.ldv.register import Register
from callrouter.models import Call, CallbackRequest, Case, Consent, LdvRecord, Leg, Transfer


@dataclass(frozen=True)
class Held:
    """One row that holds the number (as its pseudonym or masked form)."""

    kind: str  # call | leg | callback | case | consent | ldv
    id: str
    at: datetime
    what: str  # what the row is, in Dutch (the page shows it)
    kept_until: datetime | None  # when the retention rules remove it (None: while needed)
    erasable: bool  # erasure removes it now
    why_kept: str = ""


def _days_for(directory, default_days: int, caller_org: str | None) -> int:
    caller = directory.caller(caller_org)
    return caller.retention_days if caller is not None and caller.retention_days else default_days


# A call longer than this has lost its final status callback (the reconciliation closes
# it); its number may be erased like that of an ended call.
LONGEST_CALL = timedelta(hours=12)


def find(s, pseudonym: str, directory, default_days: int, at: datetime) -> list[Held]:
    """Everything held about the number whose pseudonym this is, oldest first. A read: on
    SQLite it holds no write lock while it reads the call log."""
    out: list[Held] = []

    def until(at: datetime, org: str | None) -> datetime:
        return at + timedelta(days=_days_for(directory, default_days, org))

    # calls.from_hmac has no index (each one would cost the incoming webhook's insert): this
    # rare request reads the call log once, by the pseudonym.
    for c in s.scalars(select(Call).where(Call.from_hmac == pseudonym)):
        ended = c.ended_at is not None or c.received_at < at - LONGEST_CALL
        out.append(
            Held(
                "call",
                c.id,
                c.received_at,
                "gesprek met het interne nummer",
                until(c.received_at, c.caller_org),
                ended,
                "" if ended else "het gesprek loopt nog",
            )
        )
    legs = s.execute(
        select(Leg, Transfer.caller_org, Transfer.ended_at)
        .join(Transfer, Transfer.id == Leg.transfer_id)
        .where(Leg.number_hmac == pseudonym)
    )
    for leg, org, tr_ended in legs:
        what = "de inwoner gebeld" if leg.kind == "citizen" else "een professional gebeld"
        out.append(
            Held(
                "leg",
                leg.id,
                leg.created_at,
                what,
                until(leg.created_at, org),
                tr_ended is not None,
                "" if tr_ended is not None else "de doorverbinding loopt nog",
            )
        )
    for r in s.scalars(select(CallbackRequest).where(CallbackRequest.worker_hmac == pseudonym)):
        done = r.state not in OPEN_CALLBACK
        out.append(
            Held(
                "callback",
                r.id,
                r.requested_at,
                f"terugbelverzoek {r.reference}",
                until(r.requested_at, r.caller_org) if done else None,
                done,
                "" if done else "het verzoek staat nog open",
            )
        )
    for case in s.scalars(select(Case).where(Case.worker_hmac == pseudonym)):
        closed = case.state != "open"
        out.append(
            Held(
                "case",
                case.id,
                case.opened_at,
                f"zaak {case.reference}",
                until(case.opened_at, case.caller_org),
                closed,
                "" if closed else "de zaak is open (de weg terug naar de medewerker)",
            )
        )
    for cs in s.scalars(select(Consent).where(Consent.recorded_by_hmac == pseudonym)):
        out.append(
            Held(
                "consent",
                cs.id,
                cs.recorded_at,
                "toestemming vastgelegd (wie die vastlegde)",
                until(cs.recorded_at, cs.recorded_by_org),
                True,
            )
        )
    out.extend(_records(s, pseudonym, directory.register))
    return sorted(out, key=lambda h: (h.at, h.kind, h.id))


def _records(s, pseudonym: str, register: Register) -> list[Held]:
    out = []
    longest = max(a.retention_days for a in register.activities)
    for r in s.scalars(select(LdvRecord).where(LdvRecord.data_subject_id == pseudonym)):
        activity = register.by_uri(r.processing_activity_id)
        days = activity.retention_days if activity is not None else longest
        out.append(
            Held(
                "ldv",
                str(r.id),
                r.start_time,
                f"verwerking: {r.name}",
                r.end_time + timedelta(days=days),
                False,
                "verantwoording (register van verwerkingen)",
            )
        )
    return out


def erase(s, pseudonym: str, held: list[Held], register: Register, at: datetime) -> dict:
    """Remove the erasable rows' personal fields (in the caller's transaction: a short write
    after `find`'s read; each update repeats the row's condition, so a row that changed
    meanwhile is left as it is) and record the erasure; the erasable rows of each kind."""
    ids: dict[str, list[str]] = {}
    for h in held:
        if h.erasable:
            ids.setdefault(h.kind, []).append(h.id)
    worker = dict(worker_number_enc=None, worker_hmac=None, worker_masked=None)
    changes: dict[str, tuple[Any, list, dict]] = {
        "call": (Call, [Call.from_hmac == pseudonym], dict(from_hmac=None, from_masked=None)),
        "leg": (
            Leg,
            [Leg.number_hmac == pseudonym],
            dict(number_hmac="", number_masked="verwijderd"),
        ),
        "callback": (
            CallbackRequest,
            [CallbackRequest.worker_hmac == pseudonym, CallbackRequest.state.not_in(OPEN_CALLBACK)],
            worker,
        ),
        "case": (Case, [Case.worker_hmac == pseudonym, Case.state != "open"], worker),
        "consent": (Consent, [Consent.recorded_by_hmac == pseudonym], dict(recorded_by_hmac=None)),
    }
    for kind, (model, conditions, values) in changes.items():
        if ids.get(kind):
            if model is Call:
                values = values | {"purged_at": at}
            s.execute(update(model).where(model.id.in_(ids[kind]), *conditions).values(**values))
    counts = {kind: len(v) for kind, v in ids.items()}
    kept = sum(1 for h in held if not h.erasable)
    record = kinds.dashboard(
        register,
        "subject-erased",
        at=at,
        subject=pseudonym,
        attributes={f"callrouter.erased.{k}": n for k, n in sorted(counts.items())}
        | {"callrouter.kept": kept},
    )
    ldv_store.write(s, [record])
    return counts


def viewed(s, pseudonym: str, held: list[Held], register: Register, at: datetime) -> None:
    """The view itself is a processing of the subject's data: recorded."""
    ldv_store.write(
        s,
        [
            kinds.dashboard(
                register,
                "subject-viewed",
                at=at,
                subject=pseudonym,
                attributes={"callrouter.rows": len(held)},
            )
        ],
    )
