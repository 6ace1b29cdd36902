"""Demo traffic for the network report: `flask --app app network simulate --days N --seed S`.

Calls, cases and transfers over any directory, only while each line is open, with busier
late mornings and early afternoons, mostly answered, mostly resolved, a little noise (wrong
lines to random places, random second organisations in a case). Optional planted patterns:

- `phrase`: one keyword of a line keeps ending at "verkeerde lijn" and is resolved at a line of
  another organisation;
- `lunch`: a line open at lunch is hardly answered between 12:00 and 13:00 on weekdays;
- `together`: three lines of different organisations keep occurring in the same case.

Deterministic for a seed. Rows are written in bulk, a day at a time.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import cast

from sqlalchemy import Table, insert

from callrouter import figures
from callrouter.directory import Directory, Line
from callrouter.flows import hours
from callrouter.flows.reference import new_reference
from callrouter.flows.routing import _squeeze
from callrouter.models import Call, Case, Transfer

PLANTS = ("phrase", "lunch", "together")
# Relative busyness per local hour (late morning and early afternoon peaks).
HOUR_WEIGHT = {
    8: 0.6,
    9: 1.0,
    10: 1.3,
    11: 1.2,
    12: 0.8,
    13: 1.0,
    14: 1.2,
    15: 1.0,
    16: 0.7,
    17: 0.3,
    18: 0.1,
    19: 0.1,
}


@dataclass(frozen=True)
class Plan:
    """Which lines and term the planted patterns use (chosen from the directory)."""

    phrase_line: Line | None
    phrase_term: str | None
    phrase_to: Line | None
    lunch_line: Line | None
    together: tuple[Line, ...]


def plan(directory: Directory) -> Plan:
    lines = list(directory.lines)
    phrase_line = next((ln for ln in lines if ln.keywords), None)
    phrase_to = None
    if phrase_line is not None:
        phrase_to = next(
            (ln for ln in lines if ln.organisation_id != phrase_line.organisation_id), None
        )
    monday_noon = [
        ln
        for ln in lines
        if not ln.hours.always
        and any(s.start <= 12 * 60 and s.end >= 13 * 60 for s in ln.hours.days[0])
    ]
    events = {frozenset(st.line_id for st in e.steps) for e in directory.life_events}
    together: list[Line] = []
    for ln in lines:
        if ln in (phrase_line, phrase_to) or ln.organisation_id in {
            x.organisation_id for x in together
        }:
            continue
        together.append(ln)
        if len(together) == 3:
            break
    if frozenset(ln.id for ln in together) in events or len(together) < 3:
        together = []
    return Plan(
        phrase_line,
        _squeeze(phrase_line.keywords[-1]).strip() if phrase_line else None,
        phrase_to,
        monday_noon[0] if monday_noon else None,
        tuple(together),
    )


def simulate(
    engine,
    directory: Directory,
    days: int,
    seed: int,
    plants=(),
    until: date | None = None,
    scale: float = 1.0,
) -> dict:
    """Write `days` days of traffic ending yesterday (or before `until`); returns counts."""
    rng = random.Random(seed)
    tz = directory.tz
    lines = list(directory.lines)
    if not lines or not directory.callers:
        return {"calls": 0, "transfers": 0, "cases": 0}
    p = plan(directory)
    plants = set(plants)
    popularity = {ln.id: rng.uniform(0.5, 1.5) for ln in lines}
    terms = {ln.id: [_squeeze(t).strip() for t in (ln.topic, *ln.keywords)] for ln in lines}
    org_wait = {o.id: o.public_wait_minutes for o in directory.organisations}
    last = until or datetime.now(tz).date()
    counts = {"calls": 0, "transfers": 0, "cases": 0}
    with engine.begin() as conn:  # stored figures of these days would miss this traffic
        figures.forget(conn, last - timedelta(days=days + 1))
    for offset in range(days, 0, -1):
        day = last - timedelta(days=offset)
        calls: list[dict] = []
        cases: list[dict] = []
        transfers: list[dict] = []
        for hour in range(7, 20):
            moment = datetime(day.year, day.month, day.day, hour, 30, tzinfo=tz)
            weight = HOUR_WEIGHT.get(hour, 0.05)
            for line in lines:
                if not hours.is_open(directory, line, moment):
                    continue
                n = _poisson(rng, 1.2 * weight * popularity[line.id] * scale)
                for _ in range(n):
                    _traffic(
                        rng,
                        directory,
                        p,
                        plants,
                        line,
                        moment,
                        terms,
                        org_wait,
                        calls,
                        cases,
                        transfers,
                    )
                if "phrase" in plants and line is p.phrase_line and rng.random() < 0.25:
                    _traffic(
                        rng,
                        directory,
                        p,
                        plants,
                        line,
                        moment,
                        terms,
                        org_wait,
                        calls,
                        cases,
                        transfers,
                        planted_phrase=True,
                    )
            if (
                "together" in plants
                and p.together
                and rng.random() < 0.2
                and all(hours.is_open(directory, ln, moment) for ln in p.together)
            ):
                _traffic(
                    rng,
                    directory,
                    p,
                    plants,
                    p.together[0],
                    moment,
                    terms,
                    org_wait,
                    calls,
                    cases,
                    transfers,
                    chain=p.together[1:],
                )
        with engine.begin() as conn:
            for model, rows in ((Call, calls), (Case, cases), (Transfer, transfers)):
                if rows:
                    conn.execute(insert(cast(Table, model.__table__)), rows)
        for key, rows in (("calls", calls), ("cases", cases), ("transfers", transfers)):
            counts[key] += len(rows)
    return counts


def _poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method; lam is small here.
    limit, k, prod = pow(2.718281828459045, -lam), 0, rng.random()
    while prod > limit:
        k += 1
        prod *= rng.random()
    return k


def _traffic(
    rng,
    directory,
    p: Plan,
    plants,
    line: Line,
    moment: datetime,
    terms,
    org_wait,
    calls,
    cases,
    transfers,
    planted_phrase=False,
    chain=(),
):
    """One call with its case and its transfer(s)."""
    at = moment + timedelta(seconds=rng.randrange(-1800, 1800))
    caller = rng.choice(directory.callers)
    call_id, case_id = uuid.uuid4().hex, uuid.uuid4().hex
    by_speech = planted_phrase or rng.random() < 0.4
    term = p.phrase_term if planted_phrase else (rng.choice(terms[line.id]) if by_speech else None)
    calls.append(
        dict(
            id=call_id,
            call_sid="CAsim" + uuid.uuid4().hex[:27],
            caller_org=caller.id,
            identified_by="number",
            from_hmac=None,
            from_masked=None,
            received_at=at,
            menu_done_at=at + timedelta(seconds=10),
            target_org=line.organisation_id,
            line_id=line.id,
            selected_by="speech" if by_speech else "digits",
            selected_term=term,
            urgent=rng.random() < 0.05,
            consent=rng.random() < 0.6,
            outcome=None,
            status="completed",
            duration_s=None,
            case_id=case_id,
        )
    )
    cases.append(
        dict(
            id=case_id,
            reference=new_reference(f"{rng.randrange(10**6):06d}"),
            caller_org=caller.id,
            call_id=call_id,
            life_event=None,
            state="closed",
            opened_at=at,
            closed_at=None,
            updated_at=at,
        )
    )
    start = at + timedelta(seconds=12)
    sequence = [line, *chain]
    if not chain and not planted_phrase and rng.random() < 0.08:  # noise: a second org
        other = rng.choice(list(directory.lines))
        if other.organisation_id != line.organisation_id:
            sequence.append(other)
    outcome = None
    for i, ln in enumerate(sequence):
        lunch = (
            "lunch" in plants
            and ln is p.lunch_line
            and start.astimezone(directory.tz).weekday() < 5
            and start.astimezone(directory.tz).hour == 12
        )
        answered = rng.random() < (0.1 if lunch else 0.88)
        result = right = None
        tta = round(rng.uniform(5, 40), 1) if answered else None
        if answered:
            if planted_phrase and i == 0 and rng.random() < 0.7:
                result, right = "wrong-line", p.phrase_to.id
                if len(sequence) == 1:
                    sequence.append(p.phrase_to)
            else:
                r = rng.random()
                result = (
                    "resolved"
                    if r < 0.6
                    else "partial"
                    if r < 0.8
                    else "unresolved"
                    if r < 0.88
                    else "wrong-line"
                    if r < 0.93
                    else "unknown"
                )
                if result == "wrong-line":
                    right = rng.choice(list(directory.lines)).id
        accepted = start + timedelta(seconds=tta) if answered else None
        wait = org_wait.get(ln.organisation_id, 0)
        transfers.append(
            dict(
                id=uuid.uuid4().hex,
                call_id=call_id,
                caller_org=caller.id,
                target_org=ln.organisation_id,
                line_id=ln.id,
                urgent=False,
                consent=True,
                state="ended",
                outcome="connected" if answered else "no-answer",
                hunt_position=0,
                created_at=start,
                ringing_at=start + timedelta(seconds=1),
                accepted_at=accepted,
                ended_at=(accepted or start) + timedelta(minutes=rng.randint(1, 12)),
                time_to_answer_s=tta,
                duration_s=None,
                minutes_saved=max(0.0, wait - (tta or 0) / 60) if answered else None,
                case_id=case_id,
                step=i,
                consent_level="case",
                result=result,
                selected_term=term if i == 0 else None,
                result_at=accepted,
                result_by="worker" if result else None,
                right_org=directory.line(right).organisation_id if right else None,
                right_line=right,
            )
        )
        outcome = outcome or ("connected" if answered else None)
        start += timedelta(minutes=rng.randint(3, 15))
    calls[-1]["outcome"] = outcome or "no-answer"
