"""What the dashboard and the API read: scoped, filtered, keyset-paginated queries and figures.

Every query takes the asker's organisation (`org`, None for an admin) and adds the scope
itself, so no page can forget it: a municipality sees the calls its staff made, an agency the
calls its lines received (a municipality that is both sees both). Pages go newest first with a
cursor `(time, id)` instead of OFFSET, so page 1,000 costs what page 1 costs.
"""

from __future__ import annotations

import base64
import binascii
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, exists, false, func, or_, select, union

from callrouter import cases as cases_mod
from callrouter import figures as figures_mod
from callrouter.figures import day_start
from callrouter.models import Call, CallbackRequest, Case, CaseStep, Consent, Event, Leg, Transfer

PAGE_SIZE = 50
API_PAGE_MAX = 500

# Outcomes as supervisors read them (Dutch); unknown values are shown as stored.
OUTCOMES = {
    "connected": "verbonden",
    "declined": "geweigerd",
    "no-answer": "niet opgenomen",
    "busy": "in gesprek",
    "failed": "mislukt",
    "abandoned": "opgehangen",
    "cancelled": "afgebroken",
    "closed": "lijn gesloten",
    "callback-requested": "terugbelverzoek",
    "locked": "geblokkeerd (pincode)",
    "menu-failed": "geen keuze gemaakt",
    "reconstructed": "achteraf gereconstrueerd",
}
# Twilio's call and leg states and our leg outcomes, as supervisors read them.
STATUSES = {
    "queued": "in de wachtrij",
    "initiated": "gestart",
    "ringing": "gaat over",
    "in-progress": "in gesprek",
    "answered": "opgenomen",
    "completed": "beëindigd",
    "busy": "in gesprek (bezet)",
    "no-answer": "niet opgenomen",
    "failed": "mislukt",
    "canceled": "afgebroken",
    "cancelled": "afgebroken",
    "accepted": "aangenomen",
    "declined": "geweigerd",
    "conference-start": "conferentie gestart",
    "conference-end": "conferentie beëindigd",
    "participant-join": "deelnemer erbij",
    "participant-leave": "deelnemer weg",
    "participant-hold": "deelnemer in de wacht",
    "participant-unhold": "deelnemer uit de wacht",
}
EVENT_SOURCES = {
    "call": "gesprek",
    "leg": "uitgaand gesprek",
    "conference": "conferentie",
    "voice": "gesprek",
    "callback": "terugbelgesprek",
}


def status_nl(value: str | None) -> str:
    return STATUSES.get(value or "", value or "-")


RESULTS = {
    "resolved": "opgelost",
    "partial": "deels, vervolg nodig",
    "unresolved": "niet opgelost",
    "wrong-line": "verkeerde lijn",
    "unknown": "onbekend",
}
CALLBACK_STATES = {
    "pending": "gepland",
    "dialling": "professional wordt gebeld",
    "connecting": "medewerker wordt gebeld",
    "connected": "verbonden",
    "done": "afgerond",
    "failed": "mislukt",
    "cancelled": "geannuleerd",
}


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


