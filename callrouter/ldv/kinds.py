"""The record of each kind of processing: its subject, its trace and what it says (pure
builders over plain values; the caller writes them with `ldv.store.write` in its own
transaction). Nothing personal in clear: subjects are keyed pseudonyms or cases, and the
attributes name organisations, lines and choices, never a person or a number."""

from __future__ import annotations

from datetime import datetime

from callrouter.ldv.records import (
    SUBJECT_CASE,
    SUBJECT_NUMBER,
    case_span,
    new_trace,
    record,
    span_id,
)
from callrouter.ldv.register import Register


def arrival(
    register: Register,
    *,
    call_id: str,
    at: datetime,
    subject: str | None,
    caller_org: str | None,
    identified_by: str | None,
) -> list[dict]:
    """A call's arrival: received, and identified when the number (or, on the way back, a
    professional's number) told who calls. `subject`: the number's pseudonym; None for a
    withheld number, which identifies nobody."""
    out = [record(register, "call-received", trace_id=call_id, at=at, subject=subject)]
    if identified_by:
        out.append(identified(register, call_id, at, subject, caller_org, identified_by))
    return out


def identified(
    register: Register, call_id: str, at: datetime, subject, caller_org, identified_by: str
) -> dict:
    return record(
        register,
        "caller-identified",
        trace_id=call_id,
        at=at,
        subject=subject,
        attributes={"callrouter.caller_org": caller_org, "callrouter.identified_by": identified_by},
    )


def case_link(opening_call_id: str | None, case_id: str) -> list[tuple[str, str]] | None:
    """A link to the case's own trace (its opening call's case-opened record), for the
    records of the case that belong to later calls or to the dashboard."""
    if not opening_call_id:
        return None
    return [(opening_call_id, case_span(opening_call_id, case_id))]


def case_opened(
    register: Register,
    *,
    call_id: str,
    case_id: str,
    worker_hmac: str | None,
    caller_org,
    life_event: str | None,
    at: datetime,
) -> dict:
    return record(
        register,
        "case-opened",
        trace_id=call_id,
        key=case_id,  # two deliveries of one menu webhook racing may each open a case
        at=at,
        subject=worker_hmac,
        case_id=case_id,
        attributes={"callrouter.caller_org": caller_org, "callrouter.life_event": life_event},
    )


def consent_recorded(
    register: Register,
    *,
    call_id: str,
    case_id: str,
    opening_call_id: str | None,
    consent_id: str,
    org: str,
    choice: str,
    at: datetime,
) -> dict:
    """The citizen's choice for one organisation; the citizen is the subject, as the case."""
    return record(
        register,
        "consent-recorded",
        trace_id=call_id,
        key=consent_id,
        at=at,
        subject=case_id,
        subject_type=SUBJECT_CASE,
        case_id=case_id,
        attributes={"callrouter.organisation": org, "callrouter.consent": choice},
        links=case_link(opening_call_id, case_id) if opening_call_id != call_id else None,
    )


def consent_withdrawn(
    register: Register,
    *,
    case_id: str,
    opening_call_id: str | None,
    consent_id: str,
    org: str,
    at: datetime,
) -> dict:
    """A withdrawal from the dashboard: a trace of its own, linked to the case's."""
    return record(
        register,
        "consent-withdrawn",
        trace_id=new_trace(),
        key=consent_id,
        parent=None,
        at=at,
        subject=case_id,
        subject_type=SUBJECT_CASE,
        case_id=case_id,
        attributes={"callrouter.organisation": org},
        links=case_link(opening_call_id, case_id),
    )


# What the whisper tells the professional, by the consent level the citizen chose.
SHARED = {
    "none": ("caller_org", "topic", "urgency"),
    "case": ("caller_org", "topic", "urgency", "case_reference", "reason"),
    "contact": ("caller_org", "topic", "urgency", "case_reference", "reason", "way_back"),
}


