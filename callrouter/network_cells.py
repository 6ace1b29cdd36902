"""The network report's per-line evidence from the call log, and its rollup per local day.

The database groups a period's transfers (per line and UTC hour; per line, speech term, whole
second and result); Python folds UTC hours into local weekdays and hours and the groups into
`LineStats` and `TermStats` (callrouter.flows.network). The same groups, computed for one
local day and every viewer (the admin and each organisation that made or received a
transfer), are what the daily rollup stores in `network_cells` (callrouter.figures), so that
a year's report reads a few thousand stored cells instead of a million transfers. Everything
here adds up: a period's evidence is the sum of its days', stored or computed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, or_, select

from callrouter import db
from callrouter.figure_cells import ADMIN, day_start
from callrouter.flows import network as nflow
from callrouter.models import NetworkCell, Transfer

Lines = dict[str, nflow.LineStats]
Terms = dict[tuple[str, str], nflow.TermStats]
Sink = tuple[Lines, Terms]  # the evidence of one viewer (of one day, for the rollup)
# Where a row's counts go: one sink for a viewer's report, or per (caller, target) of the
# transfers counted in it, the sinks of every viewer who sees them (the rollup).
Sinks = Callable[[str | None, str | None], Iterable[Sink]]


def scope(org: str | None, model=Transfer):
    """An organisation sees the transfers it made or received; the admin all."""
    if org is None:
        return True
    return or_(model.caller_org == org, model.target_org == org)


def period(since: datetime, until: datetime, org: str | None = None):
    """The transfers to professional lines (not the way back) of [since, until) in scope."""
    return and_(
        Transfer.created_at >= since,
        Transfer.created_at < until,
        Transfer.direction.is_(None),
        scope(org),
    )


def line_stats(lines: Lines, line_id: str) -> nflow.LineStats:
    """The line's figures so far (new, empty ones for a line not seen yet)."""
    stats = lines.get(line_id)
    if stats is None:
        stats = lines[line_id] = nflow.LineStats(line_id)
    return stats


def _route(sinks: Sinks | Sink) -> tuple[bool, Sinks]:
    """Whether rows are grouped per organisations too, and where each row's counts go."""
    if callable(sinks):
        return True, sinks
    one: Sink = sinks
    return False, lambda _caller, _target: (one,)


def _grouped(conn, keys: list, aggregates: list, where, per_orgs: bool) -> list[tuple]:
    """Plain driver rows (keys..., [caller, target,] aggregates...) grouped by the keys, and
    by the caller and target organisations too when the counts go to several viewers."""
    orgs = [Transfer.caller_org, Transfer.target_org] if per_orgs else []
    stmt = select(*keys, *orgs, *aggregates).where(where).group_by(*keys, *orgs)
    return db.run_raw(conn, stmt).cursor.fetchall()


def count_hours(conn, where, tz: ZoneInfo, sinks: Sinks | Sink) -> None:
    """Transfers and answered transfers per line, in total and per local weekday and hour."""
    # Grouped by the database (a few thousand groups, no conversion); UTC hours are folded
    # into local weekdays and hours here (DST-safe). In a zone whose offset is not whole
    # hours (India, Nepal) a UTC hour counts in the local hour it starts in.
    hour = db.utc_text(conn.dialect, Transfer.created_at, "hour")
    answered = func.sum(case((Transfer.accepted_at.is_not(None), 1), else_=0))
    per_orgs, route = _route(sinks)
    rows = _grouped(conn, [Transfer.line_id, hour], [answered, func.count()], where, per_orgs)
    local_of: dict[str, tuple[int, int]] = {}
    for row in rows:
        line_id, h = row[0], row[1]
        a, n = int(row[-2] or 0), int(row[-1])
        slot_key = local_of.get(h)
        if slot_key is None:
            local = datetime.strptime(h, "%Y-%m-%d %H").replace(tzinfo=UTC).astimezone(tz)
            slot_key = local_of[h] = (local.weekday(), local.hour)
        for lines, _terms in route(*(row[2:4] if per_orgs else (None, None))):
            stats = line_stats(lines, line_id)
            slot = stats.slots.setdefault(slot_key, [0, 0])
            slot[0] += n
            slot[1] += a
            stats.transfers += n
            stats.answered += a