def parse_day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def parse_instant(value: str | None, tz: ZoneInfo) -> datetime | None:
    """An ISO date or date-time (local time when it has no offset) as a UTC instant."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC)


def parse_filters(args, directory) -> tuple[Filters, dict]:
    """Filters from query arguments; unknown ids and bad values are dropped, never an error.

    Returns the filters and the cleaned arguments (to build links and fill the form)."""
    tz = directory.tz
    clean: dict = {}
    since = until = None
    d_from, d_to = parse_day(args.get("from")), parse_day(args.get("to"))
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


# --------------------------------------------------------------------------- scope


def call_scope(org: str | None):
    """A municipality's calls, or the calls that reached an organisation's lines (the chosen
    line, or any transfer of the call, such as the steps of a life-event chain)."""
    if org is None:
        return True
    return or_(
        Call.caller_org == org,
        Call.target_org == org,
        exists().where(Transfer.call_id == Call.id, Transfer.target_org == org),
    )


def transfer_scope(org: str | None):
    return True if org is None else or_(Transfer.caller_org == org, Transfer.target_org == org)


def case_scope(org: str | None):
    """A municipality's cases, or the cases an organisation took part in (a step or a
    consent); never a case it was not part of."""
    if org is None:
        return True
    return or_(Case.caller_org == org, cases_mod.involves(org))


def callback_scope(org: str | None):
    return (
        True
        if org is None
        else or_(CallbackRequest.caller_org == org, CallbackRequest.target_org == org)
    )


# --------------------------------------------------------------------------- cursors


def encode_cursor(moment: datetime, ident: str) -> str:
    raw = f"{moment.astimezone(UTC).isoformat()}|{ident}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if not cursor or len(cursor) > 200:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, ident = raw.split("|", 1)
        moment = datetime.fromisoformat(stamp)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if moment.tzinfo is None or len(ident) > 64:
        return None
    return moment.astimezone(UTC), ident


def _before(col_time, col_id, cursor):
    moment, ident = cursor
    return or_(col_time < moment, and_(col_time == moment, col_id < ident))


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
        q = q.where(_before(Call.received_at, Call.id, cursor))
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
    timeline: list[tuple[datetime, str, str]]  # (when, what, detail)


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
    for ev in events:
        timeline.append(
            (
                ev.received_at,
                f"melding {EVENT_SOURCES.get(ev.source, ev.source)}: {status_nl(ev.event)}",
                "",
            )
        )
    if call.ended_at:
        timeline.append(
            (
                call.ended_at,
                "gesprek beëindigd",
                OUTCOMES.get(call.outcome or "", call.outcome or ""),
            )
        )
    timeline.sort(key=lambda item: item[0])
    return CallDetail(call, transfers, legs, cbs, timeline)


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
        conds.append(_before(Transfer.created_at, Transfer.id, cursor))
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
        q = q.where(_before(CallbackRequest.requested_at, CallbackRequest.id, cursor))
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


# --------------------------------------------------------------------------- figures


@dataclass
class Bucket:
    """Figures of one period (a day, a week), an organisation or a line."""

    label: str
    calls: int = 0
    connected: int = 0
    callbacks: int = 0
    minutes_saved: float = 0.0
    answer_times: Counter = field(default_factory=Counter)  # whole seconds -> count

    @property
    def connected_share(self) -> float | None:
        return self.connected / self.calls if self.calls else None

    @property
    def median_answer_s(self) -> float | None:
        total = sum(self.answer_times.values())
        if not total:
            return None
        values = sorted(self.answer_times.elements())
        return float(statistics.median(values))


@dataclass
class Figures:
    periods: list[Bucket]
    organisations: list[Bucket]
    lines: list[Bucket]
    total: Bucket


def figures(
    session, org: str | None, directory, first: date, last: date, granularity: str = "day"
) -> Figures:
    """Calls, share connected, median time to answer, callbacks and minutes saved, per day or
    week, per organisation and per line, over the local days `first`..`last`.

    Local days come from callrouter.figures (the rollup of settled days, the call log for the
    others); here they are folded into periods, organisations and lines."""
    tz = directory.tz
    periods: dict[date, Bucket] = {}
    day = first
    while day <= last:
        key = day - timedelta(days=day.weekday()) if granularity == "week" else day
        periods.setdefault(key, Bucket(_period_label(key, granularity)))
        day += timedelta(days=1)
    orgs: dict[str, Bucket] = {}
    lines: dict[str, Bucket] = {}
    total = Bucket("totaal")

    def org_bucket(org_id):
        bucket = orgs.get(org_id or "-")
        if bucket is None:
            o = directory.organisation(org_id)
            bucket = orgs[org_id or "-"] = Bucket(o.name if o else (org_id or "geen keuze"))
        return bucket

    def line_bucket(line_id):
        bucket = lines.get(line_id or "-")
        if bucket is None:
            ln = directory.line(line_id)
            label = (
                f"{directory.organisation(ln.organisation_id).name}: {ln.topic}"
                if ln
                else (line_id or "geen lijn")
            )
            bucket = lines[line_id or "-"] = Bucket(label)
        return bucket

    for (day, target, line_id), c in figures_mod.daily(session, tz, org, first, last).items():
        key = day - timedelta(days=day.weekday()) if granularity == "week" else day
        for b in (periods[key], org_bucket(target or None), line_bucket(line_id or None), total):
            b.calls += c.calls
            b.connected += c.connected
            b.callbacks += c.callbacks
            b.minutes_saved += c.minutes_saved
            b.answer_times.update(c.answer_times)

    return Figures(
        periods=[periods[k] for k in sorted(periods)],
        organisations=sorted(orgs.values(), key=lambda b: -b.calls),
        lines=sorted(lines.values(), key=lambda b: -b.calls),
        total=total,
    )


_WEEKDAYS = ("ma", "di", "wo", "do", "vr", "za", "zo")


def _period_label(day: date, granularity: str) -> str:
    if granularity == "week":
        iso = day.isocalendar()
        return f"week {iso.week} ({iso.year})"
    return f"{_WEEKDAYS[day.weekday()]} {day.day}-{day.month}"


# --------------------------------------------------------------------------- cases


CASE_STEP_STATES = {
    "pending": "nog te doen",
    "ringing": "gaat over",
    "connected": "in gesprek",
    "done": "afgerond",
    "unanswered": "niet bereikt (terugbelverzoek)",
    "closed": "gesloten (terugbelverzoek)",
    "skipped": "overgeslagen",
    "stopped": "gestopt",
}
CONSENT_CHOICES = {
    "none": "alleen het onderwerp",
    "case": "de zaak mag besproken worden",
    "contact": "de zaak bespreken en zelf contact opnemen met de inwoner",
}


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
        q = q.where(_before(Case.opened_at, Case.id, cursor))
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


@dataclass
class CaseFigures:
    cases: int
    multi_org: int  # cases that needed more than one organisation
    life_events: list[tuple[str, int]]  # (event id, cases)
    chain_steps: int
    chain_steps_done: int  # reached (done/connected) out of all chain steps
    chains_complete: int  # chains whose every step was reached
    chains: int

    @property
    def multi_org_share(self) -> float | None:
        return self.multi_org / self.cases if self.cases else None

    @property
    def completion(self) -> float | None:
        return self.chain_steps_done / self.chain_steps if self.chain_steps else None


def case_figures_days(session, org: str | None, directory, first: date, last: date) -> CaseFigures:
    """The case figures of the local days first..last: the rollup of settled days, the case
    tables for the others (callrouter.figures), the same numbers as `case_figures`."""
    c = figures_mod.case_daily(session, directory.tz, org, first, last)
    return CaseFigures(
        cases=c.cases,
        multi_org=c.multi_org,
        life_events=c.life_events.most_common(),
        chain_steps=c.chain_steps,
        chain_steps_done=c.chain_steps_done,
        chains_complete=c.chains_complete,
        chains=c.chains,
    )


def case_figures(session, org: str | None, since: datetime, until: datetime) -> CaseFigures:
    base = select(Case.id).where(case_scope(org), Case.opened_at >= since, Case.opened_at < until)
    ids = base.subquery()
    n_cases = session.scalar(select(func.count()).select_from(ids)) or 0
    orgs_per_case = (
        select(CaseStep.case_id, func.count(func.distinct(CaseStep.target_org)).label("n"))
        .where(
            CaseStep.case_id.in_(select(ids.c.id)), CaseStep.state.not_in(("skipped", "stopped"))
        )
        .group_by(CaseStep.case_id)
        .subquery()
    )
    multi = (
        session.scalar(select(func.count()).select_from(orgs_per_case).where(orgs_per_case.c.n > 1))
        or 0
    )
    events = session.execute(
        select(Case.life_event, func.count())
        .where(Case.id.in_(select(ids.c.id)), Case.life_event.is_not(None))
        .group_by(Case.life_event)
        .order_by(func.count().desc())
    ).all()
    reached = case((CaseStep.state.in_(("done", "connected")), 1), else_=0)
    per_chain = session.execute(
        select(CaseStep.case_id, func.count(), func.sum(reached))
        .join(Case, Case.id == CaseStep.case_id)
        .where(Case.id.in_(select(ids.c.id)), Case.life_event.is_not(None))
        .group_by(CaseStep.case_id)
    ).all()
    steps = sum(int(n) for _, n, _ in per_chain)
    done = sum(int(d or 0) for _, _, d in per_chain)
    complete = sum(1 for _, n, d in per_chain if int(d or 0) == int(n))
    return CaseFigures(
        cases=int(n_cases),
        multi_org=int(multi),
        life_events=[(e, int(n)) for e, n in events],
        chain_steps=steps,
        chain_steps_done=done,
        chains_complete=complete,
        chains=len(per_chain),
    )
