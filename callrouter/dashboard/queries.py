"""What the dashboard and the API read: scoped, filtered, keyset-paginated queries and figures.

Every query takes the asker's organisation (`org`, None for an admin) and adds the scope
itself (callrouter.dashboard.scopes), so no page can forget it: a municipality sees the calls
its staff made, an agency the calls its lines received (a municipality that is both sees both).
Pages go newest first with a cursor `(time, id)` instead of OFFSET (paging.py), so page 1,000
costs what page 1 costs.

This module holds the call log's reads (filters, the list, a call's detail, transfers for the
API, callbacks, the live view) and is the one name callers use: it re-exports the labels
(labels.py), the cases' reads (case_queries.py) and the figures (figure_report.py).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import false, or_, select, union

from callrouter.dashboard import dates
from callrouter.dashboard.case_queries import (
    CaseDetail,
    case_detail,
    case_parts,
    cases_page,
    consent_in_scope,
)
from callrouter.dashboard.figure_report import (
    Bucket,
    CaseFigures,
    Figures,
    case_figures,
    case_figures_days,
    figures,
)
from callrouter.dashboard.labels import (
    CALLBACK_STATES,
    CASE_STEP_STATES,
    CONSENT_CHOICES,
    EVENT_SOURCES,
    OUTCOMES,
    RESULTS,
    STATUSES,
    status_nl,
)
from callrouter.dashboard.paging import (
    API_PAGE_MAX,
    PAGE_SIZE,
    before,
    decode_cursor,
    encode_cursor,
)
from callrouter.dashboard.scopes import call_scope, callback_scope, transfer_scope
from callrouter.figure_cells import day_start
from callrouter.models import Call, CallbackRequest, Event, Leg, Transfer

__all__ = [
    "API_PAGE_MAX",
    "CALLBACK_STATES",
    "CASE_STEP_STATES",
    "CONSENT_CHOICES",
    "EVENT_SOURCES",
    "OUTCOMES",
    "PAGE_SIZE",
    "RESULTS",
    "STATUSES",
    "Bucket",
    "CallDetail",
    "CaseDetail",
    "CaseFigures",
    "Figures",
    "Filters",
    "call_detail",
    "call_summaries",
    "callback_in_scope",
    "callbacks_page",
    "calls_for_export",
    "calls_page",
    "case_detail",
    "case_figures",
    "case_figures_days",
    "case_parts",
    "cases_page",
    "consent_in_scope",
    "day_start",
    "decode_cursor",
    "encode_cursor",
    "figures",
    "live_transfers",
    "parse_day",
    "parse_filters",
    "parse_instant",
    "status_nl",
    "transfers_of",
    "transfers_page",
]


@dataclass(frozen=True)
class Filters:
    """The call log's filters, already validated (see `parse_filters`)."""

    since: datetime | None = None  # inclusive, UTC
    until: datetime | None = None  # exclusive, UTC
    caller_org: str | None = None
    target_org: str | None = None
    line_id: str | None = None
    outcome: str | None = None
    urgent: bool | None = None
    organisation: str | None = None  # either side (the API's filter)


def parse_day(value: str | None, field: str = "date") -> date | None:
    """An ISO date; None when there is none or it is no date; outside the calendar window
    the dashboard works in, `DateOutOfRange` (answered with 400)."""
    try:
        day = date.fromisoformat(value) if value else None
    except ValueError:
        return None
    return dates.in_window(day, field) if day is not None else None


