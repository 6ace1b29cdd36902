"""The network report: aggregates only (no numbers, no case references).

Each line's evidence (transfers per local weekday and hour, answer times, results, speech
terms) comes from callrouter.network_cells: the daily rollup for the days it stored, the call
log for the others. Where calls went after a wrong line and which lines occur together in
cases are small look-ups of the call log. The rules of `callrouter.flows.network` turn the
evidence into suggestions. Scoped like the dashboard: an organisation sees the transfers it
made or received.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import aliased

from callrouter import db, figures, network_cells
from callrouter.figure_cells import day_start
from callrouter.flows import network as nflow
from callrouter.models import Case, NetworkCell, Transfer


def collect(
    session,
    directory,
    since: datetime,
    until: datetime,
    org: str | None = None,
    thresholds: nflow.Thresholds | None = None,
) -> nflow.Report:
    """The report over [since, until) from the call log alone: a few grouped scans of the
    period's transfers, and small look-ups for the calls that met a wrong line and the
    cases with several steps."""
    conn = session.connection()
    sink: network_cells.Sink = ({}, {})
    where = network_cells.period(since, until, org)
    network_cells.count_hours(conn, where, directory.tz, sink)
    network_cells.count_results(conn, where, sink)
    return _report(conn, directory, since, until, org, sink, thresholds)


def collect_days(
    session,
    directory,
    first: date,
    last: date,
    org: str | None = None,
    thresholds: nflow.Thresholds | None = None,
) -> nflow.Report:
    """The report over the local days first..last (the Netwerk page, `network report`):
    the days the daily rollup stored from network_cells, the others (today, the days not
    settled or not built yet) from the call log; the same report as `collect`."""
    tz = directory.tz
    conn = session.connection()
    sink: network_cells.Sink = ({}, {})
    built, rows = figures.stored_rows(
        session, NetworkCell, tz, org or figures.ADMIN, first, last, *network_cells.STORED
    )
    network_cells.add_stored(rows, sink)
    missing = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    for a, b in figures.runs([d for d in missing if d not in built]):
        where = network_cells.period(day_start(a, tz), day_start(b + timedelta(days=1), tz), org)
        network_cells.count_hours(conn, where, tz, sink)
        network_cells.count_results(conn, where, sink)
    since, until = day_start(first, tz), day_start(last + timedelta(days=1), tz)
    return _report(conn, directory, since, until, org, sink, thresholds)


def _report(conn, directory, since, until, org, sink, thresholds) -> nflow.Report:
    """The report from the lines' and terms' evidence: where calls went after a wrong line
    and the lines together in cases (small look-ups of the period), and the suggestions."""
    t = thresholds or nflow.Thresholds()
    # Lines in a fixed order, whatever order the rows came in: the suggestions follow it.
    lines, terms = dict(sorted(sink[0].items())), sink[1]
    _count_after_wrong_line(conn, since, until, org, lines, terms)
    org_of = {ln.id: ln.organisation_id for ln in directory.lines}
    case_lines = _case_lines(conn, network_cells.period(since, until, org))
    together, multi_cases = nflow.combos(case_lines, org_of)
    report = nflow.Report(
        since=since.isoformat(),
        until=until.isoformat(),
        lines=lines,
        # In a fixed order (ties by name), whatever order the rows came in.
        terms=sorted(terms.values(), key=lambda x: (-x.wrong, x.term, x.line_id)),
        combinations=sorted(together.items(), key=lambda x: (-x[1], x[0])),
        multi_cases=multi_cases,
    )
    keywords = {ln.id: tuple(k.lower() for k in ln.keywords) for ln in directory.lines}
    existing = [tuple(st.line_id for st in e.steps) for e in directory.life_events]
    report.suggestions = nflow.suggest(report, t, keywords, existing)
    return report


def _count_after_wrong_line(
    conn,
    since: datetime,
    until: datetime,
    org: str | None,
    lines: dict[str, nflow.LineStats],
    terms: dict[tuple[str, str], nflow.TermStats],
) -> None:
    """Where calls went after a wrong line, for the line and for the term that chose it."""
    # After "verkeerde lijn": the line named as the right one, or else the next transfer of
    # the same call (where the worker went next); for the line and for the term that chose it.
    # Few transfers met a wrong line: found by the result's index (the period is compared as
    # an expression, so that the time index is not walked instead).
    created = func.coalesce(Transfer.created_at, Transfer.created_at)
    wrong = and_(
        created >= since,
        created < until,
        Transfer.direction.is_(None),
        network_cells.scope(org),
        Transfer.result == "wrong-line",
    )
    nxt = aliased(Transfer)
    next_line = (
        select(nxt.line_id)
        .where(
            nxt.call_id == Transfer.call_id,
            nxt.created_at > Transfer.created_at,
            nxt.direction.is_(None),
        )
        .order_by(nxt.created_at)
        .limit(1)
        .correlate(Transfer)
        .scalar_subquery()
    )
    named = select(Transfer.line_id, Transfer.right_line, Transfer.selected_term, func.count())
    unnamed = select(Transfer.line_id, next_line, Transfer.selected_term, func.count())
    for q in (
        named.where(wrong, Transfer.right_line.is_not(None)),
        unnamed.where(wrong, Transfer.right_line.is_(None)),
    ):
        for line_id, went, term, n in db.run_raw(
            conn, q.group_by(*q.selected_columns[:3])
        ).cursor.fetchall():
            if not went or line_id not in lines:
                continue
            lines[line_id].went_next[went] += int(n)
            if term is not None and (term, line_id) in terms:
                terms[(term, line_id)].resolved_at[went] += int(n)


def _case_lines(conn, period) -> dict[str, set[str]]:
    """The lines of every case with more than one step that is not a life event already."""
    # Lines together in cases that are not a life event already. Only a case with more than
    # one step has a transfer past its first step, so few rows are read; a transfer that
    # turned out to be the wrong line is no need of the case and does not count.
    later = select(Transfer.case_id).where(
        period, Transfer.step >= 1, Transfer.case_id.is_not(None)
    )
    case_lines: dict[str, set[str]] = {}
    for case_id, line_id in db.run_raw(
        conn,
        (
            select(Transfer.case_id, Transfer.line_id)
            .join(Case, Case.id == Transfer.case_id)
            .where(
                Transfer.case_id.in_(later),
                Case.life_event.is_(None),
                Transfer.direction.is_(None),
                or_(Transfer.result.is_(None), Transfer.result != "wrong-line"),
            )
        ),
    ).cursor.fetchall():
        case_lines.setdefault(case_id, set()).add(line_id)
    return case_lines


# --------------------------------------------------------------------------- rendering

WEEKDAYS = ("ma", "di", "wo", "do", "vr", "za", "zo")


def describe(s, directory) -> str:
    """One suggestion in a sentence, with its numbers."""

    def name(line_id):
        ln = directory.line(line_id)
        org = directory.organisation(ln.organisation_id) if ln else None
        return f"{line_id} ({org.name}: {ln.topic})" if ln and org else line_id

    if isinstance(s, nflow.KeywordMove):
        return (
            f"keyword: add '{s.term}' to {name(s.to_line)} and remove it from "
            f"{name(s.from_line)}: {s.wrong} of {s.known} transfers it chose ended as wrong "
            f"line (lower bound {s.wrong_lower:.0%}), {s.moved} of those went to "
            f"{s.to_line} (lower bound {s.moved_lower:.0%})"
        )
    if isinstance(s, nflow.SlotClosed):
        days = ",".join(WEEKDAYS[d] for d in s.weekdays)
        return (
            f"slot: {name(s.line_id)} is hardly answered {s.hour:02d}:00-{s.hour + 1:02d}:00 "
            f"on {days}: {s.answered} of {s.transfers} answered (upper bound "
            f"{s.answered_upper:.0%}) against at least {s.elsewhere_lower:.0%} elsewhere in "
            f"the week; mark the hour closed or add a number to the hunt group"
        )
    return (
        f"life event: {' + '.join(name(x) for x in s.lines)} occur together in {s.cases} "
        f"of {s.base_cases} cases with more than one organisation (lower bound "
        f"{s.share_lower:.0%})"
    )


def as_dict(
    report: nflow.Report, directory, admin: bool = True, t: nflow.Thresholds | None = None
) -> dict:
    t = t or nflow.Thresholds()

    def cell(n):
        return nflow.suppress(n, t, admin)

    lines = []
    for ls in sorted(report.lines.values(), key=lambda x: (-x.transfers, x.line_id)):
        lines.append(
            {
                "line": ls.line_id,
                "transfers": cell(ls.transfers),
                "answered": cell(ls.answered),
                "answered_share": ls.answered_share,
                "median_answer_s": ls.median_answer_s,
                "resolved_share": ls.resolved_share,
                "wrong_line_share": ls.wrong_share,
                "results": {k: cell(v) for k, v in ls.results.items()},
                "went_next_after_wrong_line": {k: cell(v) for k, v in ls.went_next.most_common()},
                "heat_map": [
                    {"weekday": d, "hour": h, "transfers": cell(v[0]), "answered": cell(v[1])}
                    for (d, h), v in sorted(ls.slots.items())
                ],
            }
        )
    return {
        "since": report.since,
        "until": report.until,
        "thresholds": t.__dict__,
        "lines": lines,
        "terms": [
            {
                "term": ts.term,
                "line": ts.line_id,
                "known": cell(ts.known),
                "wrong_line": cell(ts.wrong),
                "resolved_at": {k: cell(v) for k, v in ts.resolved_at.most_common()},
            }
            for ts in report.terms
        ],
        "combinations": [{"lines": list(c), "cases": cell(n)} for c, n in report.combinations[:50]],
        "multi_organisation_cases": cell(report.multi_cases),
        "suggestions": [
            {
                "kind": s.kind,
                "text": describe(s, directory),
                **{k: (list(v) if isinstance(v, tuple) else v) for k, v in s.__dict__.items()},
            }
            for s in report.suggestions
        ],
    }


def as_text(
    report: nflow.Report, directory, admin: bool = True, t: nflow.Thresholds | None = None
) -> str:
    d = as_dict(report, directory, admin, t)

    def pct(v):
        return "-" if v is None else f"{v:.0%}"

    out = [f"callrouter network report {d['since'][:10]} .. {d['until'][:10]}", ""]
    out.append(
        f"{'line':28} {'transfers':>9} {'answered':>8} {'median s':>8} {'resolved':>8} "
        f"{'wrong':>6}  went next after a wrong line"
    )
    for ln in d["lines"]:
        nxt = ", ".join(
            f"{k} {v if v is not None else '<5'}"
            for k, v in list(ln["went_next_after_wrong_line"].items())[:3]
        )
        n = ln["transfers"] if ln["transfers"] is not None else "<5"
        out.append(
            f"{ln['line'][:28]:28} {n:>9} {pct(ln['answered_share']):>8} "
            f"{'-' if ln['median_answer_s'] is None else int(ln['median_answer_s']):>8} "
            f"{pct(ln['resolved_share']):>8} {pct(ln['wrong_line_share']):>6}  {nxt}"
        )
    out += ["", "answered share by weekday and hour (heat map), per line:"]
    for ln in d["lines"]:
        grid = {(c["weekday"], c["hour"]): c for c in ln["heat_map"]}
        hours_seen = sorted({h for _, h in grid})
        if not hours_seen:
            continue
        out.append(f"  {ln['line']}: hours {hours_seen[0]:02d}-{hours_seen[-1]:02d}")
        for wd in range(7):
            row = []
            for h in range(hours_seen[0], hours_seen[-1] + 1):
                c = grid.get((wd, h))
                if not c or not c["transfers"]:
                    row.append("  .")
                else:
                    share = (c["answered"] or 0) / c["transfers"]
                    row.append(f"{min(99, int(share * 100)):3d}")
            if any(x != "  ." for x in row):
                out.append(f"    {WEEKDAYS[wd]} " + "".join(row))
    out += ["", "speech terms that chose a line (wrong line, of transfers with a result):"]
    for ts in d["terms"][:30]:
        if ts["wrong_line"]:
            where = ", ".join(f"{k} {v}" for k, v in ts["resolved_at"].items())
            out.append(
                f"  '{ts['term']}' -> {ts['line']}: {ts['wrong_line']} of {ts['known']}"
                + (f"; went to {where}" if where else "")
            )
    out += [
        "",
        f"lines together in cases (of {d['multi_organisation_cases']} cases with more "
        "than one organisation):",
    ]
    for c in d["combinations"][:15]:
        out.append(f"  {' + '.join(c['lines'])}: {c['cases']}")
    out += ["", "suggestions:"]
    out += [f"  - {s['text']}" for s in d["suggestions"]] or [
        "  (none: the evidence supports no change)"
    ]
    return "\n".join(out) + "\n"


def patch(report: nflow.Report, directory, text: str, path: str) -> tuple[str, list]:
    """A unified diff of the directory with every suggestion that keeps it valid."""
    from callrouter import directory as directory_mod
    from callrouter.flows import directory_patch

    kept: list = []
    current = text
    for s in report.suggestions:
        candidate, applied = directory_patch.apply(current, directory, [s])
        if not applied:
            continue
        try:
            directory_mod.loads(candidate, path)
        except directory_mod.DirectoryError:
            continue
        current, kept = candidate, kept + applied
    return directory_patch.unified_diff(text, current, path), kept