def count_results(conn, where, sinks: Sinks | Sink) -> None:
    """Answer times and results per line; per (speech term, line) how often it was wrong."""
    secs = db.whole_seconds(conn.dialect, Transfer.time_to_answer_s)
    per_orgs, route = _route(sinks)
    keys = [Transfer.line_id, Transfer.selected_term, secs, Transfer.result]
    for row in _grouped(conn, keys, [func.count()], where, per_orgs):
        line_id, term, sec, result = row[:4]
        n = int(row[-1])
        for lines, terms in route(*(row[4:6] if per_orgs else (None, None))):
            stats = line_stats(lines, line_id)
            if sec is not None:
                stats.answer_times[int(sec)] += n
            stats.results[result or "unknown"] += n
            if term is None:
                continue
            # Per speech term: the transfers to the line that the term chose.
            ts = terms.get((term, line_id))
            if ts is None:
                ts = terms[(term, line_id)] = nflow.TermStats(term, line_id)
            if result not in (None, "unknown"):
                ts.known += n
                if result == "wrong-line":
                    ts.wrong += n


# --------------------------------------------------------------------------- the rollup


def day_cells(session, tz: ZoneInfo, first: date, last: date) -> dict[tuple[date, str], Sink]:
    """(local day, viewer) -> the evidence of the days first..last for every viewer: the
    admin and each organisation that made or received one of the day's transfers."""
    conn = session.connection()
    out: dict[tuple[date, str], Sink] = {}
    day = first
    while day <= last:
        where = period(day_start(day, tz), day_start(day + timedelta(days=1), tz))

        def sinks(caller, target, day=day):
            for viewer in (ADMIN, *{o for o in (caller, target) if o}):
                sink = out.get((day, viewer))
                if sink is None:
                    sink = out[(day, viewer)] = ({}, {})
                yield sink

        count_hours(conn, where, tz, sinks)
        count_results(conn, where, sinks)
        day += timedelta(days=1)
    return out


def rows(tz: ZoneInfo, cells: dict[tuple[date, str], Sink]) -> list[dict]:
    """The cells as network_cells rows: one per (day, viewer, line), its terms inside."""
    out = []
    for (day, viewer), (lines, terms) in sorted(cells.items()):
        by_line: dict[str, dict] = {}
        for (term, line_id), ts in sorted(terms.items()):
            by_line.setdefault(line_id, {})[term] = [ts.known, ts.wrong]
        for line_id, st in sorted(lines.items()):
            out.append(
                {
                    "tz": tz.key,
                    "viewer": viewer,
                    "day": day,
                    "line_id": line_id,
                    "transfers": st.transfers,
                    "answered": st.answered,
                    "slots": {f"{d} {h}": v for (d, h), v in sorted(st.slots.items())},
                    "answer_times": {str(k): v for k, v in sorted(st.answer_times.items())},
                    "results": dict(sorted(st.results.items())),
                    "terms": by_line.get(line_id, {}),
                }
            )
    return out


# The columns of a stored cell that `add_stored` reads (figures.stored_rows).
STORED = (
    NetworkCell.day,
    NetworkCell.line_id,
    NetworkCell.transfers,
    NetworkCell.answered,
    NetworkCell.slots,
    NetworkCell.answer_times,
    NetworkCell.results,
    NetworkCell.terms,
)


def add_stored(stored: list[tuple], sink: Sink) -> None:
    """Add stored cells (rows of the STORED columns) to `sink`."""
    lines, terms = sink
    for _day, line_id, n, a, slots, answers, results, line_terms in stored:
        st = line_stats(lines, line_id)
        st.transfers += n
        st.answered += a
        for key, (sn, sa) in (slots or {}).items():
            d, h = key.split()
            slot = st.slots.setdefault((int(d), int(h)), [0, 0])
            slot[0] += sn
            slot[1] += sa
        st.answer_times.update(Counter({int(k): v for k, v in (answers or {}).items()}))
        st.results.update(Counter(results or {}))
        for term, (known, wrong) in (line_terms or {}).items():
            ts = terms.get((term, line_id))
            if ts is None:
                ts = terms[(term, line_id)] = nflow.TermStats(term, line_id)
            ts.known += known
            ts.wrong += wrong