def parse_instant(value: str | None, tz: ZoneInfo, field: str = "date") -> datetime | None:
    """An ISO date or date-time (local time when it has no offset) as a UTC instant; outside
    the calendar window, `DateOutOfRange`."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    dates.moment_in_window(moment, field)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC)


def parse_filters(args, directory) -> tuple[Filters, dict]:
    """Filters from query arguments; unknown ids and bad values are dropped, never an error.

    Returns the filters and the cleaned arguments (to build links and fill the form)."""
    tz = directory.tz
    clean: dict = {}
    since = until = None
    d_from, d_to = parse_day(args.get("from"), "from"), parse_day(args.get("to"), "to")
    if d_from:
        since, clean["from"] = day_start(d_from, tz), d_from.isoformat()
    if d_to:
        until, clean["to"] = day_start(d_to + timedelta(days=1), tz), d_to.isoformat()
    caller = args.get("caller") or None
    if caller and directory.caller(caller) is None and directory.organisation(caller) is None:
        caller = None
    target = args.get("target") or None
    if target and directory.organisation(target) is None:
        target = None
    line = args.get("line") or None
    if line and directory.line(line) is None:
        line = None
    outcome = args.get("outcome") or None
    if outcome and outcome not in OUTCOMES:
        outcome = None
    urgent = {"1": True, "0": False}.get(args.get("urgent", ""))
    for key, value in (
        ("caller", caller),
        ("target", target),
        ("line", line),
        ("outcome", outcome),
    ):
        if value:
            clean[key] = value
    if urgent is not None:
        clean["urgent"] = "1" if urgent else "0"
    return Filters(
        since=since,
        until=until,
        caller_org=caller,
        target_org=target,
        line_id=line,
        outcome=outcome,
        urgent=urgent,
    ), clean


# --------------------------------------------------------------------------- call log


def _call_filters(q, f: Filters):
    if f.since:
        q = q.where(Call.received_at >= f.since)
    if f.until:
        q = q.where(Call.received_at < f.until)
    if f.caller_org:
        q = q.where(Call.caller_org == f.caller_org)
    if f.target_org:
        q = q.where(Call.target_org == f.target_org)
    if f.line_id:
        q = q.where(Call.line_id == f.line_id)
    if f.outcome:
        q = q.where(Call.outcome == f.outcome)
    if f.urgent is not None:
        q = q.where(Call.urgent.is_(f.urgent))
    if f.organisation:
        q = q.where(or_(Call.caller_org == f.organisation, Call.target_org == f.organisation))
    return q


def calls_page(session, org: str | None, f: Filters, cursor=None, limit: int = PAGE_SIZE):
    """One page of the call log, newest first; returns (rows, next cursor or None)."""
    q = _call_filters(select(Call).where(call_scope(org)), f)
    if cursor:
        q = q.where(before(Call.received_at, Call.id, cursor))
    rows = session.scalars(
        q.order_by(Call.received_at.desc(), Call.id.desc()).limit(limit + 1)
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = encode_cursor(rows[-1].received_at, rows[-1].id) if more else None
    return rows, nxt


def transfers_of(session, call_ids: list[str]) -> dict[str, list[Transfer]]:
    out: dict[str, list[Transfer]] = defaultdict(list)
    if call_ids:
        for tr in session.scalars(
            select(Transfer).where(Transfer.call_id.in_(call_ids)).order_by(Transfer.created_at)
        ):
            out[tr.call_id].append(tr)
    return out


def call_summaries(session, calls) -> dict[str, tuple[float | None, float]]:
    """Per call: the first transfer's time to answer and the minutes saved by all of them."""
    transfers = transfers_of(session, [c.id for c in calls])
    out = {}
    for c in calls:
        trs = transfers.get(c.id, [])
        tta = next((t.time_to_answer_s for t in trs if t.time_to_answer_s is not None), None)
        out[c.id] = (tta, sum(t.minutes_saved or 0 for t in trs))
    return out


def calls_for_export(session, org: str | None, f: Filters, limit: int = 100_000):
    q = _call_filters(select(Call).where(call_scope(org)), f)
    q = q.order_by(Call.received_at.desc(), Call.id.desc()).limit(limit)
    return session.execute(q.execution_options(yield_per=1000)).scalars()


