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
    if not directory.lines or not directory.callers:
        return {"calls": 0, "transfers": 0, "cases": 0}
    traffic = _Traffic(rng, directory, plants)
    last = until or datetime.now(tz).date()
    counts = {"calls": 0, "transfers": 0, "cases": 0}
    with engine.begin() as conn:  # stored figures of these days would miss this traffic
        figures.forget(conn, last - timedelta(days=days + 1))
    for offset in range(days, 0, -1):
        day = last - timedelta(days=offset)
        for hour in range(7, 20):
            traffic.hour(datetime(day.year, day.month, day.day, hour, 30, tzinfo=tz), scale)
        rows = traffic.take_day()
        _insert_day(engine, rows)
        for key in counts:
            counts[key] += len(rows[key])
    return counts


def _insert_day(engine, rows: dict[str, list[dict]]) -> None:
    """A day's rows in bulk, in one transaction (calls before the rows that refer to them)."""
    with engine.begin() as conn:
        for model, key in ((Call, "calls"), (Case, "cases"), (Transfer, "transfers")):
            if rows[key]:
                conn.execute(insert(cast(Table, model.__table__)), rows[key])


def _poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method; lam is small here.
    limit, k, prod = pow(2.718281828459045, -lam), 0, rng.random()
    while prod > limit:
        k += 1
        prod *= rng.random()
    return k


