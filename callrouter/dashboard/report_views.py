"""The report pages: the figures, the learning network and the live view of transfers."""

from __future__ import annotations

from datetime import timedelta

from flask import render_template, request

from callrouter import clock, services
from callrouter.dashboard import queries
from callrouter.dashboard.blueprint import bp, current_org, current_principal

# --------------------------------------------------------------------------- figures


MAX_FIGURE_DAYS = 400


@bp.get("/figures")
def figures_page():
    svc = services.current()
    tz = svc.directory.tz
    today = clock.now().astimezone(tz).date()
    last = queries.parse_day(request.args.get("to"), "to") or today
    first = queries.parse_day(request.args.get("from"), "from") or last - timedelta(days=27)
    if first > last:
        first, last = last, first
    first = max(first, last - timedelta(days=MAX_FIGURE_DAYS))
    per = request.args.get("per", "day")
    if per not in ("day", "week"):
        per = "day"
    with svc.sessions() as s:
        fig = queries.figures(s, current_org(), svc.directory, first, last, per)
        case_fig = queries.case_figures_days(s, current_org(), svc.directory, first, last)
    peak = max([b.calls for b in fig.periods] + [1])
    events = {e.id: e.name for e in svc.directory.life_events}
    return render_template(
        "dashboard/figures.html",
        fig=fig,
        first=first,
        last=last,
        per=per,
        peak=peak,
        cf=case_fig,
        event_names=events,
    )


# --------------------------------------------------------------------------- network


@bp.get("/network")
def network_page():
    """The learning network: evidence per line (with a heat map), per speech term and per
    combination of lines, and the suggested changes to the directory. Supervisors see their
    own scope with small cells hidden; admins see everything."""
    from callrouter import network

    svc = services.current()
    d = svc.directory
    today = clock.now().astimezone(d.tz).date()
    last = queries.parse_day(request.args.get("to"), "to") or today - timedelta(days=1)
    first = queries.parse_day(request.args.get("from"), "from") or last - timedelta(days=89)
    if first > last:
        first, last = last, first
    first = max(first, last - timedelta(days=MAX_FIGURE_DAYS))
    with svc.sessions() as s:
        report = network.collect_days(s, d, first, last, current_org())
    admin = current_principal().is_admin
    data = network.as_dict(report, d, admin)
    if not admin:
        data["suggestions"] = []  # changes to the directory are the administrators' business
    return render_template(
        "dashboard/network.html",
        data=data,
        first=first,
        last=last,
        admin=admin,
        weekdays=network.WEEKDAYS,
    )


# --------------------------------------------------------------------------- live


@bp.get("/live")
def live():
    return render_template("dashboard/live.html", rows=_live_rows(), now=clock.now())


@bp.get("/live/rows")
def live_rows():
    return render_template("dashboard/_live_rows.html", rows=_live_rows(), now=clock.now())


def _live_rows():
    svc = services.current()
    with svc.sessions() as s:
        return queries.live_transfers(s, current_org(), clock.now())