@dataclass
class CallDetail:
    call: Call
    transfers: list[Transfer]
    legs: dict[str, list[Leg]]
    callbacks: list[CallbackRequest]
    timeline: list[tuple[datetime, str, str]]  # (when, what, detail), in Dutch sentences
    events: list[tuple[datetime, str]]  # the provider's raw events, for whoever needs them
    people: list[tuple[str, str, str, float | None]]  # (who, number, part, seconds in it)
    duration_s: float | None  # the call's, from its end when the provider gave none


def call_detail(session, org: str | None, call_id: str, directory=None) -> CallDetail | None:
    call = session.scalar(select(Call).where(Call.id == call_id, call_scope(org)))
    if call is None:
        return None
    transfers = list(
        session.scalars(
            select(Transfer).where(Transfer.call_id == call.id).order_by(Transfer.created_at)
        )
    )
    ids = [t.id for t in transfers]
    legs: dict[str, list[Leg]] = defaultdict(list)
    if ids:
        for leg in session.scalars(
            select(Leg).where(Leg.transfer_id.in_(ids)).order_by(Leg.created_at, Leg.position)
        ):
            legs[leg.transfer_id].append(leg)
    cbs = list(session.scalars(select(CallbackRequest).where(CallbackRequest.call_id == call.id)))
    events = session.scalars(
        select(Event)
        .where(or_(Event.call_id == call.id, Event.transfer_id.in_(ids) if ids else false()))
        .order_by(Event.received_at, Event.id)
        .limit(500)
    ).all()
    timeline: list[tuple[datetime, str, str]] = [(call.received_at, "gesprek binnengekomen", "")]

    def line_label(line_id):
        line = directory.line(line_id) if directory is not None else None
        if line is None:
            return line_id or ""
        return f"{directory.organisation(line.organisation_id).name}: {line.topic}"

    if call.menu_done_at:
        timeline.append((call.menu_done_at, "keuze gemaakt", line_label(call.line_id)))
    for t in transfers:
        timeline.append((t.created_at, "doorverbinden gestart", line_label(t.line_id)))
        for stamp, what in (
            (t.ringing_at, "professional gaat over"),
            (t.accepted_at, "professional neemt aan"),
            (t.citizen_added_at, "inwoner toegevoegd"),
            (t.worker_left_at, "medewerker verlaat het gesprek"),
            (t.ended_at, "doorverbinding beëindigd"),
        ):
            if stamp:
                timeline.append((stamp, what, line_label(t.line_id)))
        for leg in legs.get(t.id, []):
            label = "inwoner" if leg.kind == "citizen" else f"nummer {leg.position + 1}"
            timeline.append((leg.created_at, f"{label} gebeld", leg.number_masked or ""))
            if leg.ended_at:
                timeline.append(
                    (leg.ended_at, f"{label}: {status_nl(leg.outcome or leg.status)}", "")
                )
    for cb in cbs:
        timeline.append((cb.requested_at, "terugbelverzoek vastgelegd", cb.reference))
        if cb.done_at:
            state = CALLBACK_STATES.get(cb.state, cb.state)
            timeline.append((cb.done_at, f"terugbelverzoek {state}", cb.reference))
    raw = [
        (ev.received_at, f"{EVENT_SOURCES.get(ev.source, ev.source)}: {status_nl(ev.event)}")
        for ev in events
    ]
    if call.ended_at:
        timeline.append(
            (
                call.ended_at,
                "gesprek beëindigd",
                OUTCOMES.get(call.outcome or "", call.outcome or ""),
            )
        )
    timeline.sort(key=lambda item: item[0])
    duration = call.duration_s
    if duration is None and call.ended_at is not None:
        duration = (call.ended_at - call.received_at).total_seconds()
    people = [p for t in transfers for p in _people(t, legs.get(t.id, []), line_label)]
    return CallDetail(call, transfers, legs, cbs, timeline, raw, people, duration)