class _Traffic:
    """Simulated calls, each with its case and its transfer(s), drawn from one Random and
    gathered as rows a day at a time."""

    def __init__(self, rng: random.Random, directory: Directory, plants=()):
        self.rng = rng
        self.directory = directory
        self.lines = list(directory.lines)
        self.plan = plan(directory)
        self.plants = set(plants)
        self.popularity = {ln.id: rng.uniform(0.5, 1.5) for ln in self.lines}
        self.terms = {
            ln.id: [_squeeze(t).strip() for t in (ln.topic, *ln.keywords)] for ln in self.lines
        }
        self.org_wait = {o.id: o.public_wait_minutes for o in directory.organisations}
        self.calls: list[dict] = []
        self.cases: list[dict] = []
        self.transfers: list[dict] = []

    def take_day(self) -> dict[str, list[dict]]:
        """The rows made since the last day was taken (and a fresh start for the next)."""
        rows = {"calls": self.calls, "cases": self.cases, "transfers": self.transfers}
        self.calls, self.cases, self.transfers = [], [], []
        return rows

    def hour(self, moment: datetime, scale: float) -> None:
        """The calls around `moment` (half past an hour) to every line open then, and the
        planted patterns' calls."""
        rng, p = self.rng, self.plan
        weight = HOUR_WEIGHT.get(moment.hour, 0.05)
        for line in self.lines:
            if not hours.is_open(self.directory, line, moment):
                continue
            n = _poisson(rng, 1.2 * weight * self.popularity[line.id] * scale)
            for _ in range(n):
                self.call(line, moment)
            if "phrase" in self.plants and line is p.phrase_line and rng.random() < 0.25:
                self.call(line, moment, planted_phrase=True)
        if (
            "together" in self.plants
            and p.together
            and rng.random() < 0.2
            and all(hours.is_open(self.directory, ln, moment) for ln in p.together)
        ):
            self.call(p.together[0], moment, chain=p.together[1:])

    def call(self, line: Line, moment: datetime, planted_phrase: bool = False, chain=()) -> None:
        """One call with its case and its transfer(s)."""
        rng = self.rng
        at = moment + timedelta(seconds=rng.randrange(-1800, 1800))
        caller = rng.choice(self.directory.callers)
        by_speech = planted_phrase or rng.random() < 0.4
        if planted_phrase:
            term = self.plan.phrase_term
        else:
            term = rng.choice(self.terms[line.id]) if by_speech else None
        call = self._call_row(caller.id, line, at, by_speech, term)
        self.calls.append(call)
        self.cases.append(self._case_row(call))
        sequence = self._sequence(line, chain, planted_phrase)
        start = at + timedelta(seconds=12)
        call["outcome"] = self._transfers(call, sequence, start, planted_phrase)

    def _call_row(
        self, caller_org: str, line: Line, at: datetime, by_speech: bool, term: str | None
    ) -> dict:
        return dict(
            id=uuid.uuid4().hex,
            call_sid="CAsim" + uuid.uuid4().hex[:27],
            caller_org=caller_org,
            identified_by="number",
            from_hmac=None,
            from_masked=None,
            received_at=at,
            menu_done_at=at + timedelta(seconds=10),
            target_org=line.organisation_id,
            line_id=line.id,
            selected_by="speech" if by_speech else "digits",
            selected_term=term,
            urgent=self.rng.random() < 0.05,
            consent=self.rng.random() < 0.6,
            outcome=None,
            status="completed",
            duration_s=None,
            case_id=uuid.uuid4().hex,
        )

    def _case_row(self, call: dict) -> dict:
        return dict(
            id=call["case_id"],
            reference=new_reference(f"{self.rng.randrange(10**6):06d}"),
            caller_org=call["caller_org"],
            call_id=call["id"],
            life_event=None,
            state="closed",
            opened_at=call["received_at"],
            closed_at=None,
            updated_at=call["received_at"],
        )

    def _sequence(self, line: Line, chain, planted_phrase: bool) -> list[Line]:
        """The lines the call is transferred to, in order: the line and the chain after it,
        now and then (noise) a line of a second organisation."""
        sequence = [line, *chain]
        if not chain and not planted_phrase and self.rng.random() < 0.08:  # noise: a second org
            other = self.rng.choice(list(self.directory.lines))
            if other.organisation_id != line.organisation_id:
                sequence.append(other)
        return sequence

    def _transfers(
        self, call: dict, sequence: list[Line], start: datetime, planted_phrase: bool
    ) -> str:
        """The call's transfers along `sequence` (which a planted wrong line extends to the
        right one); returns the call's outcome."""
        rng, p = self.rng, self.plan
        outcome = None
        for i, ln in enumerate(sequence):
            answered = rng.random() < (0.1 if self._lunch_hour(ln, start) else 0.88)
            tta = round(rng.uniform(5, 40), 1) if answered else None
            result = right = None
            if answered and planted_phrase and i == 0 and rng.random() < 0.7:
                result, right = "wrong-line", p.phrase_to.id
                if len(sequence) == 1:
                    sequence.append(p.phrase_to)
            elif answered:
                result, right = self._verdict()
            self.transfers.append(self._transfer_row(call, ln, i, start, tta, result, right))
            outcome = outcome or ("connected" if answered else None)
            start += timedelta(minutes=rng.randint(3, 15))
        return outcome or "no-answer"

    def _lunch_hour(self, ln: Line, start: datetime) -> bool:
        """The planted `lunch` pattern: its line, on a weekday between 12:00 and 13:00."""
        local = start.astimezone(self.directory.tz)
        return (
            "lunch" in self.plants
            and ln is self.plan.lunch_line
            and local.weekday() < 5
            and local.hour == 12
        )

    def _verdict(self) -> tuple[str, str | None]:
        """The worker's result for an answered transfer, and the right line if it was wrong."""
        r = self.rng.random()
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
        right = self.rng.choice(list(self.directory.lines)).id if result == "wrong-line" else None
        return result, right

    def _transfer_row(
        self,
        call: dict,
        ln: Line,
        step: int,
        start: datetime,
        tta: float | None,
        result: str | None,
        right: str | None,
    ) -> dict:
        """One transfer of `call` to line `ln`; `tta` (time to answer) is None if unanswered."""
        answered = tta is not None
        accepted = start + timedelta(seconds=tta) if answered else None
        wait = self.org_wait.get(ln.organisation_id, 0)
        return dict(
            id=uuid.uuid4().hex,
            call_id=call["id"],
            caller_org=call["caller_org"],
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
            ended_at=(accepted or start) + timedelta(minutes=self.rng.randint(1, 12)),
            time_to_answer_s=tta,
            duration_s=None,
            minutes_saved=max(0.0, wait - (tta or 0) / 60) if answered else None,
            case_id=call["case_id"],
            step=step,
            consent_level="case",
            result=result,
            selected_term=call["selected_term"] if step == 0 else None,
            result_at=accepted,
            result_by="worker" if result else None,
            right_org=self.directory.line(right).organisation_id if right else None,
            right_line=right,
        )
