"""Reading the records of a case back: every trace its calls made, and the records of the
case outside them (a supervisor's look, a withdrawal), as `flask ldv trace` prints them."""

from __future__ import annotations

from sqlalchemy import or_, select

from callrouter.models import CallbackRequest, Case, LdvRecord, Transfer


def cases_by_reference(s, reference: str) -> list[Case]:
    """A reference is unique among open cases only: the newest case first."""
    ref = "".join(ch for ch in reference if ch.isdigit())
    return list(
        s.scalars(select(Case).where(Case.reference == ref).order_by(Case.opened_at.desc()))
    )


def case_records(s, case: Case) -> list[LdvRecord]:
    """The records of the case's calls (its opening call, every call that made a transfer
    or callback request on it) and every record that names the case, oldest first."""
    traces = {case.call_id} if case.call_id else set()
    traces |= set(s.scalars(select(Transfer.call_id).where(Transfer.case_id == case.id)))
    traces |= set(
        s.scalars(select(CallbackRequest.call_id).where(CallbackRequest.case_id == case.id))
    )
    cond = LdvRecord.case_id == case.id
    if traces:
        cond = or_(cond, LdvRecord.trace_id.in_(sorted(traces)))
    return list(
        s.scalars(select(LdvRecord).where(cond).order_by(LdvRecord.start_time, LdvRecord.id))
    )


def render(case: Case, records: list[LdvRecord], tz) -> list[str]:
    """Lines of text: per trace its records as a tree (children under their parent)."""
    from callrouter.ldv.records import case_traceparent

    parent = case_traceparent(case.call_id, case.id)
    out = [f"case {case.reference} ({case.state}), traceparent {parent}"]
    by_trace: dict[str, list[LdvRecord]] = {}
    for r in records:
        by_trace.setdefault(r.trace_id, []).append(r)
    for trace, rows in by_trace.items():
        out.append(f"trace {trace}")
        spans = {r.span_id for r in rows}
        children: dict[str | None, list[LdvRecord]] = {}
        for r in rows:
            parent = r.parent_span_id if r.parent_span_id in spans else None
            children.setdefault(parent, []).append(r)
        _walk(children, None, 1, out, tz)
    return out


def _walk(children: dict, parent: str | None, depth: int, out: list[str], tz) -> None:
    for r in children.get(parent, []):
        out.append("  " * depth + _line(r, tz))
        _walk(children, r.span_id, depth + 1, out, tz)


def _line(r: LdvRecord, tz) -> str:
    when = r.start_time.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    subject = r.data_subject_id_type.rsplit(":", 1)[-1] if r.data_subject_id_type else "-"
    org = (r.attributes or {}).get("callrouter.organisation")
    links = " linked" if r.links else ""
    return (
        f"{when} {r.name} span {r.span_id} {r.status} subject {subject}"
        + (f" organisation {org}" if org else "")
        + f" activity {r.processing_activity_id}{links}"
    )