def _people(t: Transfer, legs: list[Leg], line_label) -> list[tuple[str, str, str, float | None]]:
    """Who was rung for a transfer, the part each had, and how long each was in the call."""
    out = []
    for leg in legs:
        if leg.kind == "citizen":
            who = "inwoner"
        elif t.direction == "to-worker":
            who = "medewerker van de gemeente (de weg terug)"
        else:
            who = f"professional, {line_label(t.line_id)}"
        joined = leg.accepted_at if leg.kind != "citizen" else (leg.answered_at or leg.accepted_at)
        left = leg.left_at or leg.ended_at
        seconds = (left - joined).total_seconds() if joined and left and left > joined else None
        if joined is not None:
            part = "in het gesprek"
        else:
            part = status_nl(leg.outcome or leg.status)
        out.append((who, leg.number_masked or "-", part, seconds))
    return out


# --------------------------------------------------------------------------- transfers (API)


def transfers_page(session, org: str | None, since, until, organisation, cursor, limit):
    conds = []
    if since:
        conds.append(Transfer.created_at >= since)
    if until:
        conds.append(Transfer.created_at < until)
    if organisation:
        conds.append(or_(Transfer.caller_org == organisation, Transfer.target_org == organisation))
    if cursor:
        conds.append(before(Transfer.created_at, Transfer.id, cursor))
    newest = (Transfer.created_at.desc(), Transfer.id.desc())
    if org is None:
        q = select(Transfer).where(*conds)
    else:
        # The scope "made or received" as two branches, each walking its own
        # (organisation, time) index newest first and stopping at the page size; an OR would
        # collect and sort every transfer of the organisation first.
        branches = [
            select(Transfer.id)
            .where(col == org, *conds)
            .order_by(*newest)
            .limit(limit + 1)
            .subquery()
            for col in (Transfer.caller_org, Transfer.target_org)
        ]
        ids = union(*(select(b.c.id) for b in branches)).subquery()
        q = select(Transfer).where(Transfer.id.in_(select(ids.c.id)))
    rows = session.scalars(q.order_by(*newest).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1].created_at, rows[-1].id) if more else None)


# --------------------------------------------------------------------------- callbacks


def callbacks_page(
    session,
    org: str | None,
    state: str,
    since=None,
    until=None,
    organisation=None,
    cursor=None,
    limit: int = PAGE_SIZE,
):
    """Callback requests, newest request first; `state` is open, done or all."""
    from callrouter.callbacks import OPEN

    q = select(CallbackRequest).where(callback_scope(org))
    if state == "open":
        q = q.where(CallbackRequest.state.in_(OPEN))
    elif state == "done":
        q = q.where(CallbackRequest.state.not_in(OPEN))
    if since:
        q = q.where(CallbackRequest.requested_at >= since)
    if until:
        q = q.where(CallbackRequest.requested_at < until)
    if organisation:
        q = q.where(
            or_(
                CallbackRequest.caller_org == organisation,
                CallbackRequest.target_org == organisation,
            )
        )
    if cursor:
        q = q.where(before(CallbackRequest.requested_at, CallbackRequest.id, cursor))
    rows = session.scalars(
        q.order_by(CallbackRequest.requested_at.desc(), CallbackRequest.id.desc()).limit(limit + 1)
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1].requested_at, rows[-1].id) if more else None)


def callback_in_scope(session, org: str | None, request_id: str) -> CallbackRequest | None:
    return session.scalar(
        select(CallbackRequest).where(CallbackRequest.id == request_id, callback_scope(org))
    )


# --------------------------------------------------------------------------- live view


def live_transfers(session, org: str | None, moment: datetime, limit: int = 200):
    """Transfers in progress (ringing or talking) started in the last 12 hours."""
    q = (
        select(Transfer)
        .where(
            transfer_scope(org),
            Transfer.state != "ended",
            Transfer.created_at >= moment - timedelta(hours=12),
        )
        .order_by(Transfer.created_at.desc())
        .limit(limit)
    )
    return session.scalars(q).all()
