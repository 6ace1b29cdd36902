"""The learning network's evidence and suggestions: pure functions over aggregated counts.

The database side (`callrouter.network`) hands in counts; this module turns them into the
report (per line, per speech term, per combination of lines) and into suggestions for the
directory. A suggestion needs a minimum sample and a lower confidence bound (Wilson's score
interval) above a threshold, so that noise suggests nothing:

- keyword: a term that chose line L ended as "verkeerde lijn" in at least WRONG_SHARE of the
  transfers with a known result (lower bound), and most of those went on to one line M (lower
  bound of M's share of them at least DESTINATION_SHARE): add the term to M, remove it from L;
- slot: a line's answered share in one hour of some weekdays has an upper bound below
  SLOT_ANSWERED while the rest of its week has a lower bound of at least LINE_ANSWERED:
  mark that hour closed (or add a number to the hunt group);
- life event: two or three lines of different organisations occur together in at least
  MIN_SAMPLE cases, and in at least CO_SHARE (lower bound) of all cases that needed more than
  one organisation (and are not a life event already): a new life event with those steps.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations


@dataclass(frozen=True)
class Thresholds:
    """Documented defaults; each can be set with `flask network report --...`."""

    min_sample: int = 30  # observations before anything is suggested
    z: float = 1.96  # 95% two-sided confidence for the Wilson bounds
    wrong_share: float = 0.30  # lower bound of "verkeerde lijn" for a keyword move
    destination_share: float = 0.50  # lower bound of the one line they went to instead
    slot_answered: float = 0.50  # upper bound of the answered share in the slot
    line_answered: float = 0.70  # lower bound of the answered share elsewhere in the week
    co_share: float = 0.05  # lower bound of the combination's share of multi-organisation cases
    min_cell: int = 5  # cells smaller than this are hidden from supervisors (not admins)


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson's score interval for a proportion: (lower, upper); (0, 1) when n == 0."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


# --------------------------------------------------------------------------- evidence


@dataclass
class LineStats:
    line_id: str
    transfers: int = 0
    answered: int = 0
    slots: dict = field(default_factory=dict)  # (weekday, hour) -> [transfers, answered]
    answer_times: Counter = field(default_factory=Counter)  # whole seconds -> count
    results: Counter = field(default_factory=Counter)  # resolved | partial | ... -> count
    went_next: Counter = field(default_factory=Counter)  # after "verkeerde lijn": line -> n

    @property
    def known(self) -> int:
        return sum(n for r, n in self.results.items() if r not in (None, "unknown"))

    @property
    def resolved_share(self) -> float | None:
        return self.results.get("resolved", 0) / self.known if self.known else None

    @property
    def wrong_share(self) -> float | None:
        return self.results.get("wrong-line", 0) / self.known if self.known else None

    @property
    def answered_share(self) -> float | None:
        return self.answered / self.transfers if self.transfers else None

    @property
    def median_answer_s(self) -> float | None:
        total = sum(self.answer_times.values())
        if not total:
            return None
        half = (total + 1) / 2
        seen = 0
        for value in sorted(self.answer_times):
            seen += self.answer_times[value]
            if seen >= half:
                return float(value)
        return None


@dataclass
class TermStats:
    term: str
    line_id: str
    known: int = 0  # transfers with a known result
    wrong: int = 0
    resolved_at: Counter = field(default_factory=Counter)  # line where it went instead -> n


@dataclass
class Report:
    since: str
    until: str
    lines: dict[str, LineStats]
    terms: list[TermStats]
    combinations: list[tuple[tuple[str, ...], int]]  # (lines, cases), most common first
    multi_cases: int  # cases with lines of more than one organisation (not life events)
    suggestions: list = field(default_factory=list)


def combos(case_lines: dict[str, set[str]], org_of: dict[str, str]) -> tuple[Counter, int]:
    """Pairs and triples of lines of different organisations per case, and the number of
    cases with more than one organisation."""
    together: Counter = Counter()
    multi = 0
    for lines in case_lines.values():
        lines = {ln for ln in lines if ln in org_of}
        if len({org_of[ln] for ln in lines}) < 2:
            continue
        multi += 1
        ordered = sorted(lines)
        for size in (2, 3):
            for combo in combinations(ordered, size):
                if len({org_of[ln] for ln in combo}) == size:
                    together[combo] += 1
    return together, multi


# --------------------------------------------------------------------------- suggestions


@dataclass(frozen=True)
class KeywordMove:
    term: str
    from_line: str
    to_line: str
    known: int
    wrong: int
    moved: int
    wrong_lower: float
    moved_lower: float
    kind: str = "keyword"


@dataclass(frozen=True)
class SlotClosed:
    line_id: str
    hour: int
    weekdays: tuple[int, ...]  # 0 = Monday
    transfers: int
    answered: int
    answered_upper: float
    elsewhere_lower: float
    kind: str = "slot"


@dataclass(frozen=True)
class NewLifeEvent:
    lines: tuple[str, ...]
    cases: int
    base_cases: int
    share_lower: float
    kind: str = "life-event"


def suggest(
    report: Report,
    t: Thresholds,
    keywords_of: dict[str, tuple[str, ...]],
    existing_events: list[tuple[str, ...]],
) -> list:
    """The suggestions the evidence supports; none from noise."""
    out: list = []
    for ts in report.terms:
        if ts.known < t.min_sample or ts.wrong < 1:
            continue
        wrong_lo, _ = wilson(ts.wrong, ts.known, t.z)
        if wrong_lo < t.wrong_share or not ts.resolved_at:
            continue
        to_line, moved = ts.resolved_at.most_common(1)[0]
        moved_lo, _ = wilson(moved, ts.wrong, t.z)
        if (
            moved_lo >= t.destination_share
            and to_line != ts.line_id
            and ts.term not in keywords_of.get(to_line, ())
        ):
            out.append(
                KeywordMove(
                    ts.term,
                    ts.line_id,
                    to_line,
                    ts.known,
                    ts.wrong,
                    moved,
                    round(wrong_lo, 3),
                    round(moved_lo, 3),
                )
            )
    for line in report.lines.values():
        for hour in range(24):
            # The weekdays on which this hour is mostly unanswered, pooled: the bound is taken
            # over all of them together, so that a few weeks of evidence suffice.
            days, n_slot, a_slot = [], 0, 0
            for weekday in range(7):
                n, a = line.slots.get((weekday, hour), (0, 0))
                if n and a / n < t.slot_answered:
                    days.append(weekday)
                    n_slot, a_slot = n_slot + n, a_slot + a
            if (
                not days
                or n_slot < t.min_sample
                or wilson(a_slot, n_slot, t.z)[1] >= t.slot_answered
            ):
                continue
            rest_n, rest_a = line.transfers - n_slot, line.answered - a_slot
            rest_lo, _ = wilson(rest_a, rest_n, t.z)
            if rest_n >= t.min_sample and rest_lo >= t.line_answered:
                out.append(
                    SlotClosed(
                        line.line_id,
                        hour,
                        tuple(days),
                        n_slot,
                        a_slot,
                        round(wilson(a_slot, n_slot, t.z)[1], 3),
                        round(rest_lo, 3),
                    )
                )
    events = {tuple(sorted(e)) for e in existing_events}
    chosen: list[NewLifeEvent] = []
    for combo, n in sorted(report.combinations, key=lambda c: (-len(c[0]), -c[1])):
        if n < t.min_sample or tuple(sorted(combo)) in events:
            continue
        if any(set(combo) <= set(c.lines) for c in chosen):
            continue  # a pair inside a triple already suggested
        lo, _ = wilson(n, report.multi_cases, t.z)
        if lo >= t.co_share:
            chosen.append(NewLifeEvent(tuple(combo), n, report.multi_cases, round(lo, 3)))
    return out + chosen


def suppress(count: int | None, t: Thresholds, admin: bool) -> int | None:
    """A count as a supervisor outside the admin role may see it: small cells hidden."""
    if admin or count is None or count == 0 or count >= t.min_cell:
        return count
    return None