def context_shared(
    register: Register,
    *,
    call_id: str,
    transfer_id: str,
    case_id: str | None,
    worker_hmac: str | None,
    org: str,
    line: str,
    consent_level: str | None,
    at: datetime,
    direction: str | None = None,
    links: list[tuple[str, str]] | None = None,
) -> dict:
    """The whisper: the context of the case told to a professional of `org`. Its span is
    the `traceparent` that the receiving organisation continues (records.transfer_traceparent)."""
    subject, kind = (case_id, SUBJECT_CASE) if case_id else (worker_hmac, SUBJECT_NUMBER)
    return record(
        register,
        "context-shared",
        trace_id=call_id,
        key=transfer_id,
        at=at,
        subject=subject,
        subject_type=kind,
        case_id=case_id,
        attributes={
            "callrouter.organisation": org,
            "callrouter.line": line,
            "callrouter.transfer_id": transfer_id,
            "callrouter.consent": consent_level or "none",
            "callrouter.shared": ",".join(SHARED.get(consent_level or "none", SHARED["none"])),
            "callrouter.direction": direction,
        },
        links=links,
    )


def callback_context_shared(
    register: Register,
    *,
    call_id: str,
    request_id: str,
    attempt: int,
    case_id: str | None,
    worker_hmac: str | None,
    org: str,
    line: str,
    consented: bool,
    at: datetime,
) -> dict:
    """The whisper of a callback: whose request it is, told to the professional who answered."""
    level = "case" if consented else "none"
    subject, kind = (case_id, SUBJECT_CASE) if case_id else (worker_hmac, SUBJECT_NUMBER)
    return record(
        register,
        "context-shared",
        trace_id=call_id,
        key=f"callback/{request_id}/{attempt}",
        parent=span_id(call_id, "callback-run", f"{request_id}/{attempt}"),
        at=at,
        subject=subject,
        subject_type=kind,
        case_id=case_id,
        attributes={
            "callrouter.organisation": org,
            "callrouter.line": line,
            "callrouter.callback_id": request_id,
            "callrouter.consent": level,
            "callrouter.shared": ",".join(SHARED[level]),
        },
    )


def citizen_dialled(
    register: Register,
    *,
    call_id: str,
    transfer_id: str,
    leg_id: str,
    case_id: str | None,
    citizen_hmac: str,
    org: str,
    at: datetime,
) -> dict:
    """The citizen's number, keyed by the worker, dialled from memory (never stored): the
    citizen is the subject, by the number's keyed pseudonym."""
    return record(
        register,
        "citizen-dialled",
        trace_id=call_id,
        key=leg_id,
        at=at,
        subject=citizen_hmac,
        case_id=case_id,
        attributes={"callrouter.organisation": org, "callrouter.transfer_id": transfer_id},
    )


def callback_stored(
    register: Register,
    *,
    call_id: str,
    request_id: str,
    case_id: str | None,
    worker_hmac: str | None,
    org: str,
    line: str,
    reason: str,
    at: datetime,
) -> dict:
    return record(
        register,
        "callback-stored",
        trace_id=call_id,
        key=request_id,
        at=at,
        subject=worker_hmac,
        case_id=case_id,
        attributes={
            "callrouter.organisation": org,
            "callrouter.line": line,
            "callrouter.callback_reason": reason,
        },
    )


def callback_run(
    register: Register,
    *,
    call_id: str,
    request_id: str,
    attempt: int,
    case_id: str | None,
    worker_hmac: str | None,
    org: str,
    line: str,
    at: datetime,
) -> dict:
    """One attempt of a callback: the professional's line is rung on the worker's behalf,
    in the trace of the call that asked for it."""
    return record(
        register,
        "callback-run",
        trace_id=call_id,
        key=f"{request_id}/{attempt}",
        parent=span_id(call_id, "callback-stored", request_id),
        at=at,
        subject=worker_hmac,
        case_id=case_id,
        attributes={
            "callrouter.organisation": org,
            "callrouter.line": line,
            "callrouter.attempt": attempt,
        },
    )


def dashboard(
    register: Register,
    kind: str,
    *,
    at: datetime,
    trace_id: str | None = None,
    subject: str | None = None,
    subject_type: str = SUBJECT_NUMBER,
    case_id: str | None = None,
    key: str = "",
    attributes: dict | None = None,
    links=None,
) -> dict:
    """A supervisor's or operator's processing (a look, an export, a purge, the subject
    view): a trace of its own unless given, linked to the case's where there is one."""
    return record(
        register,
        kind,
        trace_id=trace_id or new_trace(),
        key=key,
        parent=None,
        at=at,
        subject=subject,
        subject_type=subject_type,
        case_id=case_id,
        attributes=attributes,
        links=links,
    )
